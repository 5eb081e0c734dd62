/**
 * Pure statistics for the refusal-direction analysis (docs/definitions.md "Definitions"). Every accumulation is float64
 * whatever the input precision, so means of thousands of float32 activations do not drift.
 * Imports nothing outside src/core.
 */

import { mulberry32 } from './random';

/** A row-major matrix view: `rows` × `width` values in `data` (Float32 activations or Float64 results). */
export interface RowMatrix {
  data: ArrayLike<number>;
  rows: number;
  width: number;
}

/** Thrown for statistically meaningless requests (empty sets, mismatched lengths); callers wrap it. */
export class StatisticsError extends Error {
  override name = 'StatisticsError';
}

function checkMatrix(matrix: RowMatrix): void {
  if (!Number.isInteger(matrix.rows) || !Number.isInteger(matrix.width) || matrix.rows < 0 || matrix.width <= 0) {
    throw new StatisticsError(`invalid matrix shape [${matrix.rows}, ${matrix.width}]`);
  }
  if (matrix.data.length < matrix.rows * matrix.width) {
    throw new StatisticsError(`matrix data holds ${matrix.data.length} values, shape [${matrix.rows}, ${matrix.width}] needs ${matrix.rows * matrix.width}`);
  }
}

/** Adds `values[offset .. offset + sum.length)` into `sum` (float64 accumulation of float32 rows). */
export function accumulateInto(sum: Float64Array, values: ArrayLike<number>, offset = 0): void {
  for (let i = 0; i < sum.length; i++) sum[i] += values[offset + i];
}

/** Float64 mean of the selected rows (all rows when `rowIndices` is omitted). */
export function meanOfRows(matrix: RowMatrix, rowIndices?: ArrayLike<number>): Float64Array {
  checkMatrix(matrix);
  const count = rowIndices ? rowIndices.length : matrix.rows;
  if (count === 0) throw new StatisticsError('cannot take the mean of zero rows');
  const sum = new Float64Array(matrix.width); // [width]
  for (let k = 0; k < count; k++) {
    const row = rowIndices ? rowIndices[k] : k;
    if (!Number.isInteger(row) || row < 0 || row >= matrix.rows) throw new StatisticsError(`row index ${row} out of range [0, ${matrix.rows})`);
    accumulateInto(sum, matrix.data, row * matrix.width);
  }
  for (let i = 0; i < sum.length; i++) sum[i] /= count;
  return sum;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new StatisticsError(`dot of vectors of lengths ${a.length} and ${b.length}`);
  let total = 0;
  for (let i = 0; i < a.length; i++) total += a[i] * b[i];
  return total;
}

export function euclideanNorm(values: ArrayLike<number>): number {
  // Scaled to avoid overflow/underflow on extreme activations (large residual norms in big models).
  let scale = 0;
  for (let i = 0; i < values.length; i++) scale = Math.max(scale, Math.abs(values[i]));
  if (scale === 0 || !Number.isFinite(scale)) return scale;
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    const scaled = values[i] / scale;
    total += scaled * scaled;
  }
  return scale * Math.sqrt(total);
}

export function subtract(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  if (a.length !== b.length) throw new StatisticsError(`subtracting vectors of lengths ${a.length} and ${b.length}`);
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] - b[i];
  return out;
}

/** Unit vector along `values`, or null when it has no direction (zero, or not finite). */
export function normalizeOrNull(values: ArrayLike<number>): Float64Array | null {
  const length = euclideanNorm(values);
  if (!(length > 0) || !Number.isFinite(length)) return null;
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] / length;
  return out;
}

/**
 * Mean gaps smaller than this fraction of the mean norms are rounding noise, not a direction: e.g. the embedding
 * output at the last prompt token when every prompt ends in the same template token (toy-llama's index 0).
 */
export const RELATIVE_GAP_NOISE_FLOOR = 1e-9;

export interface DifferenceOfMeans {
  /** normalize(meanA − meanB); all zeros when the gap is below the noise floor (no direction exists). */
  direction: Float64Array; // [width]
  /** ‖meanA − meanB‖ (0 when below the noise floor). */
  gapNorm: number;
  degenerate: boolean;
}

