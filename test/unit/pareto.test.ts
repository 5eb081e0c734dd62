import { describe, expect, it } from 'vitest';
import { dominates, hypervolume2D, hypervolumeContributions2D, nonDominatedRanks, paretoFront } from '../../src/core/pareto';
import { mulberry32 } from '../../src/core/random';

/** Areas here are sums of a few products of small numbers: float64 agrees to well below this. */
const AREA_TOLERANCE = 1e-12;

/** Reference: the union of boxes [x, rx] × [y, ry] by inclusion–exclusion over every subset (exact, 2^n terms). */
function unionAreaByInclusionExclusion(points: [number, number][], [rx, ry]: [number, number]): number {
  let area = 0;
  for (let mask = 1; mask < 1 << points.length; mask++) {
    let x = -Infinity;
    let y = -Infinity;
    let size = 0;
    points.forEach(([px, py], i) => {
      if (mask & (1 << i)) {
        x = Math.max(x, px);
        y = Math.max(y, py);
        size++;
      }
    });
    const box = Math.max(0, rx - x) * Math.max(0, ry - y);
    area += size % 2 === 1 ? box : -box;
  }
  return area;
}

/** Reference front: a point is on it when no other point dominates it (the definition, checked pair by pair). */
function bruteForceFront(points: number[][]): number[] {
  const better = (a: number[], b: number[]) => a.every((v, k) => v <= b[k]!) && a.some((v, k) => v < b[k]!);
  return points.flatMap((p, i) => (points.some((q) => better(q, p)) ? [] : [i]));
}

function cloud(seed: number, count: number, dims = 2): number[][] {
  const random = mulberry32(seed);
  // Coarse values so ties and duplicates occur.
  return Array.from({ length: count }, () => Array.from({ length: dims }, () => Math.round(random() * 8) / 8));
}

describe('dominance and the Pareto front', () => {
  it('dominates is strict in at least one objective', () => {
    expect(dominates([1, 2], [1, 3])).toBe(true);
    expect(dominates([1, 2], [1, 2])).toBe(false);
    expect(dominates([0, 3], [1, 2])).toBe(false);
  });

  it('finds the front of a known cloud', () => {
    // (1,4) (2,2) (4,1) are the trade-offs; (3,3) is dominated by (2,2); (2,2) twice: both stay (equal, not dominated).
    const points = [[3, 3], [1, 4], [2, 2], [4, 1], [2, 2], [5, 5]];
    expect(paretoFront(points)).toEqual([1, 2, 3, 4]);
    expect(nonDominatedRanks(points)).toEqual([1, 0, 0, 0, 0, 2]);
  });

  it('matches the brute-force front on random clouds, and every rank k is the front of what ranks ≥ k leave', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const points = cloud(seed, 30, seed % 2 === 0 ? 2 : 3);
      expect(paretoFront(points)).toEqual(bruteForceFront(points));
      const ranks = nonDominatedRanks(points);
      for (let rank = 0; rank <= Math.max(...ranks); rank++) {
        const remaining = points.flatMap((_, i) => (ranks[i]! >= rank ? [i] : []));
        const front = bruteForceFront(remaining.map((i) => points[i]!)).map((j) => remaining[j]!);
        expect(front).toEqual(ranks.flatMap((r, i) => (r === rank ? [i] : [])));
      }
    }
  });
});

describe('2-D hypervolume', () => {
  it('is the box of a single point and the staircase of a known front', () => {
    expect(hypervolume2D([[1, 2]], [3, 5])).toBeCloseTo(6, 12);
    // Slabs of width 1 at heights 1, 2, 3 under the reference (4, 4): 6.
    expect(hypervolume2D([[1, 3], [2, 2], [3, 1]], [4, 4])).toBeCloseTo(6, 12);
    // A dominated point, a duplicate and a point beyond the reference add nothing.
    expect(hypervolume2D([[1, 3], [2, 2], [3, 1], [3, 3], [2, 2], [5, 0]], [4, 4])).toBeCloseTo(6, 12);
    expect(hypervolume2D([], [1, 1])).toBe(0);
  });

  it('equals inclusion–exclusion over the boxes on random clouds', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const points = cloud(seed, 9) as [number, number][];
      expect(Math.abs(hypervolume2D(points, [1.1, 1.2]) - unionAreaByInclusionExclusion(points, [1.1, 1.2]))).toBeLessThan(AREA_TOLERANCE);
    }
  });

  it('contributions: exclusive areas of a known front; zero for a dominated point', () => {
    // (1,3): [1,2]×[3,4] = 1; (2,2): [2,3]×[2,3] = 1; (3,1): [3,4]×[1,2] = 1; (3,3) dominated.
    const contributions = hypervolumeContributions2D([[1, 3], [2, 2], [3, 1], [3, 3]], [4, 4]);
    [1, 1, 1, 0].forEach((expected, i) => expect(contributions[i]).toBeCloseTo(expected, 12));
  });
});
