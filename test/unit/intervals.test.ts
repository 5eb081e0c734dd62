import { describe, expect, it } from 'vitest';
import { bootstrapAucInterval, midpointMisclassified, sortedQuantile, wilsonInterval, wilsonIntervalOfRate, Z_95 } from '../../src/core/intervals';
import { mulberry32 } from '../../src/core/random';

/** Wilson's interval as the two roots of (p̂ − π)² = z²·π(1 − π)/n, a quadratic in π (float64, written out here). */
function wilsonByQuadratic(k: number, n: number, z: number): [number, number] {
  const p = k / n;
  const a = 1 + (z * z) / n;
  const b = -(2 * p + (z * z) / n);
  const c = p * p;
  const root = Math.sqrt(b * b - 4 * a * c);
  return [(-b - root) / (2 * a), (-b + root) / (2 * a)];
}

/** AUC by the definition: every (positive, negative) pair, ties ½. */
function pairwiseAuc(positive: number[], negative: number[]): number {
  let wins = 0;
  for (const x of positive) for (const y of negative) wins += x > y ? 1 : x === y ? 0.5 : 0;
  return wins / (positive.length * negative.length);
}

const TIGHT = 1e-12;

describe('Wilson score interval', () => {
  it('matches the roots of its defining quadratic', () => {
    for (const [k, n] of [[1, 18], [5, 10], [17, 18], [3, 54], [27, 54], [1, 1], [0, 1]]) {
      const [low, high] = wilsonByQuadratic(k, n, Z_95);
      const interval = wilsonInterval(k, n);
      expect(interval.low).toBeCloseTo(Math.max(0, low), 12);
      expect(interval.high).toBeCloseTo(Math.min(1, high), 12);
    }
  });

  it('has the closed-form end z²/(n + z²) at zero successes and is exact at the bounds', () => {
    const interval = wilsonInterval(0, 10);
    expect(interval.low).toBe(0);
    expect(Math.abs(interval.high - (Z_95 * Z_95) / (10 + Z_95 * Z_95))).toBeLessThan(TIGHT);
    expect(interval.high).toBeCloseTo(0.2775, 4); // the textbook value for 0/10
    expect(wilsonInterval(10, 10).high).toBe(1);
    expect(Math.abs(wilsonInterval(10, 10).low - 10 / (10 + Z_95 * Z_95))).toBeLessThan(TIGHT);
  });

  it('is symmetric about ½ under k → n − k and knows nothing at n = 0', () => {
    const a = wilsonInterval(4, 18);
    const b = wilsonInterval(14, 18);
    expect(Math.abs(a.low - (1 - b.high))).toBeLessThan(TIGHT);
    expect(wilsonInterval(0, 0)).toEqual({ low: 0, high: 1 });
  });

  it('reads a rate back as k/n and rejects one that is not', () => {
    expect(wilsonIntervalOfRate(1 / 18, 18)).toEqual(wilsonInterval(1, 18));
    expect(() => wilsonIntervalOfRate(0.3, 18)).toThrow(/not a whole number/);
    expect(() => wilsonInterval(3, 2)).toThrow(/successes/);
  });
});

describe('bootstrap AUC interval', () => {
  const positive = [0.9, 1.4, 0.3, 2.2, 1.1, 0.7, 1.9, 0.2, 1.5, 0.8];
  const negative = [0.1, -0.4, 0.6, 0.35, -1.2, 0.9, 0.05, -0.3];

  it('equals a resampling loop written here with the same seeded draws', () => {
    const random = mulberry32(7);
    const values: number[] = [];
    for (let b = 0; b < 400; b++) {
      const p = positive.map(() => positive[Math.floor(random() * positive.length)]);
      const q = negative.map(() => negative[Math.floor(random() * negative.length)]);
      values.push(pairwiseAuc(p, q));
    }
    values.sort((x, y) => x - y);
    // Type-7 quantile by hand: position q·(B − 1) between order statistics.
    const at = (q: number) => {
      const position = q * (values.length - 1);
      const below = Math.floor(position);
      return values[below] + (position - below) * (values[below + 1] - values[below]);
    };
    const interval = bootstrapAucInterval(positive, negative, { resamples: 400, seed: 7 });
    expect(Math.abs(interval.low - at(0.025))).toBeLessThan(TIGHT);
    expect(Math.abs(interval.high - at(0.975))).toBeLessThan(TIGHT);
    const point = pairwiseAuc(positive, negative);
    expect(interval.low).toBeLessThanOrEqual(point);
    expect(interval.high).toBeGreaterThanOrEqual(point);
    expect(interval.low).toBeLessThan(interval.high);
  });

  it('is reproducible for a seed and collapses to [1, 1] for perfectly separated sets', () => {
    expect(bootstrapAucInterval(positive, negative, { seed: 3 })).toEqual(bootstrapAucInterval(positive, negative, { seed: 3 }));
    expect(bootstrapAucInterval([5, 6, 7], [1, 2], { seed: 1 })).toEqual({ low: 1, high: 1 });
    expect(() => bootstrapAucInterval([], [1])).toThrow(/both sets/);
  });

  it('type-7 quantile: ends and midpoints', () => {
    expect(sortedQuantile([1, 2, 3, 4], 0)).toBe(1);
    expect(sortedQuantile([1, 2, 3, 4], 1)).toBe(4);
    expect(sortedQuantile([1, 2, 3, 4], 0.5)).toBe(2.5);
  });
});

describe('midpoint misclassification', () => {
  it('flags A scores at or below and B scores at or above the midpoint of the two means', () => {
    // means: A = 2, B = 0 → threshold 1.
    const result = midpointMisclassified([3, 1, 2.5, 1.5, 2], [0, -1, 1.2, -0.2, 0]);
    expect(result.threshold).toBe(1);
    expect(result.a).toEqual([1]);
    expect(result.b).toEqual([2]);
    expect(() => midpointMisclassified([], [1])).toThrow(/both sets/);
  });
});
