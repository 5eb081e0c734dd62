import { describe, expect, it } from 'vitest';
import {
  accumulateInto,
  cosineSimilarity,
  crossLayerCosineMatrix,
  differenceOfMeans,
  dot,
  euclideanNorm,
  histogram,
  meanOfRows,
  projectOutMean,
  projectRows,
  rocAuc,
  seededRandom,
  seededSplit,
  sharedHistogramEdges,
  standardizedMeanGap,
  StatisticsError,
} from '../../src/core/statistics';

/** The definition itself: count every (positive, negative) pair, ties ½. O(n·m). */
function bruteForceAuc(positive: number[], negative: number[]): number {
  let wins = 0;
  for (const p of positive) for (const q of negative) wins += p > q ? 1 : p === q ? 0.5 : 0;
  return wins / (positive.length * negative.length);
}

describe('rocAuc', () => {
  it('matches closed cases', () => {
    expect(rocAuc([2, 3], [0, 1])).toBe(1);
    expect(rocAuc([0, 1], [2, 3])).toBe(0);
    expect(rocAuc([1, 1, 1], [1, 1])).toBe(0.5);
    expect(rocAuc([1, 3], [2])).toBe(0.5);
    // 2 beats {1}, ties {2} → 1 + ½ over 2 pairs
    expect(rocAuc([2], [1, 2])).toBe(0.75);
  });

  it('equals the brute-force pair count on random data with many ties', () => {
    const random = seededRandom(7);
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + Math.floor(random() * 40);
      const m = 1 + Math.floor(random() * 40);
      // Coarse values force ties between and within sets.
      const positive = Array.from({ length: n }, () => Math.floor(random() * 6) + 0.5 * (trial % 2));
      const negative = Array.from({ length: m }, () => Math.floor(random() * 6));
      expect(rocAuc(positive, negative)).toBeCloseTo(bruteForceAuc(positive, negative), 14);
    }
  });

  it('rejects empty sets and NaN scores', () => {
    expect(() => rocAuc([], [1])).toThrow(StatisticsError);
    expect(() => rocAuc([Number.NaN], [1])).toThrow(/NaN/);
  });
});

describe('means and directions', () => {
  it('accumulates float32 rows in float64', () => {
    // 1 + 1e-8 is not representable in float32 accumulation of 1e6 rows; float64 keeps the sum exact enough.
    const rows = 100_000;
    const data = new Float32Array(rows * 2);
    for (let i = 0; i < rows; i++) {
      data[2 * i] = 0.1;
      data[2 * i + 1] = i % 2 === 0 ? 1 : 3;
    }
    const mean = meanOfRows({ data, rows, width: 2 });
    expect(mean[0]).toBeCloseTo(Math.fround(0.1), 12);
    expect(mean[1]).toBe(2);
    const sum = new Float64Array(2);
    accumulateInto(sum, [1, 2, 3, 4], 2);
    expect(Array.from(sum)).toEqual([3, 4]);
  });

  it('takes the mean of selected rows and rejects bad indices', () => {
    const matrix = { data: new Float32Array([1, 2, 3, 4, 5, 6]), rows: 3, width: 2 };
    expect(Array.from(meanOfRows(matrix, [0, 2]))).toEqual([3, 4]);
    expect(() => meanOfRows(matrix, [3])).toThrow(/out of range/);
    expect(() => meanOfRows(matrix, [])).toThrow(/zero rows/);
  });

  it('normalizes the gap and flags a zero gap as degenerate', () => {
    const result = differenceOfMeans([3, 4, 0], [0, 0, 0]);
    expect(result.gapNorm).toBe(5);
    expect(Array.from(result.direction)).toEqual([0.6, 0.8, 0]);
    const same = differenceOfMeans([1, 2, 3], [1, 2, 3]);
    expect(same.degenerate).toBe(true);
    expect(same.gapNorm).toBe(0);
    expect(Array.from(same.direction)).toEqual([0, 0, 0]);
  });

  it('computes norms without overflow', () => {
    expect(euclideanNorm([3e200, 4e200])).toBeCloseTo(5e200, -190);
    expect(euclideanNorm([0, 0])).toBe(0);
  });

  it('projects out the compliance mean', () => {
    const projected = projectOutMean([1, 1, 0].map((x) => x / Math.SQRT2), [2, 0, 0]);
    expect(dot(projected, [1, 0, 0])).toBeCloseTo(0, 15);
    expect(euclideanNorm(projected)).toBeCloseTo(1, 15);
    expect(Array.from(projected)).toEqual([0, 1, 0]);
    // Parallel to the mean: nothing is left.
    expect(Array.from(projectOutMean([1, 0], [5, 0]))).toEqual([0, 0]);
  });

  it('scores rows along a direction', () => {
    const matrix = { data: [1, 2, 3, 4], rows: 2, width: 2 };
    expect(Array.from(projectRows(matrix, [1, 0]))).toEqual([1, 3]);
    expect(Array.from(projectRows(matrix, [0, 1], [1]))).toEqual([4]);
    expect(() => projectRows(matrix, [1, 0, 0])).toThrow(/length/);
  });
});

