/**
 * The fast kernels (src/core/orthogonalize-fast.ts, norm-preserving-fast.ts) against their reference twins
 * (src/core/orthogonalize.ts, norm-preserving.ts):
 * every output byte must be identical, for every dtype, odd shapes, partial row ranges, misaligned chunks,
 * zero coefficients (rows copied untouched), scale 0, and stored values that are NaN (with payloads), ±0, ±Inf,
 * subnormal or near overflow. The encoder is also compared on chosen values: exact ties, one double ulp either
 * side of a tie, and every exponent at the edges of its fast path.
 */
import { describe, expect, it } from 'vitest';
import { encodeElementsInto, type FloatDType } from '../../src/core/dtypes';
import { applyBias, applyColumns, applyRows, projectColumns } from '../../src/core/orthogonalize';
import { applyBiasFast, applyColumnsFast, applyRowsFast, encodeHalfInto, projectColumnsFast } from '../../src/core/orthogonalize-fast';
import {
  applyColumnsNormPreserving,
  applyRowsNormPreserving,
  normPreservingFactors,
  projectColumnsWithNorms,
  squaredLength,
} from '../../src/core/norm-preserving';
import {
  applyColumnsNormPreservingFast,
  applyRowsNormPreservingFast,
  orthogonalizeColumnsNormPreservingFast,
  projectColumnsWithNormsFast,
} from '../../src/core/norm-preserving-fast';
import { mulberry32 } from '../../src/core/random';

const DTYPES: FloatDType[] = ['F32', 'F16', 'BF16'];
const SHAPES: [number, number][] = [
  [1, 1],
  [3, 7],
  [37, 53],
  [129, 300],
  [64, 513],
];
const SCALES = [1, 0.5, 2, -1, 0];

/** Stored bytes: mostly weight-like values, plus raw random bit patterns and the special values of the dtype. */
function storedMatrix(rows: number, cols: number, dtype: FloatDType, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const count = rows * cols;
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = (random() - 0.5) * 0.2 * 2 ** Math.floor(random() * 6 - 3);
  const bytes = new Uint8Array(count * (dtype === 'F32' ? 4 : 2));
  const view = dtype === 'F32' ? new Float32Array(bytes.buffer) : new Uint16Array(bytes.buffer);
  encodeElementsInto(values, count, dtype, view, 0);
  const bits = dtype === 'F32' ? new Uint32Array(bytes.buffer) : (view as Uint16Array);
  const specials =
    dtype === 'F32'
      ? [0x80000000, 0, 0x7f800000, 0xff800000, 0x7fc00001, 0xffa00005, 0x00000001, 0x807fffff, 0x7f7fffff, 0xff7ffffe]
      : dtype === 'BF16'
        ? [0x8000, 0, 0x7f80, 0xff80, 0x7fc1, 0xffa5, 0x0001, 0x807f, 0x7f7f, 0xff7e, 0x0080]
        : [0x8000, 0, 0x7c00, 0xfc00, 0x7e01, 0xfd05, 0x0001, 0x83ff, 0x7bff, 0xfbfe, 0x0400];
  for (let i = 0; i < count; i++) {
    const pick = random();
    if (pick < 0.03) bits[i] = specials[Math.floor(random() * specials.length)];
    else if (pick < 0.06) bits[i] = dtype === 'F32' ? Math.floor(random() * 2 ** 32) : Math.floor(random() * 65536);
  }
  // A column of −0: its projection is +0, so a negative coefficient gives a −0 update that must leave −0 alone.
  if (cols >= 3) for (let i = 0; i < rows; i++) bits[i * cols + cols - 1] = dtype === 'F32' ? 0x80000000 : 0x8000;
  return bytes;
}

/** A unit-ish direction with some exact zeros (those rows of a columns edit are untouched). */
function directionWithZeros(length: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  const values = Float32Array.from({ length }, () => (random() < 0.2 ? 0 : random() - 0.5));
  let norm = 0;
  for (const value of values) norm += value * value;
  return values.map((value) => (norm > 0 ? value / Math.sqrt(norm) : 1));
}

/** The same bytes at an odd byte offset, so the kernels take their misaligned-copy path. */
function misaligned(bytes: Uint8Array): Uint8Array {
  const holder = new Uint8Array(bytes.byteLength + 1);
  holder.set(bytes, 1);
  return holder.subarray(1);
}

function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  const firstDifference = actual.findIndex((value, index) => value !== expected[index]);
  expect(firstDifference).toBe(-1);
}

function expectSameFloat64(actual: Float64Array, expected: Float64Array): void {
  expect(actual.length).toBe(expected.length);
  // Object.is: −0 and NaN compared as values, all others exactly.
  const firstDifference = Array.from(actual).findIndex((value, index) => !Object.is(value, expected[index]));
  expect(firstDifference).toBe(-1);
}

