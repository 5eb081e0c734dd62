/**
 * Direction checks and normalization (pure math). A direction is usable only if it has exactly d_model
 * entries, all finite, not all zero; it is then scaled to unit length in float64. The norm is computed on
 * values pre-scaled by the largest magnitude, so neither 1e-30 nor 1e200 entries underflow or overflow.
 */

export type DirectionProblem = 'length' | 'non-finite' | 'zero';

/** Thrown by core direction checks; the formats layer rewraps it as a user-facing error naming the file. */
export class DirectionError extends Error {
  override name = 'DirectionError';
  constructor(
    readonly problem: DirectionProblem,
    /** What is wrong, without the source name: "direction has 3 entries but ...". */
    readonly detail: string,
    readonly sourceName: string,
    /** The offending element index, for 'non-finite'. */
    readonly index: number | null = null,
  ) {
    super(`${sourceName}: ${detail}`);
  }
}

/** The largest magnitude and the norm of the values divided by it (in [1, √n]): the norm without overflow. */
function scaledNorm(values: ArrayLike<number>): { largest: number; scaled: number } {
  let largest = 0;
  for (let i = 0; i < values.length; i++) largest = Math.max(largest, Math.abs(values[i]));
  if (largest === 0 || !Number.isFinite(largest)) return { largest, scaled: largest === 0 ? 0 : NaN };
  let sumOfSquares = 0;
  for (let i = 0; i < values.length; i++) {
    const ratio = values[i] / largest;
    sumOfSquares += ratio * ratio;
  }
  return { largest, scaled: Math.sqrt(sumOfSquares) };
}

/** The Euclidean norm, free of intermediate overflow/underflow (Infinity only when the norm itself exceeds float64). */
export function euclideanNorm(values: ArrayLike<number>): number {
  const { largest, scaled } = scaledNorm(values);
  return largest === 0 ? 0 : Number.isFinite(largest) ? largest * scaled : largest;
}

/**
 * Returns `values` normalized to unit length (float64), after checking length, finiteness and non-zero norm.
 * Throws DirectionError naming `sourceName`.
 */
export function checkedUnitDirection(values: ArrayLike<number>, expectedLength: number, sourceName: string): Float64Array {
  if (values.length !== expectedLength) {
    throw new DirectionError(
      'length',
      `direction has ${values.length} entries but the model's hidden size is ${expectedLength}`,
      sourceName,
    );
  }
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new DirectionError('non-finite', `direction entry ${i} is ${values[i]} (must be finite)`, sourceName, i);
    }
  }
  const { largest, scaled } = scaledNorm(values);
  if (largest === 0) throw new DirectionError('zero', `direction is all zeros, so it has no direction to remove`, sourceName);
  const unit = new Float64Array(values.length);
  // Divide by the largest magnitude first, then by the norm of the scaled vector: no overflow for 1e308
  // entries, no precision loss for subnormal ones.
  for (let i = 0; i < values.length; i++) unit[i] = values[i] / largest / scaled;
  return unit;
}