describe('cosine and d′', () => {
  it('computes cosines, NaN for zero vectors', () => {
    expect(cosineSimilarity([1, 0], [0, 2])).toBe(0);
    expect(cosineSimilarity([1, 1], [2, 2])).toBeCloseTo(1, 15);
    expect(cosineSimilarity([1, 0], [-3, 0])).toBe(-1);
    expect(cosineSimilarity([0, 0], [1, 0])).toBeNaN();
    const matrix = crossLayerCosineMatrix([[1, 0], [0, 1], [0, 0]]);
    expect(matrix[0]).toEqual([1, 0, Number.NaN]);
    expect(matrix[2][2]).toBeNaN();
  });

  it('matches the pooled-variance formula', () => {
    // A: mean 2, var 1; B: mean 0, var 1 → d′ = 2.
    expect(standardizedMeanGap([1, 2, 3], [-1, 0, 1])).toBeCloseTo(2, 15);
    // A: sample var 8 (values 0, 4), mean 2; B: var 0, mean 0 → 2 / √((8 + 0)/2) = 1.
    expect(standardizedMeanGap([0, 4], [0, 0])).toBeCloseTo(1, 15);
    expect(standardizedMeanGap([1, 1], [0, 0])).toBe(Number.POSITIVE_INFINITY);
    expect(standardizedMeanGap([1, 1], [1, 1])).toBe(0);
  });
});

describe('seededSplit', () => {
  it('is deterministic, disjoint and covers every index', () => {
    const a = seededSplit(101, 0.25, 0);
    const b = seededSplit(101, 0.25, 0);
    expect(a).toEqual(b);
    expect(a.heldOut.length).toBe(25);
    expect(a.train.length).toBe(76);
    expect([...a.train, ...a.heldOut].sort((x, y) => x - y)).toEqual(Array.from({ length: 101 }, (_, i) => i));
    expect(seededSplit(101, 0.25, 1)).not.toEqual(a);
    expect(seededSplit(101, 0.25, 0, 1)).not.toEqual(a);
  });

  it('keeps at least one prompt on each side and honors a zero fraction', () => {
    expect(seededSplit(2, 0.01, 3).heldOut.length).toBe(1);
    expect(seededSplit(2, 0.9, 3).train.length).toBe(1);
    expect(seededSplit(1, 0.5, 0)).toEqual({ train: [0], heldOut: [] });
    expect(seededSplit(10, 0, 0).heldOut).toEqual([]);
    expect(() => seededSplit(10, 1, 0)).toThrow(/fraction/);
    expect(() => seededSplit(0, 0.25, 0)).toThrow(/split/);
  });

  it('shuffles roughly uniformly', () => {
    const counts = new Array(10).fill(0);
    for (let seed = 0; seed < 2000; seed++) for (const index of seededSplit(10, 0.2, seed).heldOut) counts[index]++;
    // Each index is held out with probability 0.2 → 400 expected of 2000.
    for (const count of counts) expect(Math.abs(count - 400)).toBeLessThan(80);
  });
});

describe('histogram', () => {
  it('counts every value in shared edges, the top edge in the last bin', () => {
    const edges = sharedHistogramEdges([[0, 1], [2]], 4);
    expect(edges).toEqual([0, 0.5, 1, 1.5, 2]);
    expect(histogram([0, 0.4, 1, 2], edges)).toEqual([2, 0, 1, 1]);
    expect(sharedHistogramEdges([[3, 3]], 2)).toEqual([2.5, 3, 3.5]);
  });
});