describe.each(DTYPES)('fast kernels ≡ reference twin, %s', (dtype) => {
  it.each(SHAPES)('columns edit [%i, %i]: both passes, whole and in row chunks, every scale', (rows, cols) => {
    const weight = storedMatrix(rows, cols, dtype, rows * 1000 + cols); // [rows, cols]
    const direction = directionWithZeros(rows, cols + 7); // [rows]
    const projection = projectColumns(weight, dtype, 0, rows, cols, direction);
    expectSameFloat64(projectColumnsFast(weight, dtype, 0, rows, cols, direction), projection);
    expectSameFloat64(projectColumnsFast(misaligned(weight), dtype, 0, rows, cols, direction), projection);
    for (const scale of SCALES) {
      expectSameBytes(applyColumnsFast(weight, dtype, 0, rows, cols, direction, projection, scale), applyColumns(weight, dtype, 0, rows, cols, direction, projection, scale));
    }
    // A row chunk in the middle of the matrix (rowStart > 0), misaligned.
    const rowBytes = weight.byteLength / rows;
    const start = Math.floor(rows / 3);
    const count = Math.max(1, Math.floor(rows / 2));
    const chunk = weight.subarray(start * rowBytes, (start + count) * rowBytes);
    expectSameFloat64(projectColumnsFast(misaligned(chunk), dtype, start, count, cols, direction), projectColumns(chunk, dtype, start, count, cols, direction));
    expectSameBytes(applyColumnsFast(misaligned(chunk), dtype, start, count, cols, direction, projection, 1), applyColumns(chunk, dtype, start, count, cols, direction, projection, 1));
  });

  it.each(SHAPES)('rows edit [%i, %i] and the bias edit, every scale', (rows, cols) => {
    const embedding = storedMatrix(rows, cols, dtype, rows * 77 + cols); // [rows, cols = dModel]
    const direction = directionWithZeros(cols, rows + 3); // [cols]
    for (const scale of SCALES) {
      expectSameBytes(applyRowsFast(embedding, dtype, rows, cols, direction, scale), applyRows(embedding, dtype, rows, cols, direction, scale));
    }
    expectSameBytes(applyRowsFast(misaligned(embedding), dtype, rows, cols, direction, 1), applyRows(embedding, dtype, rows, cols, direction, 1));
    const bias = embedding.subarray(0, embedding.byteLength / rows); // [cols]
    expectSameBytes(applyBiasFast(bias, dtype, direction, 1), applyBias(bias, dtype, direction, 1));
  });

  it('accumulates into a given projection in the order the twin sums chunk partials', () => {
    const rows = 40;
    const cols = 33;
    const weight = storedMatrix(rows, cols, dtype, 5);
    const direction = directionWithZeros(rows, 6);
    const rowBytes = weight.byteLength / rows;
    const summed = new Float64Array(cols); // [cols], the engine's sum of per-chunk partials
    const accumulated = new Float64Array(cols);
    for (let start = 0; start < rows; start += 16) {
      const count = Math.min(16, rows - start);
      const chunk = weight.subarray(start * rowBytes, (start + count) * rowBytes);
      const partial = projectColumns(chunk, dtype, start, count, cols, direction);
      for (let j = 0; j < cols; j++) summed[j] += partial[j];
      const fastPartial = projectColumnsFast(chunk, dtype, start, count, cols, direction);
      for (let j = 0; j < cols; j++) accumulated[j] += fastPartial[j];
    }
    expectSameFloat64(accumulated, summed);
  });

  it('refuses mismatched shapes like the twin', () => {
    const weight = storedMatrix(4, 5, dtype, 1);
    const direction = directionWithZeros(4, 2);
    expect(() => projectColumnsFast(weight, dtype, 0, 4, 6, direction)).toThrow(RangeError);
    expect(() => projectColumnsFast(weight, dtype, 1, 4, 5, direction)).toThrow(/outside a direction/);
    expect(() => applyColumnsFast(weight, dtype, 0, 4, 5, direction, new Float64Array(4), 1)).toThrow(/projection length/);
    expect(() => applyRowsFast(weight, dtype, 4, 5, direction, 1)).toThrow(/direction length/);
  });
});

