/**
 * Fast CPU kernels of the norm-preserving edit: the same float64 operations, in the same order, as its reference
 * twin (./norm-preserving.ts), on the row decoder and encoder of ./orthogonalize-fast.ts, so the output is
 * bit-identical to the twin's.
 */
import { applyColumnsNormPreservingBf16, applyRowsNormPreservingBf16, orthogonalizeColumnsNormPreservingBf16, projectColumnsWithNormsBf16 } from './bf16-wasm';
import type { FloatDType } from './dtypes';
import { normPreservingFactor, normPreservingFactors, squaredLength, type ColumnProjectionAndNorms } from './norm-preserving';
import { check, checkRowRange, decodeHalfRow, encodeHalfRow, floatView, halfView, outputBytes, scratchFor, wordView } from './orthogonalize-fast';

/** Pass 1: partial rᵀW and column squared norms of one row chunk (every row, as the twin). */
export function projectColumnsWithNormsFast(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rowStart: number,
  rows: number,
  cols: number,
  direction: Float32Array, // [dModel]
): ColumnProjectionAndNorms {
  check(chunk, dtype, rows, cols, 'projectColumnsWithNorms');
  checkRowRange(rowStart, rows, direction.length, 'projectColumnsWithNorms');
  const projection = new Float64Array(cols); // [cols]
  const squaredNorms = new Float64Array(cols); // [cols]
  if (dtype === 'BF16' && projectColumnsWithNormsBf16(chunk, rows, cols, direction.subarray(rowStart, rowStart + rows), projection, squaredNorms)) return { projection, squaredNorms };
  const input = dtype === 'F32' ? floatView(wordView(chunk)) : null;
  const half = dtype === 'F32' ? null : halfView(chunk);
  const scratch = scratchFor(cols);
  const decoded = scratch.decoded;
  for (let i = 0; i < rows; i++) {
    const coefficient = direction[rowStart + i];
    if (input) {
      const base = i * cols;
      for (let j = 0; j < cols; j++) {
        const value = input[base + j];
        projection[j] += coefficient * value;
        squaredNorms[j] += value * value;
      }
    } else {
      decodeHalfRow(half!, i * cols, cols, dtype, scratch);
      for (let j = 0; j < cols; j++) {
        const value = decoded[j];
        projection[j] += coefficient * value;
        squaredNorms[j] += value * value;
      }
    }
  }
  return { projection, squaredNorms };
}

/** Encodes scratch.row into the output (16-bit) or writes it as float32, or copies the input row untouched. */
function finishRow(
  dtype: FloatDType,
  row: Float64Array,
  rowWords: Uint32Array,
  cols: number,
  base: number,
  untouched: boolean,
  inputBits: Uint16Array | Uint32Array,
  outputBits: Uint16Array | Uint32Array,
  output32: Float32Array | null,
): void {
  if (untouched) {
    (outputBits as Uint32Array).set((inputBits as Uint32Array).subarray(base, base + cols), base);
  } else if (output32) {
    for (let j = 0; j < cols; j++) output32[base + j] = row[j];
  } else {
    encodeHalfRow(row, rowWords, cols, dtype, outputBits as Uint16Array, base);
  }
}

/** Pass 2: (W − w r pᵀ) · diag(s) for one row chunk. */
export function applyColumnsNormPreservingFast(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rowStart: number,
  rows: number,
  cols: number,
  direction: Float32Array, // [dModel]
  projection: Float64Array, // [cols] = rᵀW of the whole matrix
  factors: Float64Array, // [cols] = s
  weight: number,
  output?: Uint8Array, // [rows, cols] stored; may be `chunk` (see outputBytes)
): Uint8Array {
  check(chunk, dtype, rows, cols, 'applyColumnsNormPreserving');
  if (projection.length !== cols || factors.length !== cols) {
    throw new RangeError(`applyColumnsNormPreserving: projection ${projection.length} / factors ${factors.length} ≠ ${cols} columns`);
  }
  checkRowRange(rowStart, rows, direction.length, 'applyColumnsNormPreserving');
  const bytes = outputBytes(chunk, dtype, output);
  const untouchedColumns = factors.every((factor) => factor === 1);
  if (dtype === 'BF16' && applyColumnsNormPreservingBf16(chunk, rows, cols, direction.subarray(rowStart, rowStart + rows), projection, factors, weight, untouchedColumns, bytes)) return bytes;
  const wide = dtype === 'F32';
  const inputBits = wide ? wordView(chunk) : halfView(chunk);
  const outputBits = wide ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  const input32 = wide ? floatView(inputBits as Uint32Array) : null;
  const output32 = wide ? floatView(outputBits as Uint32Array) : null;
  const scratch = scratchFor(cols);
  const { decoded, row, rowWords } = scratch;
  for (let i = 0; i < rows; i++) {
    const coefficient = weight * direction[rowStart + i];
    const base = i * cols;
    if (input32) {
      for (let j = 0; j < cols; j++) row[j] = (input32[base + j] - coefficient * projection[j]) * factors[j];
    } else {
      decodeHalfRow(inputBits as Uint16Array, base, cols, dtype, scratch);
      for (let j = 0; j < cols; j++) row[j] = (decoded[j] - coefficient * projection[j]) * factors[j];
    }
    finishRow(dtype, row, rowWords, cols, base, coefficient === 0 && untouchedColumns, inputBits, outputBits, output32);
  }
  return bytes;
}

