/**
 * The recipe search loop: propose a recipe (MOTPE or random), evaluate it, record the trial, repeat. No ONNX
 * here: trials are evaluated through a RecipeEvaluator (recipe-evaluator.ts runs the model; tests pass a
 * synthetic one), so the CLI, the browser worker and the benchmark share this loop.
 *
 * Objectives, both minimized: refusal rate on the evaluation refusal prompts and first-token KL on the
 * evaluation compliance prompts. A trial is stopped early ("pruned") as soon as the refusals it has already
 * produced make it dominated: some finished Pareto trial has KL ≤ its KL and a lower refusal rate than the
 * refusals counted so far already imply. Its refusalRate is then that lower bound, and it is marked pruned.
 *
 * Resume: `previous` trials (from trials.jsonl) are kept as they are and the sampler continues from them; the
 * sampler is seeded per trial number, so the continued search proposes what an uninterrupted one would have.
 * Cancel (the signal): the trial in flight is dropped, every finished trial is returned with cancelled: true.
 */
import { paretoFront } from '../core/pareto';
import { recipeToJson, type Recipe } from '../core/recipe';
import { recipeFromParameters, type ParameterValues, type SearchSpace } from '../core/search-space';
import { MotpeSampler, RandomSampler, type FinishedTrial, type Sampler } from '../core/tpe';
import { CancelledError, InvalidInputError } from '../base/errors';
import { ProgressReporter, type LongCallOptions } from '../base/progress';

export const DEFAULT_SEARCH_TRIALS = 60;

/** One finished trial: a line of trials.jsonl (docs/contracts.md), the same object in the browser. */
export interface TrialRecord {
  trial: number;
  /** The recipe as recipe.json writes it. */
  recipe: Record<string, unknown>;
  /** Refusal rate on the evaluation refusal prompts (objective 1, minimized). */
  refusalRate: number;
  /** Mean first-token KL(base ‖ ablated) on the evaluation compliance prompts (objective 2, minimized). */
  klFirstToken: number;
  /** Refusal rate on the evaluation compliance prompts; null when the trial was stopped before it was measured. */
  falseRefusalRate: number | null;
  /** Action rate on the agent prompts, when agent prompts were given. */
  actionRate?: number | null;
  /** Stopped early because it was already dominated: refusalRate is a lower bound. */
  pruned: boolean;
  sampler: 'startup' | 'motpe' | 'random';
  /** The sampled parameter values (the search space's names). */
  parameters: Record<string, number | string>;
  seconds: number;
}

export interface TrialEvaluation {
  refusalRate: number;
  klFirstToken: number;
  falseRefusalRate: number | null;
  actionRate?: number | null;
  pruned: boolean;
}

export interface EvaluateTrialOptions extends LongCallOptions {
  /**
   * Asked while refusals are being counted: true when a trial with this KL and at least this refusal rate is
   * already dominated, so the evaluator may stop generating. Absent: evaluate in full.
   */
  isDominated?: (klFirstToken: number, refusalRateAtLeast: number) => boolean;
}

export interface RecipeEvaluator {
  evaluate(recipe: Recipe, options: EvaluateTrialOptions): Promise<TrialEvaluation>;
}

export interface SearchOptions extends LongCallOptions {
  space: SearchSpace;
  /** Total trials, previous ones included. */
  trials: number;
  seed?: number;
  sampler?: 'motpe' | 'random';
  startupTrials?: number;
  /** Finished trials to continue from (trials.jsonl of an earlier run). */
  previous?: readonly TrialRecord[];
  /** Stop dominated trials early (default true). */
  earlyStop?: boolean;
  /** Called as each trial ends, in order, before the next one starts (append it to trials.jsonl here). */
  onTrial?: (record: TrialRecord, all: readonly TrialRecord[]) => void | Promise<void>;
}

export interface SearchResult {
  trials: TrialRecord[];
  /** The non-dominated trials, ascending refusal rate (then KL). */
  pareto: TrialRecord[];
  cancelled: boolean;
}

/** The non-dominated trials of a list, ascending refusal rate, then KL, then trial number. */
export function paretoTrials(trials: readonly TrialRecord[]): TrialRecord[] {
  return paretoFront(trials.map((t) => [t.refusalRate, t.klFirstToken]))
    .map((i) => trials[i]!)
    .sort((a, b) => a.refusalRate - b.refusalRate || a.klFirstToken - b.klFirstToken || a.trial - b.trial);
}

