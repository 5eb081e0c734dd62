/**
 * Everything a recipe search needs before its first trial, shared by `abliterate optimize`, `abliterate run
 * --trials` and the throughput measurement: the base model (prompts checked against its context), the
 * analysis (directions, harmless means, the held-out split), the evaluation prompts, the search space and an
 * evaluator whose base first-token logits are computed once.
 */
import type { SearchSpace } from '../core/search-space';
import type { AnalysisOutcome } from '../engine/analyze';
import type { findOnnxGraphFiles } from '../formats/onnx-files';
import { EvaluationSession } from '../engine/evaluate';
import type { Conversation } from '../engine/generate';
import { ModelRecipeEvaluator } from '../engine/recipe-evaluator';
import { RecipeHookModelSource } from '../engine/recipe-hook-models';
import type { ModelFolder } from '../ports/folder';
import { InvalidInputError } from '../base/errors';
import type { LongCallOptions } from '../base/progress';
import { buildSpace, trainMeans, type SpaceOverrides } from './optimize-space';
import { analyze } from './run';

export interface SearchSetupInputs {
  folder: ModelFolder;
  modelDir: string;
  graphs: NonNullable<ReturnType<typeof findOnnxGraphFiles>>;
  numLayers: number;
  harmful: Conversation[];
  harmless: Conversation[];
  harmfulPath: string;
  harmlessPath: string;
  /** Evaluation prompt sets; null: the analysis' held-out split of harmful/harmless. */
  evalFiles: { harmful: Conversation[]; harmless: Conversation[]; harmfulPath?: string; harmlessPath?: string } | null;
  position: number;
  heldOutFraction: number;
  seed: number;
  batchSize: number;
  threads: number;
  maxNewTokens: number;
  markers?: readonly string[];
  falseRefusals: boolean;
  overrides: SpaceOverrides;
}

export interface PreparedSearch {
  outcome: AnalysisOutcome;
  evaluator: ModelRecipeEvaluator;
  space: SearchSpace;
  notes: string[];
  counts: { harmful: number; harmless: number };
  dispose(): Promise<void>;
}

export async function prepareSearch(inputs: SearchSetupInputs, options: LongCallOptions & { signal: AbortSignal }): Promise<PreparedSearch> {
  const { folder, graphs, signal } = { ...inputs, signal: options.signal };
  const session = await EvaluationSession.open(folder, { signal, ...(options.onProgress ? { onProgress: options.onProgress } : {}), onnxFile: graphs.decoder });
  try {
    session.checkPromptsFit(inputs.harmful, inputs.harmfulPath);
    session.checkPromptsFit(inputs.harmless, inputs.harmlessPath);
    if (inputs.evalFiles) {
      session.checkPromptsFit(inputs.evalFiles.harmful, inputs.evalFiles.harmfulPath ?? 'evaluation harmful prompts');
      session.checkPromptsFit(inputs.evalFiles.harmless, inputs.evalFiles.harmlessPath ?? 'evaluation harmless prompts');
    }
    const outcome = await analyze(
      folder,
      graphs,
      { ...inputs, reference: null, batchSize: inputs.batchSize },
      signal,
      options.onProgress ?? (() => undefined),
    );
    const pick = (set: Conversation[], indices: number[]) => indices.map((index) => set[index]!);
    const evaluation = inputs.evalFiles ?? { harmful: pick(inputs.harmful, outcome.split.harmful.heldOut), harmless: pick(inputs.harmless, outcome.split.harmless.heldOut) };
    if (evaluation.harmful.length === 0 || evaluation.harmless.length === 0) {
      throw new InvalidInputError('--held-out 0 leaves no prompts to score the trials on; give --eval-harmful and --eval-harmless, or a held-out fraction > 0');
    }
    const harmlessMeans = trainMeans(outcome.captures.harmless, outcome.split.harmless.train);
    const { space, notes } = buildSpace(inputs.numLayers, outcome.report.layers, outcome.directions, inputs.overrides);
    const source = await RecipeHookModelSource.open(folder, session.tokenizer, outcome.directions, { harmlessMeans, onnxFile: graphs.decoder });
    const evaluator = await ModelRecipeEvaluator.create(session.base, source, evaluation, {
      maxNewTokens: inputs.maxNewTokens,
      batchSize: inputs.batchSize,
      falseRefusals: inputs.falseRefusals,
      ...(inputs.markers ? { markers: inputs.markers } : {}),
      signal,
    });
    return { outcome, evaluator, space, notes, counts: { harmful: evaluation.harmful.length, harmless: evaluation.harmless.length }, dispose: () => session.dispose() };
  } catch (error) {
    await session.dispose();
    throw error;
  }
}