/** Rows: each row e becomes (e − w r (r·e)) · ‖e‖ / ‖e − w r (r·e)‖. */
export function applyRowsNormPreservingFast(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rows: number,
  cols: number,
  direction: Float32Array, // [cols = dModel]
  weight: number,
  output?: Uint8Array, // [rows, cols] stored; may be `chunk` (see outputBytes)
): Uint8Array {
  check(chunk, dtype, rows, cols, 'applyRowsNormPreserving');
  if (direction.length !== cols) throw new RangeError(`applyRowsNormPreserving: direction length ${direction.length} ≠ ${cols} columns`);
  const bytes = outputBytes(chunk, dtype, output);
  if (dtype === 'BF16' && applyRowsNormPreservingBf16(chunk, rows, cols, direction, weight, bytes)) return bytes;
  const wide = dtype === 'F32';
  const inputBits = wide ? wordView(chunk) : halfView(chunk);
  const outputBits = wide ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  const input32 = wide ? floatView(inputBits as Uint32Array) : null;
  const output32 = wide ? floatView(outputBits as Uint32Array) : null;
  const scratch = scratchFor(cols);
  const { decoded, row, rowWords } = scratch;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    if (input32) {
      for (let j = 0; j < cols; j++) row[j] = input32[base + j];
    } else {
      decodeHalfRow(inputBits as Uint16Array, base, cols, dtype, scratch);
      for (let j = 0; j < cols; j++) row[j] = decoded[j];
    }
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
    finishRow(dtype, row, rowWords, cols, base, coefficient === 0, inputBits, outputBits, output32);
  }
  return bytes;
}

/**
 * Both passes on a whole matrix in memory, as the streaming engine does with one chunk: the partials summed
 * into zeros (so a −0 partial becomes +0, exactly as the engine's sum), the factors, then pass 2.
 */
export function orthogonalizeColumnsNormPreservingFast(
  matrix: Uint8Array, // [rows = dModel, cols] stored
  dtype: FloatDType,
  rows: number,
  cols: number,
  direction: Float32Array, // [dModel]
  weight: number,
  output?: Uint8Array, // [rows, cols] stored; may be `matrix` (see outputBytes)
): Uint8Array {
  // The engine sums the partials of all chunks into zeros, so a −0 partial becomes +0: done here the same way.
  const totals = (partial: ColumnProjectionAndNorms) => {
    const projection = new Float64Array(cols); // [cols]
    const squaredNorms = new Float64Array(cols); // [cols]
    for (let j = 0; j < cols; j++) {
      projection[j] += partial.projection[j];
      squaredNorms[j] += partial.squaredNorms[j];
    }
    return { projection, factors: normPreservingFactors(projection, squaredNorms, squaredLength(direction), weight) };
  };
  check(matrix, dtype, rows, cols, 'orthogonalizeColumnsNormPreserving');
  checkRowRange(0, rows, direction.length, 'orthogonalizeColumnsNormPreserving');
  if (dtype === 'BF16') {
    // The WebAssembly kernels run both passes on one copy of the matrix, `totals` between them.
    const bytes = outputBytes(matrix, dtype, output);
    if (orthogonalizeColumnsNormPreservingBf16(matrix, rows, cols, direction.subarray(0, rows), weight, bytes, totals)) return bytes;
  }
  const { projection, factors } = totals(projectColumnsWithNormsFast(matrix, dtype, 0, rows, cols, direction));
  return applyColumnsNormPreservingFast(matrix, dtype, 0, rows, cols, direction, projection, factors, weight, output);
}
