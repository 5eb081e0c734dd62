/**
 * The norm-preserving edit (docs/definitions.md "Ablation recipe", method "norm-preserving"), CPU reference twin: every
 * vector v a target writes into the residual stream — a column W[:, j] of an out-projection, an embedding row,
 * a bias — becomes
 *     v′ = (v − w r (r·v)) · ‖v‖ / ‖v − w r (r·v)‖        (v′ = v − w r (r·v) where that norm is 0)
 * so only its direction changes. All arithmetic is float64; each output element is rounded once.
 *
 * Columns stream in two passes over row chunks like the standard edit (./orthogonalize.ts):
 *   pass 1 `projectColumnsWithNorms` accumulates p = rᵀW and n = ‖W[:, j]‖² together;
 *   between the passes `normPreservingFactors` turns them into s_j = ‖v‖ / ‖v − w r p_j‖, using
 *   ‖v − w r p_j‖² = n_j − 2 w p_j² + w² p_j² ‖r‖² (r·v = p_j), so no pass ever needs a whole column;
 *   pass 2 `applyColumnsNormPreserving` writes (W[i, j] − w r_i p_j) · s_j.
 * Rows (embedding rows, row-oriented expert weights, biases) hold their whole vector, so their norms are direct.
 * The same s_j scale the out-projection's input in the hook graph (an exact identity: W′x = (I − w r rᵀ) W (s ⊙ x)).
 *
 * "Where that norm is 0" is decided with a floor: an edit that leaves less than NORM_PRESERVING_MIN_RATIO of a
 * vector's norm (a vector along r, up to the rounding of r itself) gets the standard edit, since rescaling
 * what is left would blow rounding noise up into a vector of the old length in an arbitrary direction.
 */
import { decodeElementsInto, storedElements, type FloatDType } from './dtypes';
import { checkRowRange, checkShape, mapRows } from './orthogonalize';

/** ‖v′‖ / ‖v‖ below this counts as an edited norm of 0 (2^-20 ≈ 1e-6, well above float64 cancellation noise). */
export const NORM_PRESERVING_MIN_RATIO = 2 ** -20;
const MIN_SQUARED_RATIO = NORM_PRESERVING_MIN_RATIO * NORM_PRESERVING_MIN_RATIO;

/** s = ‖v‖ / ‖v′‖ from the squared norms, or 1 where ‖v′‖ counts as 0 (see NORM_PRESERVING_MIN_RATIO). */
export function normPreservingFactor(squaredBefore: number, squaredAfter: number): number {
  return squaredBefore > 0 && squaredAfter > squaredBefore * MIN_SQUARED_RATIO ? Math.sqrt(squaredBefore) / Math.sqrt(squaredAfter) : 1;
}

export interface ColumnProjectionAndNorms {
  projection: Float64Array; // [cols]: partial rᵀW
  squaredNorms: Float64Array; // [cols]: partial ‖W[:, j]‖² over the chunk's rows
}

/** Pass 1: the partial rᵀW and column squared norms of one row chunk. Sum both over all chunks (float64). */
export function projectColumnsWithNorms(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rowStart: number,
  rows: number,
  cols: number,
  direction: ArrayLike<number>, // [dModel]
): ColumnProjectionAndNorms {
  checkShape(chunk, dtype, rows, cols, 'projectColumnsWithNorms');
  checkRowRange(rowStart, rows, direction.length, 'projectColumnsWithNorms');
  const view = storedElements(chunk, dtype);
  const row = new Float64Array(cols);
  const projection = new Float64Array(cols);
  const squaredNorms = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const coefficient = direction[rowStart + i];
    decodeElementsInto(view, dtype, i * cols, cols, row);
    for (let j = 0; j < cols; j++) {
      projection[j] += coefficient * row[j];
      squaredNorms[j] += row[j] * row[j];
    }
  }
  return { projection, squaredNorms };
}

/** Σ r_i² in float64 (a float32 "unit" direction is 1 only to within its rounding). */
export function squaredLength(direction: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < direction.length; i++) sum += direction[i] * direction[i];
  return sum;
}

