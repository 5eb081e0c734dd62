import { describe, expect, it } from 'vitest';
import { decodeToFloat64, encodeFromFloat64, type FloatDType } from '../../src/core/dtypes';
import { applyBias, applyColumns, applyRows, orthogonalizeColumns, projectColumns } from '../../src/core/orthogonalize';
import { mulberry32 } from '../../src/core/random';

function randomValues(count: number, seed: number): number[] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, () => (random() - 0.5) * 2);
}

function unitDirection(length: number, seed: number): Float32Array {
  const values = randomValues(length, seed);
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (v) => v / norm);
}

/** Units in the last place of the stored dtype between two stored values (ordered bit distance). */
function ulpDistance(a: Uint8Array, b: Uint8Array, dtype: FloatDType): number {
  const ordered = (bits: number, width: number) => (bits >= 2 ** (width - 1) ? 2 ** (width - 1) - bits : bits);
  let worst = 0;
  const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = dtype === 'F32' ? 4 : 2;
  for (let i = 0; i < a.byteLength / size; i++) {
    const x = size === 4 ? view(a).getUint32(i * 4, true) : view(a).getUint16(i * 2, true);
    const y = size === 4 ? view(b).getUint32(i * 4, true) : view(b).getUint16(i * 2, true);
    worst = Math.max(worst, Math.abs(ordered(x, size * 8) - ordered(y, size * 8)));
  }
  return worst;
}

/** Largest element change, relative to the largest magnitude: rounding noise shows as a few unit roundoffs. */
function relativeChange(a: Uint8Array, b: Uint8Array, dtype: FloatDType): number {
  const x = decodeToFloat64(a, dtype);
  const y = decodeToFloat64(b, dtype);
  let change = 0;
  let magnitude = 0;
  for (let i = 0; i < x.length; i++) {
    change = Math.max(change, Math.abs(x[i] - y[i]));
    magnitude = Math.max(magnitude, Math.abs(x[i]));
  }
  return change / magnitude;
}

// Relative size of rᵀW′ left after one rounding into each dtype (a few units of its unit roundoff).
const RESIDUAL_PROJECTION_TOLERANCE: Record<FloatDType, number> = { F32: 1e-6, F16: 4e-3, BF16: 3e-2 };
const DTYPES: FloatDType[] = ['F32', 'F16', 'BF16'];
const D_MODEL = 24;
const IN_FEATURES = 40;

/** rᵀW for W [rows, cols] as float64. */
function columnProjection(values: Float64Array, rows: number, cols: number, direction: ArrayLike<number>): Float64Array {
  const projection = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) projection[j] += direction[i] * values[i * cols + j];
  return projection;
}

describe.each(DTYPES)('columns W ← W − α r(rᵀW) in %s', (dtype) => {
  const weight = encodeFromFloat64(randomValues(D_MODEL * IN_FEATURES, 11), dtype); // [dModel, in]
  const direction = unitDirection(D_MODEL, 12);

  it('matches the closed form computed in float64 and leaves rᵀW′ ≈ 0', () => {
    const edited = orthogonalizeColumns(weight, dtype, D_MODEL, IN_FEATURES, direction, 1);
    const original = decodeToFloat64(weight, dtype);
    const projection = columnProjection(original, D_MODEL, IN_FEATURES, direction);
    const expected = original.map((w, index) => w - direction[Math.floor(index / IN_FEATURES)] * projection[index % IN_FEATURES]);
    expect(ulpDistance(edited, encodeFromFloat64(expected, dtype), dtype)).toBeLessThanOrEqual(1);
    const residual = columnProjection(decodeToFloat64(edited, dtype), D_MODEL, IN_FEATURES, direction);
    const scale = Math.max(...projection.map(Math.abs));
    for (const value of residual) expect(Math.abs(value) / scale).toBeLessThan(RESIDUAL_PROJECTION_TOLERANCE[dtype]);
  });

  it('gives the same result when streamed in row chunks (partial projections summed)', () => {
    const bytesPerRow = IN_FEATURES * (dtype === 'F32' ? 4 : 2);
    const chunkRows = [5, 7, 12];
    const projection = new Float64Array(IN_FEATURES);
    let rowStart = 0;
    for (const rows of chunkRows) {
      const partial = projectColumns(weight.subarray(rowStart * bytesPerRow, (rowStart + rows) * bytesPerRow), dtype, rowStart, rows, IN_FEATURES, direction);
      for (let j = 0; j < IN_FEATURES; j++) projection[j] += partial[j];
      rowStart += rows;
    }
    const pieces: Uint8Array[] = [];
    rowStart = 0;
    for (const rows of chunkRows) {
      const chunk = weight.subarray(rowStart * bytesPerRow, (rowStart + rows) * bytesPerRow);
      pieces.push(applyColumns(chunk, dtype, rowStart, rows, IN_FEATURES, direction, projection, 1));
      rowStart += rows;
    }
    const streamed = new Uint8Array(weight.byteLength);
    let offset = 0;
    for (const piece of pieces) {
      streamed.set(piece, offset);
      offset += piece.byteLength;
    }
    expect(ulpDistance(streamed, orthogonalizeColumns(weight, dtype, D_MODEL, IN_FEATURES, direction, 1), dtype)).toBeLessThanOrEqual(1);
  });

  it('is idempotent: a second pass changes nothing beyond rounding noise', () => {
    const once = orthogonalizeColumns(weight, dtype, D_MODEL, IN_FEATURES, direction, 1);
    const twice = orthogonalizeColumns(once, dtype, D_MODEL, IN_FEATURES, direction, 1);
    expect(relativeChange(once, twice, dtype)).toBeLessThan(RESIDUAL_PROJECTION_TOLERANCE[dtype]);
  });

  it('α = 0 is the identity, byte for byte (−0 and NaN included)', () => {
    const special = encodeFromFloat64([-0, NaN, 0, Infinity, ...randomValues(D_MODEL * IN_FEATURES - 4, 13)], dtype);
    const identity = orthogonalizeColumns(special, dtype, D_MODEL, IN_FEATURES, direction, 0);
    expect(Buffer.from(identity).equals(Buffer.from(special))).toBe(true);
  });

  it('α = 2 reflects: rᵀW″ = −rᵀW, column norms kept, and reflecting twice restores W', () => {
    const reflected = orthogonalizeColumns(weight, dtype, D_MODEL, IN_FEATURES, direction, 2);
    const original = decodeToFloat64(weight, dtype);
    const mirrored = decodeToFloat64(reflected, dtype);
    const before = columnProjection(original, D_MODEL, IN_FEATURES, direction);
    const after = columnProjection(mirrored, D_MODEL, IN_FEATURES, direction);
    const scale = Math.max(...before.map(Math.abs));
    for (let j = 0; j < IN_FEATURES; j++) {
      expect(Math.abs(after[j] + before[j]) / scale).toBeLessThan(RESIDUAL_PROJECTION_TOLERANCE[dtype]);
      let normBefore = 0;
      let normAfter = 0;
      for (let i = 0; i < D_MODEL; i++) {
        normBefore += original[i * IN_FEATURES + j] ** 2;
        normAfter += mirrored[i * IN_FEATURES + j] ** 2;
      }
      expect(Math.abs(Math.sqrt(normAfter) - Math.sqrt(normBefore)) / Math.sqrt(normBefore)).toBeLessThan(RESIDUAL_PROJECTION_TOLERANCE[dtype]);
    }
    const restored = orthogonalizeColumns(reflected, dtype, D_MODEL, IN_FEATURES, direction, 2);
    expect(relativeChange(restored, weight, dtype)).toBeLessThan(RESIDUAL_PROJECTION_TOLERANCE[dtype]);
  });
});