/** r = normalize(mean_A − mean_B), the difference-of-means direction (docs/definitions.md). */
export function differenceOfMeans(meanA: ArrayLike<number>, meanB: ArrayLike<number>): DifferenceOfMeans {
  const gap = subtract(meanA, meanB);
  const gapNorm = euclideanNorm(gap);
  const scale = Math.max(euclideanNorm(meanA), euclideanNorm(meanB));
  const unit = gapNorm > RELATIVE_GAP_NOISE_FLOOR * scale ? normalizeOrNull(gap) : null;
  if (!unit) return { direction: new Float64Array(gap.length), gapNorm: 0, degenerate: true };
  return { direction: unit, gapNorm, degenerate: false };
}

/**
 * r orthogonalized against the normalized compliance mean m̂ and renormalized: r − (r·m̂)m̂. Removes the part of
 * the direction that only says "how large the activation is along the average compliance activation".
 * Returns zeros when r is (numerically) parallel to m̂ or zero.
 */
export function projectOutMean(direction: ArrayLike<number>, complianceMean: ArrayLike<number>): Float64Array {
  const meanUnit = normalizeOrNull(complianceMean);
  const out = Float64Array.from(direction as ArrayLike<number>);
  if (!meanUnit) return out;
  const along = dot(out, meanUnit);
  for (let i = 0; i < out.length; i++) out[i] -= along * meanUnit[i];
  const originalNorm = euclideanNorm(direction);
  const remaining = euclideanNorm(out);
  if (!(remaining > RELATIVE_GAP_NOISE_FLOOR * originalNorm)) return new Float64Array(out.length);
  for (let i = 0; i < out.length; i++) out[i] /= remaining;
  return out;
}

/** cos(a, b); NaN when either vector is zero (an undefined angle is not 0). */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const normA = euclideanNorm(a);
  const normB = euclideanNorm(b);
  if (!(normA > 0) || !(normB > 0)) return Number.NaN;
  const value = dot(a, b) / (normA * normB);
  return Math.max(-1, Math.min(1, value));
}

/** Scores x·r for the selected rows of `matrix` (all rows when `rowIndices` is omitted). */
export function projectRows(matrix: RowMatrix, direction: ArrayLike<number>, rowIndices?: ArrayLike<number>): Float64Array {
  checkMatrix(matrix);
  if (direction.length !== matrix.width) throw new StatisticsError(`direction length ${direction.length} ≠ row width ${matrix.width}`);
  const count = rowIndices ? rowIndices.length : matrix.rows;
  const scores = new Float64Array(count); // [count]
  for (let k = 0; k < count; k++) {
    const row = rowIndices ? rowIndices[k] : k;
    if (!Number.isInteger(row) || row < 0 || row >= matrix.rows) throw new StatisticsError(`row index ${row} out of range [0, ${matrix.rows})`);
    const base = row * matrix.width;
    let total = 0;
    for (let i = 0; i < matrix.width; i++) total += matrix.data[base + i] * direction[i];
    scores[k] = total;
  }
  return scores;
}

/**
 * ROC AUC of `positive` vs `negative` scores = P(x⁺ > x⁻) + ½·P(x⁺ = x⁻) (Mann–Whitney U / nm).
 * O((n+m) log(n+m)) by sorting and counting tied groups; exact for ties.
 */
export function rocAuc(positive: ArrayLike<number>, negative: ArrayLike<number>): number {
  const n = positive.length;
  const m = negative.length;
  if (n === 0 || m === 0) throw new StatisticsError(`AUC needs scores in both sets (got ${n} and ${m})`);
  const all: { value: number; positive: boolean }[] = [];
  for (let i = 0; i < n; i++) all.push({ value: positive[i], positive: true });
  for (let i = 0; i < m; i++) all.push({ value: negative[i], positive: false });
  for (const entry of all) if (Number.isNaN(entry.value)) throw new StatisticsError('AUC of NaN scores');
  all.sort((a, b) => a.value - b.value);
  // Walk tied groups in increasing order: each positive beats every negative already passed, and ties count ½.
  let negativesBelow = 0;
  let wins = 0;
  let index = 0;
  while (index < all.length) {
    let end = index;
    let positivesInGroup = 0;
    let negativesInGroup = 0;
    while (end < all.length && all[end].value === all[index].value) {
      if (all[end].positive) positivesInGroup++;
      else negativesInGroup++;
      end++;
    }
    wins += positivesInGroup * (negativesBelow + 0.5 * negativesInGroup);
    negativesBelow += negativesInGroup;
    index = end;
  }
  return wins / (n * m);
}

export function meanOf(values: ArrayLike<number>): number {
  if (values.length === 0) throw new StatisticsError('mean of an empty list');
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i];
  return total / values.length;
}