/**
 * s_j = ‖v‖ / ‖v − w r p_j‖ per column from the whole matrix's p = rᵀW and n = ‖W[:, j]‖²; 1 where the edited
 * column would be zero (or the input column is), so such a column gets the plain standard edit.
 */
export function normPreservingFactors(
  projection: Float64Array, // [cols]
  squaredNorms: Float64Array, // [cols]
  directionSquaredLength: number,
  weight: number,
): Float64Array /* [cols] */ {
  if (projection.length !== squaredNorms.length) throw new RangeError(`normPreservingFactors: ${projection.length} projections but ${squaredNorms.length} norms`);
  const factors = new Float64Array(projection.length);
  for (let j = 0; j < projection.length; j++) {
    const p = projection[j];
    const before = squaredNorms[j];
    const after = before - 2 * weight * p * p + weight * weight * p * p * directionSquaredLength;
    factors[j] = normPreservingFactor(before, after);
  }
  return factors;
}

/** Pass 2: (W − w r pᵀ) · diag(s) for one row chunk. Returns new stored bytes. */
export function applyColumnsNormPreserving(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rowStart: number,
  rows: number,
  cols: number,
  direction: ArrayLike<number>, // [dModel]
  projection: Float64Array, // [cols] = rᵀW of the whole matrix
  factors: Float64Array, // [cols] = s from normPreservingFactors
  weight: number,
): Uint8Array {
  checkShape(chunk, dtype, rows, cols, 'applyColumnsNormPreserving');
  if (projection.length !== cols || factors.length !== cols) {
    throw new RangeError(`applyColumnsNormPreserving: projection ${projection.length} / factors ${factors.length} ≠ ${cols} columns`);
  }
  checkRowRange(rowStart, rows, direction.length, 'applyColumnsNormPreserving');
  const untouchedColumns = factors.every((factor) => factor === 1);
  return mapRows(chunk, dtype, rows, cols, (row, i) => {
    const coefficient = weight * direction[rowStart + i];
    for (let j = 0; j < cols; j++) row[j] = (row[j] - coefficient * projection[j]) * factors[j];
    return coefficient === 0 && untouchedColumns;
  });
}

/** Rows: each row e (length cols = dModel) becomes (e − w r (r·e)) · ‖e‖ / ‖e − w r (r·e)‖. */
export function applyRowsNormPreserving(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rows: number,
  cols: number,
  direction: ArrayLike<number>, // [cols = dModel]
  weight: number,
): Uint8Array {
  checkShape(chunk, dtype, rows, cols, 'applyRowsNormPreserving');
  if (direction.length !== cols) throw new RangeError(`applyRowsNormPreserving: direction length ${direction.length} ≠ ${cols} columns`);
  return mapRows(chunk, dtype, rows, cols, (row) => {
    let dot = 0;
    let before = 0;
    for (let j = 0; j < cols; j++) {
      dot += row[j] * direction[j];
      before += row[j] * row[j];
    }
    const coefficient = weight * dot;
    if (coefficient !== 0) {
      let after = 0;
      for (let j = 0; j < cols; j++) {
        row[j] -= coefficient * direction[j];
        after += row[j] * row[j];
      }
      const factor = normPreservingFactor(before, after);
      for (let j = 0; j < cols; j++) row[j] *= factor;
    }
    return coefficient === 0;
  });
}

/** Both passes of the norm-preserving columns edit on a whole tensor in memory (tests, small tensors). */
export function orthogonalizeColumnsNormPreserving(
  weight: Uint8Array, // [rows = dModel, cols] stored
  dtype: FloatDType,
  rows: number,
  cols: number,
  direction: ArrayLike<number>, // [dModel]
  strength: number,
): Uint8Array {
  if (direction.length !== rows) throw new RangeError(`orthogonalizeColumnsNormPreserving: direction length ${direction.length} ≠ ${rows} rows`);
  const { projection, squaredNorms } = projectColumnsWithNorms(weight, dtype, 0, rows, cols, direction);
  const factors = normPreservingFactors(projection, squaredNorms, squaredLength(direction), strength);
  return applyColumnsNormPreserving(weight, dtype, 0, rows, cols, direction, projection, factors, strength);
}