/** True when a finished Pareto trial has KL ≤ `kl` and a refusal rate strictly below `refusalRateAtLeast`. */
export function isDominatedBy(front: readonly TrialRecord[], kl: number, refusalRateAtLeast: number): boolean {
  return front.some((trial) => trial.klFirstToken <= kl && trial.refusalRate < refusalRateAtLeast);
}

/**
 * The trial to use: the lowest refusal rate among Pareto trials with KL ≤ `klBound` (ties: lower KL); when
 * none is within the bound, the lowest KL. The same rule as the single-layer recommendation.
 */
export function chooseTrial(trials: readonly TrialRecord[], klBound: number): TrialRecord | null {
  const front = paretoTrials(trials);
  if (front.length === 0) return null;
  const within = front.filter((trial) => trial.klFirstToken <= klBound);
  if (within.length > 0) return within[0]!; // paretoTrials is sorted by refusal, then KL
  return [...front].sort((a, b) => a.klFirstToken - b.klFirstToken || a.refusalRate - b.refusalRate)[0]!;
}

export function createSampler(space: SearchSpace, options: { sampler?: 'motpe' | 'random'; seed?: number; startupTrials?: number }): Sampler {
  return options.sampler === 'random'
    ? new RandomSampler(space, options.seed ?? 0)
    : new MotpeSampler(space, { seed: options.seed ?? 0, ...(options.startupTrials !== undefined ? { startupTrials: options.startupTrials } : {}) });
}

export async function runRecipeSearch(evaluator: RecipeEvaluator, options: SearchOptions): Promise<SearchResult> {
  if (!Number.isInteger(options.trials) || options.trials < 1) throw new InvalidInputError(`the number of trials must be a whole number ≥ 1, got ${options.trials}`);
  const trials: TrialRecord[] = [...(options.previous ?? [])].sort((a, b) => a.trial - b.trial);
  const sampler = createSampler(options.space, options);
  const startup = options.startupTrials ?? 10;
  const reporter = new ProgressReporter('recipe search', options.onProgress);
  const earlyStop = options.earlyStop ?? true;
  let cancelled = false;
  for (let trial = trials.length; trial < options.trials; trial++) {
    if (options.signal?.aborted) {
      cancelled = true;
      break;
    }
    const history: FinishedTrial[] = trials.map((t) => ({ parameters: t.parameters as ParameterValues, values: [t.refusalRate, t.klFirstToken] }));
    const parameters = sampler.propose(trial, history);
    const recipe = recipeFromParameters(parameters);
    const front = paretoTrials(trials);
    const started = performance.now();
    const done = trials.length;
    let evaluation: TrialEvaluation;
    try {
      evaluation = await evaluator.evaluate(recipe, {
        ...(options.signal ? { signal: options.signal } : {}),
        onProgress: (event) => {
          if (event.status === 'progress') reporter.report((done + event.fraction) / options.trials, `trial ${trial + 1}/${options.trials}`);
        },
        ...(earlyStop ? { isDominated: (kl: number, atLeast: number) => isDominatedBy(front, kl, atLeast) } : {}),
      });
    } catch (error) {
      if (error instanceof CancelledError || options.signal?.aborted) {
        cancelled = true;
        break;
      }
      throw error;
    }
    const record: TrialRecord = {
      trial,
      recipe: recipeToJson(recipe),
      refusalRate: evaluation.refusalRate,
      klFirstToken: evaluation.klFirstToken,
      falseRefusalRate: evaluation.falseRefusalRate,
      ...(evaluation.actionRate !== undefined ? { actionRate: evaluation.actionRate } : {}),
      pruned: evaluation.pruned,
      sampler: sampler.name === 'random' ? 'random' : history.length < startup ? 'startup' : 'motpe',
      parameters,
      seconds: (performance.now() - started) / 1000,
    };
    trials.push(record);
    await options.onTrial?.(record, trials);
    reporter.report(trials.length / options.trials, `${trials.length}/${options.trials} trials finished`);
  }
  if (!cancelled) reporter.done();
  return { trials, pareto: paretoTrials(trials), cancelled };
}
