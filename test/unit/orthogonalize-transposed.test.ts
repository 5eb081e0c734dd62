/**
 * applyColumnsTransposed (ONNX MatMul weights [in, dModel]) against the safetensors export's two-pass columns edit
 * on the HF layout [dModel, in], computed chunk by chunk exactly as the streaming export does: the transposed
 * result must be the same bits, for every dtype, α and chunking.
 */
import { describe, expect, it } from 'vitest';
import { encodeFromFloat64, type FloatDType } from '../../src/core/dtypes';
import { applyColumns, applyColumnsTransposed, projectColumns } from '../../src/core/orthogonalize';
import { mulberry32 } from '../../src/core/random';

const BYTES: Record<FloatDType, number> = { F32: 4, F16: 2, BF16: 2 };

function unitDirection(length: number, seed: number, zeros: number[] = []): Float32Array {
  const random = mulberry32(seed);
  const values = Array.from({ length }, (_, k) => (zeros.includes(k) ? 0 : random() - 0.5));
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
}

/** The safetensors export's columns edit of W [rows, cols], pass 1 over row chunks of `chunkRows`, then pass 2. */
function exportColumnsEdit(weight: Uint8Array, dtype: FloatDType, rows: number, cols: number, direction: Float32Array, scale: number, chunkRows: number): Uint8Array {
  const rowBytes = cols * BYTES[dtype];
  const projection = new Float64Array(cols);
  for (let start = 0; start < rows; start += chunkRows) {
    const count = Math.min(chunkRows, rows - start);
    const partial = projectColumns(weight.subarray(start * rowBytes, (start + count) * rowBytes), dtype, start, count, cols, direction);
    for (let j = 0; j < cols; j++) projection[j] += partial[j];
  }
  return applyColumns(weight, dtype, 0, rows, cols, direction, projection, scale);
}

/** Element-wise transpose of a stored [rows, cols] matrix. */
function transpose(bytes: Uint8Array, rows: number, cols: number, size: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out.set(bytes.subarray((i * cols + j) * size, (i * cols + j + 1) * size), (j * rows + i) * size);
  return out;
}

describe('applyColumnsTransposed ≡ the safetensors columns edit, transposed', () => {
  const dModel = 24;
  const inFeatures = 37;
  for (const dtype of ['F32', 'F16', 'BF16'] as FloatDType[]) {
    for (const [scale, chunkRows] of [[1, dModel], [0.7, 5], [2, 1]] as [number, number][]) {
      it(`${dtype}, α = ${scale}, partial sums over ${chunkRows} rows`, () => {
        const random = mulberry32(11);
        const hf = encodeFromFloat64(Array.from({ length: dModel * inFeatures }, () => (random() - 0.5) * 3), dtype); // [dModel, in]
        const direction = unitDirection(dModel, 3, [4, 9]); // zero components: those HF rows are copied bit for bit
        const expected = transpose(exportColumnsEdit(hf, dtype, dModel, inFeatures, direction, scale, chunkRows), dModel, inFeatures, BYTES[dtype]); // [in, dModel]
        const stored = transpose(hf, dModel, inFeatures, BYTES[dtype]); // [in, dModel]
        const rowBytes = dModel * BYTES[dtype];
        // Edited in two chunks of stored rows, as the ONNX writer streams them.
        const first = applyColumnsTransposed(stored.subarray(0, 20 * rowBytes), dtype, 20, dModel, direction, scale, chunkRows);
        const second = applyColumnsTransposed(stored.subarray(20 * rowBytes), dtype, inFeatures - 20, dModel, direction, scale, chunkRows);
        const actual = new Uint8Array([...first, ...second]);
        expect(Buffer.from(actual).equals(Buffer.from(expected))).toBe(true);
        expect(Buffer.from(actual).equals(Buffer.from(stored))).toBe(false);
      });
    }
  }
  it('rejects a wrong direction length or partial sum length', () => {
    const chunk = new Uint8Array(4 * 3 * 4);
    expect(() => applyColumnsTransposed(chunk, 'F32', 4, 3, new Float32Array(2), 1, 1)).toThrow(RangeError);
    expect(() => applyColumnsTransposed(chunk, 'F32', 4, 3, new Float32Array(3), 1, 0)).toThrow(RangeError);
  });
});
