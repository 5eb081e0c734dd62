/**
 * Pareto dominance for minimization, non-dominated sorting and the exact 2-D hypervolume: the bookkeeping of
 * the multi-objective recipe search (objectives: refusal rate, first-token KL; both minimized).
 */

/** `a` dominates `b`: no worse in every objective and strictly better in at least one (all minimized). */
export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let strictlyBetter = false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]! > b[i]!) return false;
    if (a[i]! < b[i]!) strictlyBetter = true;
  }
  return strictlyBetter;
}

/**
 * Non-dominated rank of every point: 0 = the Pareto front, 1 = the front once rank 0 is removed, and so on
 * (Deb's fast non-dominated sort, O(M·n²)). Equal points share a rank.
 */
export function nonDominatedRanks(points: readonly (readonly number[])[]): number[] {
  const count = points.length;
  const dominatedBy = new Array<number>(count).fill(0); // how many points dominate i
  const dominating: number[][] = Array.from({ length: count }, () => []); // the points i dominates
  for (let i = 0; i < count; i++) {
    for (let j = i + 1; j < count; j++) {
      if (dominates(points[i]!, points[j]!)) {
        dominating[i]!.push(j);
        dominatedBy[j]!++;
      } else if (dominates(points[j]!, points[i]!)) {
        dominating[j]!.push(i);
        dominatedBy[i]!++;
      }
    }
  }
  const ranks = new Array<number>(count).fill(-1);
  let front = dominatedBy.flatMap((n, i) => (n === 0 ? [i] : []));
  for (let rank = 0; front.length > 0; rank++) {
    const next: number[] = [];
    for (const i of front) {
      ranks[i] = rank;
      for (const j of dominating[i]!) if (--dominatedBy[j]! === 0) next.push(j);
    }
    front = next;
  }
  return ranks;
}

/** Indices of the non-dominated points (rank 0), in input order. */
export function paretoFront(points: readonly (readonly number[])[]): number[] {
  return nonDominatedRanks(points).flatMap((rank, i) => (rank === 0 ? [i] : []));
}

/**
 * The exact area dominated by 2-D points (minimized) and bounded by the reference point: the union of the
 * boxes [x, refX] × [y, refY]. Points not strictly better than the reference in both objectives add nothing.
 */
export function hypervolume2D(points: readonly (readonly [number, number])[], reference: readonly [number, number]): number {
  const [refX, refY] = reference;
  const inside = points.filter(([x, y]) => x < refX && y < refY).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let area = 0;
  let ceiling = refY; // lowest y seen so far: the staircase height to the right of the current x
  for (let i = 0; i < inside.length; i++) {
    const [x, y] = inside[i]!;
    if (y >= ceiling) continue; // dominated (or equal) by a point to its left
    // Horizontal slab between y and the previous step's height, from x to the reference.
    area += (refX - x) * (ceiling - y);
    ceiling = y;
  }
  return area;
}

/**
 * How much each point alone adds to the hypervolume of the set (0 for dominated or duplicate points):
 * HV(all) − HV(all without i). Used to rank points within one non-dominated front.
 */
export function hypervolumeContributions2D(points: readonly (readonly [number, number])[], reference: readonly [number, number]): number[] {
  const total = hypervolume2D(points, reference);
  return points.map((_, i) => total - hypervolume2D(points.filter((__, j) => j !== i), reference));
}
