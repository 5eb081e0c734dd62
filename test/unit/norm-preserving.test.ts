/**
 * The norm-preserving edit's CPU twin against a float64 computation written here from docs/definitions.md's formula
 * v′ = (v − w r (r·v)) · ‖v‖ / ‖v − w r (r·v)‖, computed per written vector directly (whole columns), not
 * through the streaming identity the twin uses.
 */
import { describe, expect, it } from 'vitest';
import { decodeToFloat64, encodeFromFloat64, type FloatDType } from '../../src/core/dtypes';
import {
  applyColumnsNormPreserving,
  applyRowsNormPreserving,
  normPreservingFactors,
  orthogonalizeColumnsNormPreserving,
  projectColumnsWithNorms,
  squaredLength,
} from '../../src/core/norm-preserving';
import { mulberry32 } from '../../src/core/random';

const DTYPES: FloatDType[] = ['F32', 'F16', 'BF16'];
const D_MODEL = 24;
const IN_FEATURES = 40;
/** Norms kept before rounding: float64 arithmetic on a few dozen terms. */
const FLOAT64_NORM_TOLERANCE = 1e-6;
/** After one rounding into the stored dtype, a norm moves by about its unit roundoff. */
const STORED_NORM_TOLERANCE: Record<FloatDType, number> = { F32: 1e-6, F16: 2e-3, BF16: 1.6e-2 };
/** ≤ 1 ulp of the stored dtype against the float64 result (0.5 for correct rounding, slack for summation order). */
const MAX_ULP = 1;

function randomValues(count: number, seed: number): number[] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, () => (random() - 0.5) * 2);
}

function unitDirection(length: number, seed: number): Float32Array {
  const values = randomValues(length, seed);
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (v) => v / norm);
}

/** docs/definitions.md formula on one vector, float64, no rounding. */
function normPreservedVector(v: Float64Array, r: ArrayLike<number>, w: number): Float64Array {
  let dot = 0;
  for (let i = 0; i < v.length; i++) dot += r[i] * v[i];
  const edited = v.map((value, i) => value - w * r[i] * dot);
  const before = Math.hypot(...v);
  const after = Math.hypot(...edited);
  return after === 0 ? edited : edited.map((value) => (value * before) / after);
}

function column(values: Float64Array, rows: number, cols: number, j: number): Float64Array {
  return Float64Array.from({ length: rows }, (_, i) => values[i * cols + j]);
}

function ulpOf(value: number, dtype: FloatDType): number {
  const mantissaBits = dtype === 'F32' ? 23 : dtype === 'F16' ? 10 : 7;
  const minExponent = dtype === 'F16' ? -14 : -126;
  const exponent = Math.max(Math.floor(Math.log2(Math.abs(value) || 2 ** minExponent)), minExponent);
  return 2 ** (exponent - mantissaBits);
}