/** Unbiased sample variance (n − 1); 0 for a single value. */
export function sampleVariance(values: ArrayLike<number>): number {
  const mean = meanOf(values);
  if (values.length < 2) return 0;
  let total = 0;
  for (let i = 0; i < values.length; i++) total += (values[i] - mean) ** 2;
  return total / (values.length - 1);
}

/**
 * Standardized mean gap d′ = (mean_A − mean_B) / √((var_A + var_B)/2). Separates layers whose AUC has saturated
 * at 1.0. ±Infinity when both sets have zero spread but different means; 0 when they coincide.
 */
export function standardizedMeanGap(scoresA: ArrayLike<number>, scoresB: ArrayLike<number>): number {
  const gap = meanOf(scoresA) - meanOf(scoresB);
  const pooled = Math.sqrt((sampleVariance(scoresA) + sampleVariance(scoresB)) / 2);
  if (pooled === 0) return gap === 0 ? 0 : gap > 0 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  return gap / pooled;
}

/**
 * mulberry32 (identical in every JS engine, so splits reproduce across Node and browsers), its seed mixed with
 * the golden-ratio constant so that small seeds (0, 1, 2, ...) start far apart.
 */
export function seededRandom(seed: number): () => number {
  return mulberry32(Math.trunc(seed) ^ 0x9e3779b9);
}

export interface Split {
  train: number[]; // sorted indices
  heldOut: number[]; // sorted indices
}

/**
 * Deterministic shuffle-split of `count` items: round(count · heldOutFraction) held out, at least one kept for
 * training and (when the fraction is > 0 and count ≥ 2) at least one held out. Same (count, fraction, seed) →
 * same split everywhere. Stratify by calling it once per prompt set with a distinct `stream`.
 */
export function seededSplit(count: number, heldOutFraction: number, seed: number, stream = 0): Split {
  if (!Number.isInteger(count) || count < 1) throw new StatisticsError(`cannot split ${count} items`);
  if (!(heldOutFraction >= 0 && heldOutFraction < 1)) throw new StatisticsError(`held-out fraction must be in [0, 1), got ${heldOutFraction}`);
  let heldOutCount = Math.round(count * heldOutFraction);
  if (heldOutFraction > 0 && count >= 2) heldOutCount = Math.max(1, heldOutCount);
  heldOutCount = Math.min(heldOutCount, count - 1);
  const order = Array.from({ length: count }, (_, i) => i);
  const random = seededRandom(Math.imul(Math.trunc(seed) + 1, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35));
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return {
    heldOut: order.slice(0, heldOutCount).sort((a, b) => a - b),
    train: order.slice(heldOutCount).sort((a, b) => a - b),
  };
}

/** cos(r_i, r_j) for every pair of layers; NaN where a direction is zero. */
export function crossLayerCosineMatrix(directions: ArrayLike<number>[]): number[][] {
  return directions.map((a, i) => directions.map((b, j) => (i === j && euclideanNorm(a) > 0 ? 1 : cosineSimilarity(a, b))));
}

/** Equal-width histogram over [min, max] of `values`; `edges` has bins + 1 entries. */
export function histogram(values: ArrayLike<number>, edges: ArrayLike<number>): number[] {
  const bins = edges.length - 1;
  if (bins < 1) throw new StatisticsError('a histogram needs at least two edges');
  const counts = new Array<number>(bins).fill(0);
  const low = edges[0];
  const high = edges[bins];
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (!(value >= low && value <= high)) continue;
    let bin = high > low ? Math.floor(((value - low) / (high - low)) * bins) : 0;
    if (bin >= bins) bin = bins - 1; // the top edge belongs to the last bin
    counts[bin]++;
  }
  return counts;
}

/** `bins` + 1 equal-width edges spanning every value of the given lists (a unit range around a single value). */
export function sharedHistogramEdges(lists: ArrayLike<number>[], bins: number): number[] {
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (const list of lists) {
    for (let i = 0; i < list.length; i++) {
      if (!Number.isFinite(list[i])) continue;
      low = Math.min(low, list[i]);
      high = Math.max(high, list[i]);
    }
  }
  if (!Number.isFinite(low)) {
    low = 0;
    high = 1;
  } else if (high === low) {
    low -= 0.5;
    high += 0.5;
  }
  return Array.from({ length: bins + 1 }, (_, i) => low + ((high - low) * i) / bins);
}
