/**
 * Everything a recipe search needs before its first trial, shared by `abliterate optimize` and the
 * throughput measurement (`abliterate run --trials` searches inside the engine's pipeline, engine/pipeline.ts): the base model (prompts checked against its context), the
 * analysis (directions, harmless means, the held-out split), the evaluation prompts, the search space and an
 * evaluator whose base first-token logits are computed once.
 */
import type { SearchSpace } from '../core/search-space';
import type { AnalysisOutcome } from '../engine/analyze';
import type { findOnnxGraphFiles } from '../formats/onnx-files';
import { EvaluationSession } from '../engine/evaluate';
import type { Conversation } from '../engine/generate';
import { agentActionRater } from '../engine/agent-evaluation';
import { ModelRecipeEvaluator } from '../engine/recipe-evaluator';
import { RecipeHookModelSource } from '../engine/recipe-hook-models';
import type { ModelFolder } from '../ports/folder';
import { InvalidInputError } from '../base/errors';
import type { LongCallOptions } from '../base/progress';
import { buildSpace, type SpaceOverrides } from './optimize-space';
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
  /** Agent-prompted requests: each finished trial reports its action rate on them. */
  agent?: { prompts: Conversation[]; path: string; actionKeys: readonly string[] };
}

export interface PreparedSearch {
  outcome: AnalysisOutcome;
  evaluator: ModelRecipeEvaluator;
  space: SearchSpace;
  notes: string[];
  counts: { harmful: number; harmless: number };
  /** The base model's action rate on the agent prompts (null without them). */
  agentBase: { count: number; actionRate: number } | null;
  dispose(): Promise<void>;
}

export async function prepareSearch(inputs: SearchSetupInputs, options: LongCallOptions & { signal: AbortSignal }): Promise<PreparedSearch> {
  const { folder, graphs, signal } = { ...inputs, signal: options.signal };
  const session = await EvaluationSession.open(folder, { signal, ...(options.onProgress ? { onProgress: options.onProgress } : {}), onnxFile: graphs.decoder });
  let source: RecipeHookModelSource | null = null;
  try {
    session.checkPromptsFit(inputs.harmful, inputs.harmfulPath);
    session.checkPromptsFit(inputs.harmless, inputs.harmlessPath);
    if (inputs.evalFiles) {
      session.checkPromptsFit(inputs.evalFiles.harmful, inputs.evalFiles.harmfulPath ?? 'evaluation harmful prompts');
      session.checkPromptsFit(inputs.evalFiles.harmless, inputs.evalFiles.harmlessPath ?? 'evaluation harmless prompts');
    }
    if (inputs.agent) session.checkPromptsFit(inputs.agent.prompts, inputs.agent.path);
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
    // The train-split harmless means directions.safetensors holds, so `eval --recipe` with that file projects alike.
    const harmlessMeans = outcome.means.harmless;
    source = await RecipeHookModelSource.open(folder, session.tokenizer, outcome.directions, { harmlessMeans, onnxFile: graphs.decoder, signal });
    const { space, notes } = buildSpace(inputs.numLayers, outcome.report.layers, outcome.directions, inputs.overrides, source.methods);
    const agent = inputs.agent
      ? agentActionRater(inputs.agent.prompts, { maxNewTokens: inputs.maxNewTokens, batchSize: inputs.batchSize, actionKeys: inputs.agent.actionKeys, ...(inputs.markers ? { markers: inputs.markers } : {}) })
      : null;
    const agentBase = agent && inputs.agent ? { count: inputs.agent.prompts.length, actionRate: await agent.actionRate(session.base, { signal }) } : null;
    const evaluator = await ModelRecipeEvaluator.create(session.base, source, evaluation, {
      maxNewTokens: inputs.maxNewTokens,
      batchSize: inputs.batchSize,
      falseRefusals: inputs.falseRefusals,
      ...(inputs.markers ? { markers: inputs.markers } : {}),
      ...(agent ? { agent } : {}),
      signal,
    });
    const opened = source;
    return {
      outcome,
      evaluator,
      space,
      notes,
      counts: { harmful: evaluation.harmful.length, harmless: evaluation.harmless.length },
      agentBase,
      dispose: async () => {
        await opened.dispose();
        await session.dispose();
      },
    };
  } catch (error) {
    await source?.dispose();
    await session.dispose();
    throw error;
  }
}
