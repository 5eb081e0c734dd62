/**
 * The WebAssembly SIMD kernels for BF16 (kernels/bf16.ts via src/core/bf16-wasm.ts) against the reference twins
 * (src/core/orthogonalize.ts): identical bytes on finite BF16 data of every kind the kernels branch on — widths
 * that are and are not multiples of the 8-lane vector, odd row counts (the rows edit pairs rows), zero rows in
 * the direction (rows copied), ±0, subnormals, the largest finite values (updates that overflow to ±Inf go
 * through the twin's encoder), updates that land exactly on and one ulp beside BF16 rounding ties — and the
 * fallback: any NaN or ±Inf in a chunk, its projection or its direction sends the call to the JavaScript loop,
 * which keeps the twin's NaN bits. Also: the committed module is the build of the AssemblyScript source.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  applyColumnsBf16,
  applyColumnsNormPreservingBf16,
  applyRowsBf16,
  applyRowsNormPreservingBf16,
  projectColumnsBf16,
  projectColumnsWithNormsBf16,
  setWasmKernels,
  wasmKernelsAvailable,
} from '../../src/core/bf16-wasm';
import { encodeElementsInto } from '../../src/core/dtypes';
import { applyColumnsNormPreserving, applyRowsNormPreserving, normPreservingFactors, projectColumnsWithNorms, squaredLength } from '../../src/core/norm-preserving';
import { applyColumns, applyRows, orthogonalizeColumns, projectColumns } from '../../src/core/orthogonalize';
import { applyColumnsFast, applyRowsFast, orthogonalizeColumnsFast, projectColumnsFast } from '../../src/core/orthogonalize-fast';
import { orthogonalizeColumnsNormPreservingFast } from '../../src/core/norm-preserving-fast';
import { mulberry32 } from '../../src/core/random';

const SHAPES: [number, number][] = [
  [1, 1],
  [2, 8],
  [3, 7],
  [5, 16],
  [37, 53],
  [64, 1031],
  [129, 300],
];
const SCALES = [1, 0.5, -1.5, 0];
const WEIGHTS = [1, 0.7, 0];

/** Finite BF16 bytes: weight-like values, random finite bit patterns, ±0, subnormals and the largest values. */
function finiteMatrix(rows: number, cols: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const count = rows * cols;
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = (random() - 0.5) * 0.2 * 2 ** Math.floor(random() * 6 - 3);
  const bytes = new Uint8Array(count * 2);
  const bits = new Uint16Array(bytes.buffer);
  encodeElementsInto(values, count, 'BF16', bits, 0);
  const specials = [0x8000, 0, 0x0001, 0x807f, 0x0080, 0x7f7f, 0xff7e, 0x0040];
  for (let i = 0; i < count; i++) {
    const pick = random();
    if (pick < 0.04) bits[i] = specials[Math.floor(random() * specials.length)];
    else if (pick < 0.08) {
      let pattern = Math.floor(random() * 65536);
      if ((pattern & 0x7f80) === 0x7f80) pattern &= 0xff7f; // keep it finite
      bits[i] = pattern;
    }
  }
  return bytes;
}

function unitDirection(length: number, seed: number, zeros = true): Float32Array {
  const random = mulberry32(seed);
  const values = Float32Array.from({ length }, () => random() - 0.5);
  if (zeros && length > 2) values[1] = 0; // a zero coefficient: that row is copied untouched
  const norm = Math.hypot(...values);
  return values.map((value) => value / (norm || 1));
}

function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  const a = new Uint16Array(actual.buffer, actual.byteOffset, actual.byteLength / 2);
  const b = new Uint16Array(expected.buffer, expected.byteOffset, expected.byteLength / 2);
  const first = a.findIndex((value, index) => value !== b[index]);
  expect(first === -1 ? 'identical' : `element ${first}: ${a[first].toString(16)} vs ${b[first].toString(16)}`).toBe('identical');
}

