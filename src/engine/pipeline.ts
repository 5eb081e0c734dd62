/**
 * The analyze → choose → evaluate → ablate pipeline after the analysis, once, for every caller (`abliterate run`
 * and anything else that runs it whole): choose the ablation on a sample of the TRAIN prompts — the single-layer
 * sweep (the recommended layer's direction, at the given scale and targets), or the recipe search over
 * directions, projections and per-block kernels — then evaluate the choice on the HELD-OUT prompts, so the
 * reported figures are flattered by neither the direction nor the choice, and finally plan and write the edit of
 * the very same selection. The evaluation is `EvaluationSession.evaluate`, the steps the chat worker's evaluation
 * runs too (runEvaluationSteps).
 */
import { type AblationComponent, parseRecipe, type Recipe } from '../core/recipe';
import { searchSpaceForAnalysis } from '../core/search-space';
import { InvalidInputError } from '../base/errors';
import type { LongCallOptions } from '../base/progress';
import type { ModelFolder, OutputFolder } from '../ports/folder';
import { planAblation, writeAblation, type AblateRunOptions, type AblationManifest } from './ablate';
import type { DirectionProvenance } from './ablate-manifest';
import { resolveAblation, type AblationSelection } from './ablation-selection';
import { evaluateAgentForAblation } from './agent-evaluation';
import type { AnalysisOutcome } from './analyze';
import type { EvaluationReport, EvaluationSession } from './evaluate';
import type { Conversation } from './generate';
import { DEFAULT_KL_BOUND, sweepLayers, type LayerSweep } from './layer-sweep';
import { ModelRecipeEvaluator } from './recipe-evaluator';
import { RecipeHookModelSource } from './recipe-hook-models';
import { chooseTrial, runRecipeSearch, type SearchResult, type TrialRecord } from './recipe-search';

export interface PromptPair {
  harmful: readonly Conversation[];
  harmless: readonly Conversation[];
}

export interface PipelineOptions extends LongCallOptions {
  /** Prompts the choice is made on (a sample of the train split). */
  train: PromptPair;
  /** Prompts the choice is evaluated on (the held-out split, or evaluation files). */
  heldOut: PromptPair;
  /** Skip the choice: this hidden-state index's direction (the CLI's --layer). */
  fixedLayer?: number;
  /** Layer indices the sweep tries. */
  candidates: readonly number[];
  /** Run the recipe search with this many trials instead of the single-layer sweep. */
  trials?: number;
  seed?: number;
  klBound?: number;
  /** The shorthand's strength and targets (sweep and --layer only; the search chooses its own weights). */
  scale: number;
  targets: AblationComponent[];
  maxNewTokens?: number;
  batchSize?: number;
  markers?: readonly string[];
  /** The decoder graph the recipe search hooks (the session's). */
  onnxFile?: string;
  agent?: { prompts: readonly Conversation[]; actionKeys?: readonly string[] };
  /** Called as each search trial ends. */
  onTrial?: (record: TrialRecord) => void | Promise<void>;
}

/** How the ablation was chosen. */
export type PipelineChoice =
  | { kind: 'layer'; layer: number; sweep: LayerSweep | null; reason: string }
  | { kind: 'recipe'; recipe: Recipe; search: SearchResult; chosen: TrialRecord; reason: string };

export interface PipelineResult {
  choice: PipelineChoice;
  /** What is evaluated and what the edit applies: the same selection. */
  selection: AblationSelection;
  /** The directions-file row the manifest records (a whole-index recipe's, the layer's), else null. */
  row: number | null;
  evaluation: EvaluationReport;
}