describe.each(DTYPES)('norm-preserving columns in %s', (dtype) => {
  const weight = encodeFromFloat64(randomValues(D_MODEL * IN_FEATURES, 21), dtype); // [dModel, in]
  const original = decodeToFloat64(weight, dtype);
  const direction = unitDirection(D_MODEL, 22);

  it.each([1, 0.6, 1.3])('w = %s: every column keeps its norm and is within 1 ulp of the float64 formula', (w) => {
    const edited = decodeToFloat64(orthogonalizeColumnsNormPreserving(weight, dtype, D_MODEL, IN_FEATURES, direction, w), dtype);
    for (let j = 0; j < IN_FEATURES; j++) {
      const expected = normPreservedVector(column(original, D_MODEL, IN_FEATURES, j), direction, w);
      const actual = column(edited, D_MODEL, IN_FEATURES, j);
      for (let i = 0; i < D_MODEL; i++) expect(Math.abs(actual[i] - expected[i]) / ulpOf(expected[i], dtype)).toBeLessThanOrEqual(MAX_ULP);
      const before = Math.hypot(...column(original, D_MODEL, IN_FEATURES, j));
      expect(Math.abs(Math.hypot(...actual) - before) / before).toBeLessThan(STORED_NORM_TOLERANCE[dtype]);
    }
  });

  it('the streaming factors keep every column norm in float64 before rounding (rel. error ≤ 1e-6)', () => {
    const { projection, squaredNorms } = projectColumnsWithNorms(weight, dtype, 0, D_MODEL, IN_FEATURES, direction);
    const w = 1;
    const factors = normPreservingFactors(projection, squaredNorms, squaredLength(direction), w);
    for (let j = 0; j < IN_FEATURES; j++) {
      const v = column(original, D_MODEL, IN_FEATURES, j);
      const written = v.map((value, i) => (value - w * direction[i] * projection[j]) * factors[j]);
      expect(Math.abs(Math.hypot(...written) - Math.hypot(...v)) / Math.hypot(...v)).toBeLessThan(FLOAT64_NORM_TOLERANCE);
      // …and the direction r is gone from it (w = 1).
      let along = 0;
      for (let i = 0; i < D_MODEL; i++) along += written[i] * direction[i];
      expect(Math.abs(along)).toBeLessThan(1e-6);
    }
  });

  it('row chunks give the same bytes as the whole tensor (pass 1 sums, pass 2 per chunk)', () => {
    const whole = orthogonalizeColumnsNormPreserving(weight, dtype, D_MODEL, IN_FEATURES, direction, 0.8);
    const elementBytes = dtype === 'F32' ? 4 : 2;
    const rowBytes = IN_FEATURES * elementBytes;
    const projection = new Float64Array(IN_FEATURES);
    const squaredNorms = new Float64Array(IN_FEATURES);
    const chunks = [[0, 7], [7, 10], [17, 7]] as const;
    for (const [start, rows] of chunks) {
      const partial = projectColumnsWithNorms(weight.subarray(start * rowBytes, (start + rows) * rowBytes), dtype, start, rows, IN_FEATURES, direction);
      for (let j = 0; j < IN_FEATURES; j++) {
        projection[j] += partial.projection[j];
        squaredNorms[j] += partial.squaredNorms[j];
      }
    }
    const factors = normPreservingFactors(projection, squaredNorms, squaredLength(direction), 0.8);
    const pieces = chunks.map(([start, rows]) =>
      applyColumnsNormPreserving(weight.subarray(start * rowBytes, (start + rows) * rowBytes), dtype, start, rows, IN_FEATURES, direction, projection, factors, 0.8),
    );
    const joined = new Uint8Array(whole.byteLength);
    let offset = 0;
    for (const piece of pieces) {
      joined.set(piece, offset);
      offset += piece.byteLength;
    }
    expect(joined).toEqual(whole);
  });

  it('w = 0 leaves the tensor byte-identical', () => {
    expect(orthogonalizeColumnsNormPreserving(weight, dtype, D_MODEL, IN_FEATURES, direction, 0)).toEqual(weight);
  });
});

describe.each(DTYPES)('norm-preserving rows in %s', (dtype) => {
  const rows = 9;
  const embedding = encodeFromFloat64(randomValues(rows * D_MODEL, 31), dtype); // [vocab, dModel]
  const original = decodeToFloat64(embedding, dtype);
  const direction = unitDirection(D_MODEL, 32);

  it.each([1, 0.4, 2])('w = %s: each row within 1 ulp of the float64 formula, norm kept', (w) => {
    const edited = decodeToFloat64(applyRowsNormPreserving(embedding, dtype, rows, D_MODEL, direction, w), dtype);
    for (let row = 0; row < rows; row++) {
      const v = original.subarray(row * D_MODEL, (row + 1) * D_MODEL);
      const expected = normPreservedVector(Float64Array.from(v), direction, w);
      for (let i = 0; i < D_MODEL; i++) {
        expect(Math.abs(edited[row * D_MODEL + i] - expected[i]) / ulpOf(expected[i], dtype)).toBeLessThanOrEqual(MAX_ULP);
      }
      const after = Math.hypot(...edited.subarray(row * D_MODEL, (row + 1) * D_MODEL));
      expect(Math.abs(after - Math.hypot(...v)) / Math.hypot(...v)).toBeLessThan(STORED_NORM_TOLERANCE[dtype]);
    }
  });

  it('w = 0 is byte-identical; a row along r alone (edited norm 0) gets the standard edit', () => {
    expect(applyRowsNormPreserving(embedding, dtype, rows, D_MODEL, direction, 0)).toEqual(embedding);
    const parallel = encodeFromFloat64([...direction].map((value) => 3 * value), 'F32');
    const edited = decodeToFloat64(applyRowsNormPreserving(parallel, 'F32', 1, D_MODEL, direction, 1), 'F32');
    for (const value of edited) expect(Math.abs(value)).toBeLessThan(1e-6);
  });
});

describe('normPreservingFactors', () => {
  it('is the closed form ‖v‖/‖v − w r p‖ and 1 for a zero or vanishing column', () => {
    // v = (3, 4), r = (1, 0): p = 3; w = 1 → v′ = (0, 4), s = 5/4; w = 0.5 → (1.5, 4), s = 5/√18.25.
    expect(normPreservingFactors(Float64Array.of(3), Float64Array.of(25), 1, 1)[0]).toBe(5 / 4);
    expect(normPreservingFactors(Float64Array.of(3), Float64Array.of(25), 1, 0.5)[0]).toBeCloseTo(5 / Math.sqrt(18.25), 15);
    expect(normPreservingFactors(Float64Array.of(0), Float64Array.of(0), 1, 1)[0]).toBe(1);
    expect(normPreservingFactors(Float64Array.of(2), Float64Array.of(4), 1, 1)[0]).toBe(1);
  });
});
