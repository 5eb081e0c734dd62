/**
 * Multi-objective TPE (Ozaki et al. 2020, "Multiobjective tree-structured Parzen estimator"; the algorithm of
 * Optuna's TPESampler with several objectives, which heretic uses): after `startupTrials` uniform random
 * trials, the finished trials are split into a "good" set — whole non-dominated fronts, rank by rank, the last
 * front cut by greedy hypervolume subset selection — and the rest; a Parzen density l(x) is fitted on the good
 * set and g(x) on the rest (parzen.ts; by default one joint density over all parameters, as heretic runs
 * Optuna with multivariate=True, or one independent density per parameter), and of `candidates` draws from l
 * (heretic's 128) the one maximizing log l(x) − log g(x) is the next trial.
 *
 * Deterministic for a seed: trial i draws from its own generator seeded by (seed, i), so a resumed search
 * proposes exactly what the uninterrupted one would have, given the same finished trials.
 */
import { hypervolume2D, nonDominatedRanks } from './pareto';
import { mulberry32 } from './random';
import { JointParzen, ParzenCategorical, ParzenFloat, type Density } from './parzen';
import { PARAMETER_NAMES, sampleUniform, type ParameterValues, type SearchSpace } from './search-space';

export { erf, JointParzen, ParzenCategorical, ParzenFloat } from './parzen';

export interface FinishedTrial {
  parameters: ParameterValues;
  /** The objectives, minimized: [refusal rate, first-token KL]. */
  values: readonly [number, number];
}

export interface Sampler {
  readonly name: string;
  /** The parameters of trial number `trial` given every trial finished so far. */
  propose(trial: number, history: readonly FinishedTrial[]): ParameterValues;
}

export interface TpeOptions {
  seed?: number;
  /** Uniform random trials before the model kicks in (Optuna's n_startup_trials; default 10). */
  startupTrials?: number;
  /** Draws from l(x) scored per proposal (Optuna's n_ei_candidates; default 24). */
  candidates?: number;
  /** Weight of the prior component in every Parzen mixture (Optuna's prior_weight; default 1). */
  priorWeight?: number;
  /**
   * One joint Parzen density over all parameters (Optuna's multivariate=True, as heretic runs it) instead of
   * one independent density per parameter (default true): a candidate is drawn whole from one good trial's
   * kernel, so parameters that only work together (a direction with its kernel peak) stay together.
   */
  multivariate?: boolean;
}

export const DEFAULT_STARTUP_TRIALS = 10;
/** heretic's n_ei_candidates. */
const DEFAULT_CANDIDATES = 128;

/** Optuna's default gamma: the good set holds ⌈0.1·n⌉ trials, at most 25. */
const goodSetSize = (finished: number): number => Math.min(Math.ceil(0.1 * finished), 25);
/** Keeps every good trial's weight positive even when its hypervolume contribution is 0 (Optuna's EPS). */
const WEIGHT_FLOOR = 1e-12;

/** A generator for trial `trial` of a search seeded `seed`: independent streams, reproducible one by one. */
export function trialRandom(seed: number, trial: number): () => number {
  let mixed = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(trial + 1, 0xc2b2ae35);
  mixed ^= mixed >>> 16;
  return mulberry32(mixed >>> 0);
}

/** Uniform random search: the baseline the TPE sampler is measured against. */
export class RandomSampler implements Sampler {
  readonly name = 'random';
  constructor(
    private readonly space: SearchSpace,
    private readonly seed = 0,
  ) {}
  propose(trial: number): ParameterValues {
    return sampleUniform(this.space, trialRandom(this.seed, trial));
  }
}

export class MotpeSampler implements Sampler {
  readonly name = 'motpe';
  private readonly seed: number;
  private readonly startupTrials: number;
  private readonly candidates: number;
  private readonly priorWeight: number;
  private readonly multivariate: boolean;

  constructor(
    private readonly space: SearchSpace,
    options: TpeOptions = {},
  ) {
    this.seed = options.seed ?? 0;
    this.startupTrials = options.startupTrials ?? DEFAULT_STARTUP_TRIALS;
    this.candidates = options.candidates ?? DEFAULT_CANDIDATES;
    this.priorWeight = options.priorWeight ?? 1;
    this.multivariate = options.multivariate ?? true;
  }