describe.each(DTYPES)('fast norm-preserving kernels ≡ reference twin, %s', (dtype) => {
  const WEIGHTS = [1, 0.5, 1.7, 0];

  it.each(SHAPES)('columns [%i, %i]: projection with norms, factors, pass 2, and the fused call', (rows, cols) => {
    const weight = storedMatrix(rows, cols, dtype, rows * 31 + cols); // [rows, cols]
    const direction = directionWithZeros(rows, cols + 1); // [rows]
    const twin = projectColumnsWithNorms(weight, dtype, 0, rows, cols, direction);
    const fast = projectColumnsWithNormsFast(misaligned(weight), dtype, 0, rows, cols, direction);
    expectSameFloat64(fast.projection, twin.projection);
    expectSameFloat64(fast.squaredNorms, twin.squaredNorms);
    for (const w of WEIGHTS) {
      // The engine sums partials into zeros before the factors; the same here for the twin's expected bytes.
      const projection = new Float64Array(cols).map((_, j) => 0 + twin.projection[j]);
      const squaredNorms = new Float64Array(cols).map((_, j) => 0 + twin.squaredNorms[j]);
      const factors = normPreservingFactors(projection, squaredNorms, squaredLength(direction), w);
      const expected = applyColumnsNormPreserving(weight, dtype, 0, rows, cols, direction, projection, factors, w);
      expectSameBytes(applyColumnsNormPreservingFast(misaligned(weight), dtype, 0, rows, cols, direction, projection, factors, w), expected);
      expectSameBytes(orthogonalizeColumnsNormPreservingFast(weight, dtype, rows, cols, direction, w), expected);
    }
    const start = Math.floor(rows / 2);
    const rowBytes = weight.byteLength / rows;
    const chunk = weight.subarray(start * rowBytes);
    const partialTwin = projectColumnsWithNorms(chunk, dtype, start, rows - start, cols, direction);
    const partialFast = projectColumnsWithNormsFast(chunk, dtype, start, rows - start, cols, direction);
    expectSameFloat64(partialFast.projection, partialTwin.projection);
    expectSameFloat64(partialFast.squaredNorms, partialTwin.squaredNorms);
  });

  it.each(SHAPES)('rows [%i, %i]', (rows, cols) => {
    const embedding = storedMatrix(rows, cols, dtype, rows * 13 + cols); // [rows, cols = dModel]
    const direction = directionWithZeros(cols, rows + 9); // [cols]
    for (const w of WEIGHTS) {
      expectSameBytes(applyRowsNormPreservingFast(misaligned(embedding), dtype, rows, cols, direction, w), applyRowsNormPreserving(embedding, dtype, rows, cols, direction, w));
    }
  });
});

describe.each(['BF16', 'F16'] as const)('the fast %s row encoder rounds as the twin does', (dtype) => {
  const keptBits = dtype === 'BF16' ? 7 : 10; // significand bits kept by the stored type
  const fastExponents = dtype === 'BF16' ? [897, 1150] : [1009, 1038]; // float64 exponents of its fast path

  function chosenValues(): Float64Array {
    const values: number[] = [];
    const random = mulberry32(99);
    const view = new DataView(new ArrayBuffer(8));
    const fromParts = (sign: number, exponent: number, high: number, low: number) => {
      view.setUint32(4, (sign << 31) | (exponent << 20) | high, true);
      view.setUint32(0, low >>> 0, true);
      return view.getFloat64(0, true);
    };
    const roundBit = 1 << (19 - keptBits); // first dropped significand bit of the high word
    for (let exponent = fastExponents[0] - 3; exponent <= fastExponents[1] + 3; exponent++) {
      for (let trial = 0; trial < 24; trial++) {
        const sign = trial & 1;
        const kept = Math.floor(random() * (1 << keptBits)) << (20 - keptBits);
        values.push(fromParts(sign, exponent, kept | roundBit, 0)); // exact tie
        values.push(fromParts(sign, exponent, kept | roundBit, 1)); // one double ulp above a tie
        values.push(fromParts(sign, exponent, kept | (roundBit - 1), 0xffffffff)); // one double ulp below
        values.push(fromParts(sign, exponent, kept | 1, 0)); // sticky in the high word only
        values.push(fromParts(sign, exponent, kept | ((1 << (20 - keptBits)) - 1), 0xffffffff)); // carries into the exponent
        values.push(fromParts(sign, exponent, Math.floor(random() * (1 << 20)), Math.floor(random() * 2 ** 32)));
      }
    }
    values.push(0, -0, Infinity, -Infinity, NaN, 65504, 65520, 3.4e38, -3.5e38, 1e-8, -6e-8, 2 ** -149, 2 ** -150);
    return Float64Array.from(values);
  }

  it('on ties, near-ties, exponent edges and special values', () => {
    const values = chosenValues();
    const fast = new Uint16Array(values.length + 3);
    const twin = new Uint16Array(values.length + 3);
    encodeHalfInto(values, values.length, dtype, fast, 3);
    encodeElementsInto(values, values.length, dtype, twin, 3);
    const firstDifference = Array.from(fast).findIndex((bits, index) => bits !== twin[index]);
    expect(firstDifference === -1 ? -1 : values[firstDifference - 3]).toBe(-1);
  });
});