describe('BF16 WebAssembly kernels', () => {
  it('compile and run in Node', () => {
    expect(wasmKernelsAvailable()).toBe(true);
  });

  for (const [rows, cols] of SHAPES) {
    it(`columns edit [${rows}, ${cols}]: projection and every scale bit-identical to the twin`, () => {
      const chunk = finiteMatrix(rows, cols, rows * 131 + cols);
      const direction = unitDirection(rows + 3, cols);
      const expected = projectColumns(chunk, 'BF16', 2, rows, cols, Array.from(direction));
      const projection = new Float64Array(cols);
      expect(projectColumnsBf16(chunk, rows, cols, direction.subarray(2, 2 + rows), projection)).toBe(true);
      expect(Array.from(projection)).toEqual(Array.from(expected));
      for (const scale of SCALES) {
        const output = new Uint8Array(chunk.byteLength);
        expect(applyColumnsBf16(chunk, rows, cols, direction.subarray(2, 2 + rows), projection, scale, output)).toBe(true);
        expectSameBytes(output, applyColumns(chunk, 'BF16', 2, rows, cols, Array.from(direction), expected, scale));
      }
    });

    it(`rows edit [${rows}, ${cols}]: bit-identical to the twin, in place too`, () => {
      const chunk = finiteMatrix(rows, cols, rows * 7 + cols * 3);
      const direction = unitDirection(cols, rows);
      for (const scale of SCALES) {
        const expected = applyRows(chunk, 'BF16', rows, cols, Array.from(direction), scale);
        const output = new Uint8Array(chunk.byteLength);
        expect(applyRowsBf16(chunk, rows, cols, direction, scale, output)).toBe(true);
        expectSameBytes(output, expected);
        const inPlace = chunk.slice();
        expect(applyRowsBf16(inPlace, rows, cols, direction, scale, inPlace)).toBe(true);
        expectSameBytes(inPlace, expected);
      }
    });
  }

  for (const [rows, cols] of SHAPES) {
    it(`norm-preserving columns [${rows}, ${cols}]: projection, norms and pass 2 bit-identical to the twin`, () => {
      const chunk = finiteMatrix(rows, cols, rows * 17 + cols);
      const direction = unitDirection(rows + 1, cols + 5);
      const expected = projectColumnsWithNorms(chunk, 'BF16', 1, rows, cols, direction);
      const projection = new Float64Array(cols);
      const squaredNorms = new Float64Array(cols);
      expect(projectColumnsWithNormsBf16(chunk, rows, cols, direction.subarray(1, 1 + rows), projection, squaredNorms)).toBe(true);
      expect(Array.from(projection)).toEqual(Array.from(expected.projection));
      expect(Array.from(squaredNorms)).toEqual(Array.from(expected.squaredNorms));
      for (const weight of WEIGHTS) {
        const factors = normPreservingFactors(projection, squaredNorms, squaredLength(direction), weight);
        const output = new Uint8Array(chunk.byteLength);
        const untouched = factors.every((factor) => factor === 1);
        expect(applyColumnsNormPreservingBf16(chunk, rows, cols, direction.subarray(1, 1 + rows), projection, factors, weight, untouched, output)).toBe(true);
        expectSameBytes(output, applyColumnsNormPreserving(chunk, 'BF16', 1, rows, cols, direction, projection, factors, weight));
      }
    });

    it(`norm-preserving rows [${rows}, ${cols}]: bit-identical to the twin, in place too`, () => {
      const chunk = finiteMatrix(rows, cols, rows * 5 + cols * 11);
      const direction = unitDirection(cols, rows + 2);
      for (const weight of WEIGHTS) {
        const expected = applyRowsNormPreserving(chunk, 'BF16', rows, cols, direction, weight);
        const output = new Uint8Array(chunk.byteLength);
        expect(applyRowsNormPreservingBf16(chunk, rows, cols, direction, weight, output)).toBe(true);
        expectSameBytes(output, expected);
        const inPlace = chunk.slice();
        expect(applyRowsNormPreservingBf16(inPlace, rows, cols, direction, weight, inPlace)).toBe(true);
        expectSameBytes(inPlace, expected);
      }
    });
  }

  for (const [rows, cols] of SHAPES) {
    it(`whole matrix [${rows}, ${cols}], both passes on one copy: bit-identical to the twins, standard and norm-preserving`, () => {
      const matrix = finiteMatrix(rows, cols, rows * 23 + cols);
      const direction = unitDirection(rows, cols + 9);
      for (const scale of SCALES) {
        expectSameBytes(orthogonalizeColumnsFast(matrix, 'BF16', rows, cols, direction, scale), orthogonalizeColumns(matrix, 'BF16', rows, cols, Array.from(direction), scale));
      }
      for (const weight of WEIGHTS) {
        const reference = projectColumnsWithNorms(matrix, 'BF16', 0, rows, cols, direction);
        const factors = normPreservingFactors(reference.projection, reference.squaredNorms, squaredLength(direction), weight);
        const expected = applyColumnsNormPreserving(matrix, 'BF16', 0, rows, cols, direction, reference.projection, factors, weight);
        expectSameBytes(orthogonalizeColumnsNormPreservingFast(matrix, 'BF16', rows, cols, direction, weight), expected);
        const inPlace = matrix.slice();
        expectSameBytes(orthogonalizeColumnsNormPreservingFast(inPlace, 'BF16', rows, cols, direction, weight, inPlace), expected);
      }
    });
  }

  it('rounds updates that land on a BF16 tie, and one float64 ulp either side, as the twin does', () => {
    // One row, direction r = [1]: pass 2 computes x − scale·p exactly as chosen below.
    const cols = 24;
    const x = new Uint16Array(cols).fill(0x3f80); // 1.0
    const chunk = new Uint8Array(x.buffer);
    const projection = new Float64Array(cols);
    const half = 2 ** -8; // half a BF16 ulp at 1.0 is 2^-8: 1 − 2^-8·k lands on ties below 1
    for (let j = 0; j < cols; j++) {
      const tie = half * (1 + (j % 6)); // on a tie (odd k) or an exact BF16 value (even k)
      const nudge = j % 3 === 0 ? 0 : (j % 3 === 1 ? 1 : -1) * 2 ** -52;
      projection[j] = tie + nudge;
    }
    const direction = new Float32Array([1]);
    const output = new Uint8Array(chunk.byteLength);
    expect(applyColumnsBf16(chunk, 1, cols, direction, projection, 1, output)).toBe(true);
    expectSameBytes(output, applyColumns(chunk, 'BF16', 0, 1, cols, [1], projection, 1));
  });

  it('leaves chunks with NaN or ±Inf, and non-finite projections, to the JavaScript loop (same bytes as the twin)', () => {
    const rows = 9;
    const cols = 17;
    const direction = unitDirection(rows, 5);
    for (const special of [0x7fc1, 0xff80, 0x7f80, 0xffa5]) {
      const chunk = finiteMatrix(rows, cols, special);
      new Uint16Array(chunk.buffer)[40] = special;
      const projection = new Float64Array(cols);
      expect(projectColumnsBf16(chunk, rows, cols, direction, projection)).toBe(false);
      expect(applyRowsBf16(chunk, rows, cols, unitDirection(cols, 2), 1, new Uint8Array(chunk.byteLength))).toBe(false);
      expect(projectColumnsWithNormsBf16(chunk, rows, cols, direction, new Float64Array(cols), new Float64Array(cols))).toBe(false);
      expect(applyRowsNormPreservingBf16(chunk, rows, cols, unitDirection(cols, 2), 1, new Uint8Array(chunk.byteLength))).toBe(false);
      const expected = projectColumns(chunk, 'BF16', 0, rows, cols, Array.from(direction));
      const fast = projectColumnsFast(chunk, 'BF16', 0, rows, cols, direction);
      expect(Array.from(fast).map(String)).toEqual(Array.from(expected).map(String));
      expectSameBytes(applyColumnsFast(chunk, 'BF16', 0, rows, cols, direction, fast, 1), applyColumns(chunk, 'BF16', 0, rows, cols, Array.from(direction), expected, 1));
      expectSameBytes(applyRowsFast(chunk, 'BF16', rows, cols, unitDirection(cols, 2), 1), applyRows(chunk, 'BF16', rows, cols, Array.from(unitDirection(cols, 2)), 1));
    }
    const finite = finiteMatrix(rows, cols, 1);
    const nanProjection = new Float64Array(cols).fill(0.1);
    nanProjection[3] = NaN;
    expect(applyColumnsBf16(finite, rows, cols, direction, nanProjection, 1, new Uint8Array(finite.byteLength))).toBe(false);
  });

  it('the fast kernels give the same bytes with the WebAssembly kernels switched off', () => {
    const rows = 33;
    const cols = 100;
    const chunk = finiteMatrix(rows, cols, 99);
    const direction = unitDirection(rows, 3);
    const rowsDirection = unitDirection(cols, 4);
    const run = () => {
      const projection = projectColumnsFast(chunk, 'BF16', 0, rows, cols, direction);
      return [applyColumnsFast(chunk, 'BF16', 0, rows, cols, direction, projection, 1), applyRowsFast(chunk, 'BF16', rows, cols, rowsDirection, 1)];
    };
    const withWasm = run();
    setWasmKernels(false);
    try {
      expect(wasmKernelsAvailable()).toBe(false);
      const withoutWasm = run();
      expectSameBytes(withWasm[0], withoutWasm[0]);
      expectSameBytes(withWasm[1], withoutWasm[1]);
    } finally {
      setWasmKernels(true);
    }
  });

  it('the committed module is the build of kernels/bf16.ts', () => {
    const output = execFileSync(process.execPath, ['scripts/build-kernels.mjs', '--check'], { encoding: 'utf8' });
    expect(output).toContain('matches');
  }, 60_000);
});