  propose(trial: number, history: readonly FinishedTrial[]): ParameterValues {
    const random = trialRandom(this.seed, trial);
    if (history.length < this.startupTrials || history.length < 2) return sampleUniform(this.space, random);
    const { good, goodWeights, rest } = splitGoodAndRest(history);
    if (this.multivariate) return this.proposeJoint(random, good, goodWeights, rest);
    const models = PARAMETER_NAMES.map((name): { good: Density; rest: Density } | null => {
      const spec = this.space[name];
      if (spec.kind === 'pinned') return null;
      const of = (trials: readonly FinishedTrial[]) => trials.map((entry) => entry.parameters[name]!);
      if (spec.kind === 'float') {
        const bounds = [spec.low, spec.high] as const;
        return {
          good: ParzenFloat.fit(of(good) as number[], goodWeights, bounds, this.priorWeight),
          rest: ParzenFloat.fit(of(rest) as number[], rest.map(() => 1), bounds, this.priorWeight),
        };
      }
      return {
        good: ParzenCategorical.fit(of(good) as string[], goodWeights, spec.choices, this.priorWeight),
        rest: ParzenCategorical.fit(of(rest) as string[], rest.map(() => 1), spec.choices, this.priorWeight),
      };
    });
    let best: ParameterValues | null = null;
    let bestScore = -Infinity;
    for (let candidate = 0; candidate < this.candidates; candidate++) {
      const values = {} as ParameterValues;
      let score = 0;
      PARAMETER_NAMES.forEach((name, index) => {
        const model = models[index];
        const spec = this.space[name];
        if (!model) {
          values[name] = (spec as { value: number | string }).value;
          return;
        }
        const value = model.good.sample(random);
        values[name] = value;
        score += model.good.logDensity(value) - model.rest.logDensity(value);
      });
      if (score > bestScore) {
        bestScore = score;
        best = values;
      }
    }
    return best ?? sampleUniform(this.space, random);
  }

  /** Multivariate TPE: of `candidates` draws from the joint good density, the one maximizing log l − log g. */
  private proposeJoint(random: () => number, good: readonly FinishedTrial[], goodWeights: readonly number[], rest: readonly FinishedTrial[]): ParameterValues {
    const free = PARAMETER_NAMES.filter((name) => this.space[name].kind !== 'pinned');
    const l = JointParzen.fit(this.space, free, good, goodWeights, this.priorWeight);
    const g = JointParzen.fit(this.space, free, rest, rest.map(() => 1), this.priorWeight);
    let best: ParameterValues | null = null;
    let bestScore = -Infinity;
    for (let candidate = 0; candidate < this.candidates; candidate++) {
      const values = l.sample(random);
      const score = l.logDensity(values) - g.logDensity(values);
      if (score > bestScore) {
        bestScore = score;
        best = values;
      }
    }
    return best ?? sampleUniform(this.space, random);
  }
}

/**
 * The good set: fronts in rank order until ⌈0.1·n⌉ trials are taken, the last front cut by greedy hypervolume
 * subset selection (each step takes the trial adding most area); weights ∝ each good trial's hypervolume
 * contribution within the good set (MOTPE), normalized to mean 1.
 */
export function splitGoodAndRest(history: readonly FinishedTrial[]): { good: FinishedTrial[]; goodWeights: number[]; rest: FinishedTrial[] } {
  const wanted = Math.max(1, goodSetSize(history.length));
  const points = history.map((entry) => entry.values);
  const ranks = nonDominatedRanks(points);
  const reference = referencePoint(points);
  const chosen: number[] = [];
  for (let rank = 0; chosen.length < wanted; rank++) {
    const front = ranks.flatMap((r, i) => (r === rank ? [i] : []));
    if (chosen.length + front.length <= wanted) {
      chosen.push(...front);
      continue;
    }
    const selected: number[] = [];
    const remaining = [...front];
    while (chosen.length + selected.length < wanted) {
      let bestAt = 0;
      let bestArea = -Infinity;
      remaining.forEach((candidate, at) => {
        const area = hypervolume2D([...selected, candidate].map((i) => points[i]! as [number, number]), reference);
        if (area > bestArea) [bestArea, bestAt] = [area, at];
      });
      selected.push(remaining.splice(bestAt, 1)[0]!);
    }
    chosen.push(...selected);
  }
  const chosenSet = new Set(chosen);
  const goodPoints = chosen.map((i) => points[i]! as [number, number]);
  const total = hypervolume2D(goodPoints, reference);
  const raw = goodPoints.map((_, i) => Math.max(WEIGHT_FLOOR, total - hypervolume2D(goodPoints.filter((__, j) => j !== i), reference)));
  const mean = raw.reduce((sum, value) => sum + value, 0) / raw.length;
  return {
    good: chosen.map((i) => history[i]!),
    goodWeights: raw.map((value) => value / mean),
    rest: history.filter((_, i) => !chosenSet.has(i)),
  };
}

/** Optuna's reference for hypervolume weights: the worst value of each objective, pushed 10 % (and a bit) further. */
export function referencePoint(points: readonly (readonly number[])[]): [number, number] {
  const worst = (k: number) => Math.max(...points.map((point) => point[k]!));
  const push = (value: number) => (value > 0 ? value * 1.1 : value * 0.9) + 1e-6;
  return [push(worst(0)), push(worst(1))];
}
