/**
 * Measures the recipe search on a model folder: trials per minute and the hypervolume each sampler reaches
 * for each seed at the same budget. One analysis and one set of base outputs serve every run. Used by the
 * README's sampler comparison (scripts/optimize-compare.ts) and callable from the benchmark.
 */
import { join } from 'node:path';
import { DEFAULT_HELD_OUT_FRACTION, DEFAULT_SEED } from '../core/analysis';
import { hypervolume2D } from '../core/pareto';
import { findOnnxGraphFiles } from '../formats/onnx-files';
import { DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS } from '../engine/generate';
import { DEFAULT_KL_BOUND } from '../engine/layer-sweep';
import type { Recipe } from '../core/recipe';
import { chooseTrial, runRecipeSearch, type TrialEvaluation, type TrialRecord } from '../engine/recipe-search';
import { readModelConfig } from '../formats/hf-folder';
import { openNodeModelFolder } from '../platform/node-files';
import { InvalidFileError } from '../base/errors';
import { readPromptConversations } from './common';
import { parseSpaceOverrides } from './optimize-space';
import { prepareSearch, type PreparedSearch } from './optimize-setup';

/** Hypervolume reference: the worst refusal rate (1) and the KL bound of the recommendation. */
export const HYPERVOLUME_REFERENCE: [number, number] = [1, DEFAULT_KL_BOUND];

export interface SearchMeasurementOptions {
  modelDir: string;
  harmfulPath: string;
  harmlessPath: string;
  /** Both or neither; neither: the held-out split of harmful/harmless. */
  evalHarmfulPath?: string;
  evalHarmlessPath?: string;
  trials: number;
  seeds: readonly number[];
  samplers: readonly ('motpe' | 'random')[];
  maxNewTokens?: number;
  directionRange?: string;
  /** Generate on the compliance prompts for the false-refusal report (default true; not an objective). */
  falseRefusals?: boolean;
  onTrial?: (run: { sampler: string; seed: number }, record: TrialRecord) => void;
}

export interface SearchMeasurement {
  sampler: 'motpe' | 'random';
  seed: number;
  trials: TrialRecord[];
  seconds: number;
  trialsPerMinute: number;
  hypervolume: number;
  chosen: TrialRecord | null;
}

/** The prompt files and model a measurement prepares its search from (one analysis, one set of base outputs). */
interface PreparedInputs {
  modelDir: string;
  harmfulPath: string;
  harmlessPath: string;
  /** Both or neither; neither: the held-out split of harmful/harmless. */
  evalHarmfulPath?: string | undefined;
  evalHarmlessPath?: string | undefined;
  maxNewTokens?: number | undefined;
  directionRange?: string | undefined;
  falseRefusals?: boolean | undefined;
}

/** Analyzes, opens the one recipe session and the evaluator, runs `use`, and disposes everything. */
async function withPreparedSearch<T>(inputs: PreparedInputs, use: (prepared: PreparedSearch) => Promise<T>): Promise<T> {
  const folder = await openNodeModelFolder(inputs.modelDir);
  const config = await readModelConfig(folder);
  const graphs = findOnnxGraphFiles(folder.list());
  if (!graphs) throw new InvalidFileError(join(inputs.modelDir, 'onnx'), 'no ONNX graph found');
  const evalFiles = inputs.evalHarmfulPath && inputs.evalHarmlessPath
    ? { harmful: await readPromptConversations(inputs.evalHarmfulPath, 'evaluation harmful prompt file'), harmless: await readPromptConversations(inputs.evalHarmlessPath, 'evaluation harmless prompt file') }
    : null;
  const prepared = await prepareSearch(
    {
      folder,
      modelDir: inputs.modelDir,
      graphs,
      numLayers: config.numLayers,
      harmful: await readPromptConversations(inputs.harmfulPath, 'harmful prompt file'),
      harmless: await readPromptConversations(inputs.harmlessPath, 'harmless prompt file'),
      harmfulPath: inputs.harmfulPath,
      harmlessPath: inputs.harmlessPath,
      evalFiles,
      position: -1,
      heldOutFraction: DEFAULT_HELD_OUT_FRACTION,
      seed: DEFAULT_SEED,
      batchSize: DEFAULT_BATCH_SIZE,
      threads: 0,
      maxNewTokens: inputs.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
      falseRefusals: inputs.falseRefusals ?? true,
      overrides: parseSpaceOverrides(inputs.directionRange),
    },
    { signal: new AbortController().signal },
  );
  try {
    return await use(prepared);
  } finally {
    await prepared.dispose();
  }
}

export async function measureRecipeSearch(options: SearchMeasurementOptions): Promise<SearchMeasurement[]> {
  return withPreparedSearch(options, async (prepared) => {
    const results: SearchMeasurement[] = [];
    for (const seed of options.seeds) {
      for (const sampler of options.samplers) {
        const started = performance.now();
        const search = await runRecipeSearch(prepared.evaluator, {
          space: prepared.space,
          trials: options.trials,
          seed,
          sampler,
          ...(options.onTrial ? { onTrial: (record: TrialRecord) => options.onTrial!({ sampler, seed }, record) } : {}),
        });
        const seconds = (performance.now() - started) / 1000;
        results.push({
          sampler,
          seed,
          trials: search.trials,
          seconds,
          trialsPerMinute: (search.trials.length / seconds) * 60,
          hypervolume: hypervolume2D(search.trials.map((trial) => [trial.refusalRate, trial.klFirstToken]), HYPERVOLUME_REFERENCE),
          chosen: chooseTrial(search.trials, DEFAULT_KL_BOUND),
        });
      }
    }
    return results;
  });
}

/**
 * Scores fixed recipes on given prompt files with the search's own evaluator (no early stop): refusal rate,
 * first-token KL and false refusals. The directions come from the same analysis `optimize` and `run` do
 * (train split of harmful/harmless, default held-out fraction and seed).
 */
export async function scoreRecipes(options: { modelDir: string; harmfulPath: string; harmlessPath: string; evalHarmfulPath: string; evalHarmlessPath: string; recipes: readonly Recipe[]; maxNewTokens?: number }): Promise<TrialEvaluation[]> {
  return withPreparedSearch(options, async (prepared) => {
    const scores: TrialEvaluation[] = [];
    for (const recipe of options.recipes) scores.push(await prepared.evaluator.evaluate(recipe, {}));
    return scores;
  });
}
