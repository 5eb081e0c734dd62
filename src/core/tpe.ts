/**
 * Multi-objective TPE (Ozaki et al. 2020, "Multiobjective tree-structured Parzen estimator"; the algorithm of
 * Optuna's TPESampler with several objectives, which heretic uses): after `startupTrials` uniform random
 * trials, the finished trials are split into a "good" set — whole non-dominated fronts, rank by rank, the last
 * front cut by greedy hypervolume subset selection — and the rest; each parameter gets a Parzen density l(x)
 * on the good set and g(x) on the rest (independent per parameter, a uniform-ish prior mixed in), and of
 * `candidates` draws from l the one maximizing Σ log l(x) − log g(x) is the next trial.
 *
 * Deterministic for a seed: trial i draws from its own generator seeded by (seed, i), so a resumed search
 * proposes exactly what the uninterrupted one would have, given the same finished trials.
 */
import { hypervolume2D, nonDominatedRanks } from './pareto';
import { mulberry32 } from './random';
import { PARAMETER_NAMES, sampleUniform, type ParameterValues, type SearchSpace } from './search-space';

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
}

export const DEFAULT_STARTUP_TRIALS = 10;
const DEFAULT_CANDIDATES = 24;
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

  constructor(
    private readonly space: SearchSpace,
    options: TpeOptions = {},
  ) {
    this.seed = options.seed ?? 0;
    this.startupTrials = options.startupTrials ?? DEFAULT_STARTUP_TRIALS;
    this.candidates = options.candidates ?? DEFAULT_CANDIDATES;
    this.priorWeight = options.priorWeight ?? 1;
  }

  propose(trial: number, history: readonly FinishedTrial[]): ParameterValues {
    const random = trialRandom(this.seed, trial);
    if (history.length < this.startupTrials || history.length < 2) return sampleUniform(this.space, random);
    const { good, goodWeights, rest } = splitGoodAndRest(history);
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

/** One parameter's density, fitted on a set of trials. */
interface Density {
  sample(random: () => number): number | string;
  logDensity(value: number | string): number;
}

const SQRT2 = Math.SQRT2;
const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** erf(x) (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7): enough for a sampler's densities. */
export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign * (1 - poly * Math.exp(-x * x));
}

const normalCdf = (z: number) => 0.5 * (1 + erf(z / SQRT2));

function logSumExp(values: readonly number[]): number {
  const top = Math.max(...values);
  if (top === -Infinity) return -Infinity;
  return top + Math.log(values.reduce((sum, value) => sum + Math.exp(value - top), 0));
}

/** A mixture of normals truncated to [low, high]: one per observation plus a broad prior at the middle. */
export class ParzenFloat implements Density {
  private constructor(
    private readonly means: number[],
    private readonly sigmas: number[],
    private readonly logWeights: number[],
    private readonly weights: number[],
    private readonly low: number,
    private readonly high: number,
  ) {}

  /**
   * Bandwidths by hyperopt's neighbour rule: each component's sigma is the larger gap to its sorted neighbours
   * (the range ends count as neighbours), clipped to [(high − low)/min(100, n + 1), high − low].
   */
  static fit(observations: readonly number[], weights: readonly number[], [low, high]: readonly [number, number], priorWeight: number): ParzenFloat {
    const span = high - low;
    if (span === 0) return new ParzenFloat([low], [1], [0], [1], low, high);
    const means = [...observations, (low + high) / 2];
    const allWeights = [...weights, priorWeight];
    const order = means.map((_, i) => i).sort((a, b) => means[a]! - means[b]!);
    const sigmas = new Array<number>(means.length);
    const minimum = span / Math.min(100, means.length + 1);
    order.forEach((index, at) => {
      const left = at === 0 ? low : means[order[at - 1]!]!;
      const right = at === order.length - 1 ? high : means[order[at + 1]!]!;
      sigmas[index] = Math.min(span, Math.max(minimum, means[index]! - left, right - means[index]!));
    });
    sigmas[means.length - 1] = span; // the prior stays broad
    const total = allWeights.reduce((sum, value) => sum + value, 0);
    const normalized = allWeights.map((value) => value / total);
    return new ParzenFloat(means, sigmas, normalized.map(Math.log), normalized, low, high);
  }

  sample(random: () => number): number {
    if (this.high === this.low) return this.low;
    let pick = random();
    let component = 0;
    while (component < this.weights.length - 1 && pick >= this.weights[component]!) pick -= this.weights[component++]!;
    const mean = this.means[component]!;
    const sigma = this.sigmas[component]!;
    for (let attempt = 0; attempt < 64; attempt++) {
      // Box–Muller; 1 − u keeps the logarithm finite.
      const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      const value = mean + sigma * normal;
      if (value >= this.low && value <= this.high) return value;
    }
    return Math.min(this.high, Math.max(this.low, mean));
  }

  logDensity(value: number | string): number {
    if (this.high === this.low) return 0;
    const x = value as number;
    return logSumExp(
      this.means.map((mean, i) => {
        const sigma = this.sigmas[i]!;
        const mass = normalCdf((this.high - mean) / sigma) - normalCdf((this.low - mean) / sigma);
        const z = (x - mean) / sigma;
        return this.logWeights[i]! - 0.5 * z * z - LOG_SQRT_2PI - Math.log(sigma) - Math.log(Math.max(mass, 1e-300));
      }),
    );
  }
}

/** Weighted choice counts plus a prior spread evenly over the choices. */
export class ParzenCategorical implements Density {
  private constructor(
    private readonly choices: readonly string[],
    private readonly probabilities: number[],
  ) {}

  static fit(observations: readonly string[], weights: readonly number[], choices: readonly string[], priorWeight: number): ParzenCategorical {
    const mass = choices.map(() => priorWeight / choices.length);
    observations.forEach((value, i) => {
      const at = choices.indexOf(value);
      if (at >= 0) mass[at]! += weights[i]!;
    });
    const total = mass.reduce((sum, value) => sum + value, 0);
    return new ParzenCategorical(choices, mass.map((value) => value / total));
  }

  sample(random: () => number): string {
    let pick = random();
    for (let i = 0; i < this.choices.length - 1; i++) {
      if (pick < this.probabilities[i]!) return this.choices[i]!;
      pick -= this.probabilities[i]!;
    }
    return this.choices[this.choices.length - 1]!;
  }

  logDensity(value: number | string): number {
    const at = this.choices.indexOf(value as string);
    return at < 0 ? -Infinity : Math.log(this.probabilities[at]!);
  }
}
