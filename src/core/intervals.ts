/**
 * Uncertainty of the numbers the workbench reports: Wilson score intervals for rates (refusal rate, action rate:
 * k successes out of n prompts) and stratified percentile-bootstrap intervals for the ROC AUC. With 18 or 54
 * prompts a rate of 0.056 is one refusal, and these intervals say how little that pins down.
 * Pure; imports nothing outside src/core.
 */
import { mulberry32 } from './random';
import { rocAuc, StatisticsError } from './statistics';

/** Two-sided 95 % normal quantile z_{0.975}. */
export const Z_95 = 1.959963984540054;
/** Resamples per bootstrap interval: the percentile ends move by < 0.01 AUC between seeds at this count. */
export const DEFAULT_BOOTSTRAP_RESAMPLES = 1000;

export interface Interval {
  low: number;
  high: number;
}

/**
 * Wilson score interval for a binomial proportion k/n:
 * (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n). Unlike p ± z·√(p(1−p)/n) it stays inside [0, 1] and is not
 * zero-width at 0 or n successes. n = 0 gives [0, 1] (nothing is known).
 */
export function wilsonInterval(successes: number, trials: number, z = Z_95): Interval {
  if (!Number.isInteger(trials) || trials < 0) throw new StatisticsError(`Wilson interval needs a whole number of trials, got ${trials}`);
  if (!Number.isInteger(successes) || successes < 0 || successes > trials) throw new StatisticsError(`Wilson interval needs 0 ≤ successes ≤ ${trials}, got ${successes}`);
  if (trials === 0) return { low: 0, high: 1 };
  const p = successes / trials;
  const z2 = z * z;
  const denominator = 1 + z2 / trials;
  const center = (p + z2 / (2 * trials)) / denominator;
  const half = (z / denominator) * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials));
  // At k = 0 (or n) the closed form's low (high) end is exactly 0 (1); clamp the rounding residue.
  return { low: successes === 0 ? 0 : Math.max(0, center - half), high: successes === trials ? 1 : Math.min(1, center + half) };
}

/** Wilson interval of a rate reported as a fraction of `trials` (the rate must be k/trials for a whole k). */
export function wilsonIntervalOfRate(rate: number, trials: number, z = Z_95): Interval {
  const successes = Math.round(rate * trials);
  if (Math.abs(successes - rate * trials) > 1e-6) throw new StatisticsError(`rate ${rate} is not a whole number of ${trials} trials`);
  return wilsonInterval(successes, trials, z);
}

/** Quantile q of sorted values, linear interpolation between order statistics (Hyndman–Fan type 7, numpy's default). */
export function sortedQuantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) throw new StatisticsError('quantile of an empty list');
  if (!(q >= 0 && q <= 1)) throw new StatisticsError(`quantile ${q} outside [0, 1]`);
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
}

export interface BootstrapOptions {
  resamples?: number;
  seed?: number;
  /** Central coverage, 0.95 by default. */
  level?: number;
}

/**
 * Percentile bootstrap interval of rocAuc(positive, negative). Each resample draws n positives and m negatives
 * with replacement, each set on its own (stratified, so every resample has both classes): for resample b,
 * positives first then negatives, index = ⌊u·n⌋ with u from one mulberry32(seed) stream. Deterministic for a seed.
 */
export function bootstrapAucInterval(positive: ArrayLike<number>, negative: ArrayLike<number>, options: BootstrapOptions = {}): Interval {
  const resamples = options.resamples ?? DEFAULT_BOOTSTRAP_RESAMPLES;
  const level = options.level ?? 0.95;
  if (!Number.isInteger(resamples) || resamples < 1) throw new StatisticsError(`bootstrap needs ≥ 1 resample, got ${resamples}`);
  if (!(level > 0 && level < 1)) throw new StatisticsError(`bootstrap level must be in (0, 1), got ${level}`);
  const n = positive.length;
  const m = negative.length;
  if (n === 0 || m === 0) throw new StatisticsError(`AUC needs scores in both sets (got ${n} and ${m})`);
  const random = mulberry32(options.seed ?? 0);
  const drawnPositive = new Float64Array(n);
  const drawnNegative = new Float64Array(m);
  const values = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < n; i++) drawnPositive[i] = positive[Math.floor(random() * n)];
    for (let i = 0; i < m; i++) drawnNegative[i] = negative[Math.floor(random() * m)];
    values[b] = rocAuc(drawnPositive, drawnNegative);
  }
  values.sort();
  const tail = (1 - level) / 2;
  return { low: sortedQuantile(values, tail), high: sortedQuantile(values, 1 - tail) };
}

/** The 95 % Wilson interval of a rate over `trials` prompts as the pair [low, high] that JSON results carry. */
export function wilsonPair(rate: number, trials: number): [number, number] {
  const interval = wilsonIntervalOfRate(rate, trials);
  return [interval.low, interval.high];
}

/**
 * Which scores fall on the wrong side of the midpoint between the two sets' mean scores: A ("refusal") scores
 * at or below it, B scores at or above it (a score exactly on it counts as wrong for either set). r_l points from
 * B's mean to A's, so A is expected above. Returns positions into the given arrays and the threshold.
 */
export function midpointMisclassified(scoresA: ArrayLike<number>, scoresB: ArrayLike<number>): { threshold: number; a: number[]; b: number[] } {
  if (scoresA.length === 0 || scoresB.length === 0) throw new StatisticsError(`misclassification needs scores in both sets (got ${scoresA.length} and ${scoresB.length})`);
  const mean = (values: ArrayLike<number>) => {
    let total = 0;
    for (let i = 0; i < values.length; i++) total += values[i];
    return total / values.length;
  };
  const threshold = (mean(scoresA) + mean(scoresB)) / 2;
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < scoresA.length; i++) if (scoresA[i] <= threshold) a.push(i);
  for (let i = 0; i < scoresB.length; i++) if (scoresB[i] >= threshold) b.push(i);
  return { threshold, a, b };
}