describe.each(DTYPES)('rows E ← E − α (E r) rᵀ and biases in %s', (dtype) => {
  const vocab = 33;
  const embedding = encodeFromFloat64(randomValues(vocab * D_MODEL, 21), dtype); // [vocab, dModel]
  const direction = unitDirection(D_MODEL, 22);

  it('matches the closed form and leaves E′r ≈ 0 for every row', () => {
    const edited = applyRows(embedding, dtype, vocab, D_MODEL, direction, 1);
    const original = decodeToFloat64(embedding, dtype);
    const expected = new Float64Array(original.length);
    for (let v = 0; v < vocab; v++) {
      let dot = 0;
      for (let j = 0; j < D_MODEL; j++) dot += original[v * D_MODEL + j] * direction[j];
      for (let j = 0; j < D_MODEL; j++) expected[v * D_MODEL + j] = original[v * D_MODEL + j] - dot * direction[j];
    }
    expect(ulpDistance(edited, encodeFromFloat64(expected, dtype), dtype)).toBeLessThanOrEqual(1);
    const result = decodeToFloat64(edited, dtype);
    for (let v = 0; v < vocab; v++) {
      let dot = 0;
      let norm = 0;
      for (let j = 0; j < D_MODEL; j++) {
        dot += result[v * D_MODEL + j] * direction[j];
        norm += original[v * D_MODEL + j] ** 2;
      }
      expect(Math.abs(dot) / Math.sqrt(norm)).toBeLessThan(RESIDUAL_PROJECTION_TOLERANCE[dtype]);
    }
  });

  it('α = 0 is byte-identical and a second pass changes nothing beyond rounding noise', () => {
    expect(Buffer.from(applyRows(embedding, dtype, vocab, D_MODEL, direction, 0)).equals(Buffer.from(embedding))).toBe(true);
    const once = applyRows(embedding, dtype, vocab, D_MODEL, direction, 1);
    expect(relativeChange(once, applyRows(once, dtype, vocab, D_MODEL, direction, 1), dtype)).toBeLessThan(RESIDUAL_PROJECTION_TOLERANCE[dtype]);
  });

  it('biases: b − α r(r·b), the r-component removed', () => {
    const bias = encodeFromFloat64(randomValues(D_MODEL, 23), dtype);
    const original = decodeToFloat64(bias, dtype);
    const dot = original.reduce((sum, b, j) => sum + b * direction[j], 0);
    const expected = original.map((b, j) => b - 0.5 * dot * direction[j]);
    expect(ulpDistance(applyBias(bias, dtype, direction, 0.5), encodeFromFloat64(expected, dtype), dtype)).toBeLessThanOrEqual(1);
  });

  it('refuses mismatched shapes', () => {
    expect(() => applyRows(embedding, dtype, vocab, D_MODEL + 1, direction, 1)).toThrow(RangeError);
    expect(() => applyBias(encodeFromFloat64([1, 2, 3], dtype), dtype, direction, 1)).toThrow(RangeError);
    expect(() => projectColumns(embedding, dtype, 20, 11, 72, direction)).toThrow(RangeError);
  });
});