/** Chooses the ablation on the train prompts, then evaluates it on the held-out prompts. */
export async function runPipeline(session: EvaluationSession, folder: ModelFolder, outcome: AnalysisOutcome, options: PipelineOptions): Promise<PipelineResult> {
  const settings = {
    ...(options.maxNewTokens !== undefined ? { maxNewTokens: options.maxNewTokens } : {}),
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    ...(options.markers ? { markers: options.markers } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  const choice = await chooseAblation(session, folder, outcome, options, settings);
  const selection: AblationSelection =
    choice.kind === 'layer'
      ? { direction: outcome.directions[choice.layer]!, scale: options.scale, targets: options.targets }
      : { recipe: choice.recipe, directions: outcome.directions, harmlessMeans: outcome.means.harmless };
  const row = choice.kind === 'layer' ? choice.layer : typeof choice.recipe.direction === 'number' && Number.isInteger(choice.recipe.direction) ? choice.recipe.direction : null;
  const evaluation = await session.evaluate(selection, options.heldOut, settings);
  if (options.agent) {
    evaluation.agent = await evaluateAgentForAblation(session, selection, options.agent.prompts, { ...settings, ...(options.agent.actionKeys ? { actionKeys: [...options.agent.actionKeys] } : {}) });
  }
  return { choice, selection, row, evaluation };
}

async function chooseAblation(
  session: EvaluationSession,
  folder: ModelFolder,
  outcome: AnalysisOutcome,
  options: PipelineOptions,
  settings: { maxNewTokens?: number; batchSize?: number; markers?: readonly string[] } & LongCallOptions,
): Promise<PipelineChoice> {
  const klBound = options.klBound ?? DEFAULT_KL_BOUND;
  if (options.fixedLayer !== undefined) return { kind: 'layer', layer: options.fixedLayer, sweep: null, reason: 'chosen with --layer' };
  if (options.trials === undefined) {
    const sweep = await sweepLayers(session, outcome.directions, options.train, { ...settings, candidateLayers: [...options.candidates], klBound, scale: options.scale, targets: options.targets });
    if (!sweep.recommendation) throw new InvalidInputError(`no layer could be evaluated in the sweep (${sweep.skipped.map((entry) => `${entry.layer}: ${entry.reason}`).join('; ')})`);
    return { kind: 'layer', layer: sweep.recommendation.layer, sweep, reason: sweep.recommendation.reason };
  }
  // The recipe search on one recipe session: the methods it offers (norm-preserving where the weights allow),
  // projections with the train-split harmless means.
  const source = await RecipeHookModelSource.open(folder, session.tokenizer, outcome.directions, {
    harmlessMeans: outcome.means.harmless,
    ...(options.onnxFile ? { onnxFile: options.onnxFile } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  let search: SearchResult;
  try {
    const { space } = searchSpaceForAnalysis(outcome.report.numLayers, outcome.report.layers, outcome.directions, { methods: source.methods, harmlessMeans: true });
    const evaluator = await ModelRecipeEvaluator.create(session.base, source, options.train, { ...settings, falseRefusals: false });
    search = await runRecipeSearch(evaluator, {
      space,
      trials: options.trials,
      seed: options.seed ?? 0,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.onTrial ? { onTrial: (record) => options.onTrial!(record) } : {}),
    });
  } finally {
    await source.dispose();
  }
  if (search.cancelled) throw new InvalidInputError('the recipe search was cancelled');
  const chosen = chooseTrial(search.trials, klBound);
  if (!chosen) throw new InvalidInputError('the recipe search finished no trial');
  const within = chosen.klFirstToken <= klBound;
  return {
    kind: 'recipe',
    recipe: parseRecipe(chosen.recipe, outcome.report.numLayers),
    search,
    chosen,
    reason: `search trial ${chosen.trial} of ${search.trials.length}: ${within ? `lowest refusal rate (${(chosen.refusalRate * 100).toFixed(1)}%) on the Pareto front with KL ≤ ${klBound}` : `no Pareto trial within KL ≤ ${klBound}; lowest KL (${chosen.klFirstToken.toFixed(4)})`}`,
  };
}

/** The recipe the pipeline applies: the chosen trial's, or the one the chosen layer's shorthand stands for. */
export function pipelineRecipe(result: Pick<PipelineResult, 'selection' | 'row'>): Recipe {
  return resolveAblation(result.selection, undefined, result.row).recipe;
}

/** Plans (validating every header and target first) and writes the edit of the pipeline's selection. */
export async function writePipelineModel(
  folder: ModelFolder,
  output: OutputFolder,
  result: Pick<PipelineResult, 'selection' | 'row'>,
  directionSource: Omit<DirectionProvenance, 'layer'>,
  options: LongCallOptions & Pick<AblateRunOptions, 'results'> = {},
): Promise<AblationManifest> {
  const plan = await planAblation(folder, result.selection, result.row);
  return writeAblation(plan, output, { ...result.selection, directionSource: { ...directionSource, layer: result.row }, ...options });
}
