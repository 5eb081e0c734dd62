/**
 * The fast CPU kernels of the weight orthogonalization: the same arithmetic as the reference twin
 * (src/core/orthogonalize.ts), operation for operation in float64 and rounded once into the stored dtype, so the
 * output is bit-identical — only without the per-element calls, the shared polymorphic element views and the
 * per-call scratch allocation that made the reference run at ~40 M elements/s.
 *
 * BF16 chunks go first to the WebAssembly SIMD kernels (./bf16-wasm.ts), which do the same operations two lanes
 * at a time; the loops below run where those decline (no WebAssembly SIMD, NaN or ±Inf in the chunk) and for the
 * other dtypes.
 *
 * Each kernel is one monomorphic loop per dtype: a row of stored elements is decoded into a float32 scratch row
 * (BF16 by a 16-bit shift into the float32 bit pattern, F16 through a 65,536-entry table; both exact), the float64
 * update is written to a float64 scratch row, and the encoder rounds it to nearest even without leaving the loop:
 * F16 from the row's bit pattern read through an aliased Uint32Array, BF16 through one float32 conversion with a
 * fix-up at BF16 ties (encodeHalfRow). Values outside the fast paths (F16 zeros, subnormals and overflow, NaN and
 * ±Inf) go to the reference encoders, which are the same functions the twin uses.
 *
 * Untouched rows (a zero coefficient) are copied bit for bit, as in the twin, which keeps −0 and NaN payloads.
 * The scratch rows live per column count in a small cache: a kernel call allocates only its output.
 */
import { applyColumnsBf16, applyRowsBf16, orthogonalizeColumnsBf16, projectColumnsBf16 } from './bf16-wasm';
import { float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits, type FloatDType } from './dtypes';

// Requires a little-endian host (the twin asserts the same): word 2j+1 of a float64 row is its high word.
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface Scratch {
  decoded: Float32Array; // [cols] one decoded row
  decodedBits: Uint32Array; // same memory
  row: Float64Array; // [cols] the updated row in float64
  rowWords: Uint32Array; // same memory, 2 words per value
}

let scratchCache: Scratch | null = null;

export function scratchFor(cols: number): Scratch {
  if (!scratchCache || scratchCache.decoded.length < cols) {
    const decoded = new Float32Array(cols);
    const row = new Float64Array(cols);
    scratchCache = { decoded, decodedBits: new Uint32Array(decoded.buffer), row, rowWords: new Uint32Array(row.buffer) };
  }
  return scratchCache;
}

/** The float32 rounding of a row, for the BF16 encoder; one per module, grown to the widest row. */
let float32Row = { values: new Float32Array(0), bits: new Uint32Array(0) };
function float32RowFor(cols: number): { values: Float32Array; bits: Uint32Array } {
  if (float32Row.values.length < cols) {
    const values = new Float32Array(cols);
    float32Row = { values, bits: new Uint32Array(values.buffer) };
  }
  return float32Row;
}

let float16Table: Float32Array | null = null;
function float16Decode(): Float32Array {
  if (!float16Table) {
    float16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) float16Table[bits] = float16BitsToFloat32(bits);
  }
  return float16Table;
}

export function check(chunk: Uint8Array, dtype: FloatDType, rows: number, cols: number, what: string): void {
  if (!LITTLE_ENDIAN_HOST) throw new Error('Big-endian hosts are not supported: safetensors data is little-endian.');
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) throw new RangeError(`${what}: invalid shape [${rows}, ${cols}]`);
  const bytesPerElement = dtype === 'F32' ? 4 : 2;
  if (chunk.byteLength !== rows * cols * bytesPerElement) throw new RangeError(`${what}: ${chunk.byteLength} bytes is not [${rows}, ${cols}] ${dtype}`);
}

export function checkRowRange(rowStart: number, rows: number, directionLength: number, what: string): void {
  if (rowStart < 0 || rowStart + rows > directionLength) {
    throw new RangeError(`${what}: rows ${rowStart}..${rowStart + rows} outside a direction of length ${directionLength}`);
  }
}

/** Element view of the chunk; a misaligned chunk is copied once (the twin does the same). */
export function halfView(chunk: Uint8Array): Uint16Array {
  const aligned = chunk.byteOffset % 2 === 0 ? chunk : chunk.slice();
  return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
}
export function wordView(chunk: Uint8Array): Uint32Array {
  const aligned = chunk.byteOffset % 4 === 0 ? chunk : chunk.slice();
  return new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
}
export function floatView(words: Uint32Array): Float32Array {
  return new Float32Array(words.buffer, words.byteOffset, words.length);
}

/**
 * Where a kernel writes its result: `output` when given (the kernels work row by row, each row read whole into
 * the scratch rows before it is written, so `output` may be the input chunk itself: an edit in place), else a
 * new buffer. An output of the wrong size or alignment is not used.
 */
export function outputBytes(chunk: Uint8Array, dtype: FloatDType, output: Uint8Array | undefined): Uint8Array {
  const alignment = dtype === 'F32' ? 4 : 2;
  if (output && output.byteLength === chunk.byteLength && output.byteOffset % alignment === 0) return output;
  return new Uint8Array(chunk.byteLength);
}
function halfOutput(bytes: Uint8Array): Uint16Array {
  return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
}
function wordOutput(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** Decodes row `base .. base+cols` of 16-bit storage into `scratch.decoded` (exact). */
export function decodeHalfRow(input: Uint16Array, base: number, cols: number, dtype: FloatDType, scratch: Scratch): void {
  const bits = scratch.decodedBits;
  if (dtype === 'BF16') {
    for (let j = 0; j < cols; j++) bits[j] = input[base + j] << 16;
  } else {
    const table = float16Decode();
    const decoded = scratch.decoded;
    for (let j = 0; j < cols; j++) decoded[j] = table[input[base + j]];
  }
}

/** Rounds `scratch.row[0..cols)` to nearest even into 16-bit storage at `base`; same bits as the twin's encoders. */
export function encodeHalfRow(row: Float64Array, words: Uint32Array, cols: number, dtype: FloatDType, output: Uint16Array, base: number): void {
  if (dtype === 'BF16') {
    const { values: rounded, bits } = float32RowFor(cols);
    for (let j = 0; j < cols; j++) {
      // Through float32 (one hardware conversion), then to nearest even on the low 16 bits. Rounding twice gives
      // the float64 value's own rounding everywhere except where the float32 result is itself a BF16 midpoint
      // and the value is not: then the value's side of that midpoint decides. Monotone rounding keeps every
      // other value on the same side of every midpoint (midpoints are float32 numbers), subnormals included.
      const value = row[j];
      rounded[j] = value;
      const b = bits[j];
      if ((b & 0x7f800000) === 0x7f800000) {
        output[base + j] = float32ToBfloat16Bits(value); // NaN, ±Inf, past the float32 range: the twin's encoder
      } else if ((b & 0xffff) === 0x8000 && rounded[j] !== value) {
        output[base + j] = (b >>> 16) + (Math.abs(value) > Math.abs(rounded[j]) ? 1 : 0);
      } else {
        output[base + j] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
      }
    }
  } else {
    for (let j = 0; j < cols; j++) {
      const high = words[2 * j + 1];
      const exponent = (high >>> 20) & 0x7ff;
      if (exponent >= 1009 && exponent <= 1038) {
        const low = words[2 * j];
        const kept = (high >>> 10) & 0x3ff;
        const below = (high & 0x3ff) | ((low | -low) >>> 31); // round bit 9, sticky bits 0..8 and the low word
        output[base + j] = (((high >>> 16) & 0x8000) | ((exponent - 1008) << 10) | kept) + ((below + 0x1ff + (kept & 1)) >>> 10);
      } else {
        output[base + j] = float32ToFloat16Bits(row[j]);
      }
    }
  }
}

/**
 * `count` float64 values rounded to nearest even into BF16 / F16 bits at `output[start..]`: the row encoder of the
 * kernels below, exposed so its rounding can be checked against the twin's encoders on chosen values.
 */
export function encodeHalfInto(values: Float64Array, count: number, dtype: 'BF16' | 'F16', output: Uint16Array, start: number): void {
  if (count > values.length) throw new RangeError(`encodeHalfInto: ${count} values requested, ${values.length} given`);
  encodeHalfRow(values, new Uint32Array(values.buffer, values.byteOffset, values.length * 2), count, dtype, output, start);
}

/** Pass 1 of the columns edit for one row chunk: the partial rᵀW [cols], bit-identical to the twin's. */
export function projectColumnsFast(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rowStart: number,
  rows: number,
  cols: number,
  direction: Float32Array, // [dModel]
  projection: Float64Array = new Float64Array(cols), // [cols], accumulated into
): Float64Array {
  check(chunk, dtype, rows, cols, 'projectColumns');
  checkRowRange(rowStart, rows, direction.length, 'projectColumns');
  if (projection.length !== cols) throw new RangeError(`projectColumns: projection length ${projection.length} ≠ ${cols} columns`);
  if (dtype === 'F32') {
    const input = floatView(wordView(chunk));
    for (let i = 0; i < rows; i++) {
      const coefficient = direction[rowStart + i];
      if (coefficient === 0) continue;
      const base = i * cols;
      for (let j = 0; j < cols; j++) projection[j] += coefficient * input[base + j];
    }
    return projection;
  }
  if (dtype === 'BF16' && projectColumnsBf16(chunk, rows, cols, direction.subarray(rowStart, rowStart + rows), projection)) return projection;
  const input = halfView(chunk);
  const scratch = scratchFor(cols);
  const decoded = scratch.decoded;
  for (let i = 0; i < rows; i++) {
    const coefficient = direction[rowStart + i];
    if (coefficient === 0) continue;
    decodeHalfRow(input, i * cols, cols, dtype, scratch);
    for (let j = 0; j < cols; j++) projection[j] += coefficient * decoded[j];
  }
  return projection;
}

/** Pass 2 of the columns edit, W − α r pᵀ for one row chunk; bit-identical to the twin's `applyColumns`. */
export function applyColumnsFast(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rowStart: number,
  rows: number,
  cols: number,
  direction: Float32Array, // [dModel]
  projection: Float64Array, // [cols] = rᵀW
  scale: number,
  output?: Uint8Array, // [rows, cols] stored; may be `chunk` (see outputBytes)
): Uint8Array {
  check(chunk, dtype, rows, cols, 'applyColumns');
  if (projection.length !== cols) throw new RangeError(`applyColumns: projection length ${projection.length} ≠ ${cols} columns`);
  checkRowRange(rowStart, rows, direction.length, 'applyColumns');
  const bytes = outputBytes(chunk, dtype, output);
  if (dtype === 'F32') {
    const inputWords = wordView(chunk);
    const input = floatView(inputWords);
    const outputWords = wordOutput(bytes);
    const result = floatView(outputWords);
    for (let i = 0; i < rows; i++) {
      const coefficient = scale * direction[rowStart + i];
      const base = i * cols;
      if (coefficient === 0) {
        outputWords.set(inputWords.subarray(base, base + cols), base); // integer copy: a signalling NaN stays as stored
        continue;
      }
      for (let j = 0; j < cols; j++) {
        const delta = coefficient * projection[j];
        result[base + j] = delta !== 0 ? input[base + j] - delta : input[base + j];
      }
    }
    return bytes;
  }
  if (dtype === 'BF16' && applyColumnsBf16(chunk, rows, cols, direction.subarray(rowStart, rowStart + rows), projection, scale, bytes)) return bytes;
  const input = halfView(chunk);
  const result = halfOutput(bytes);
  const scratch = scratchFor(cols);
  const { decoded, row } = scratch;
  for (let i = 0; i < rows; i++) {
    const coefficient = scale * direction[rowStart + i];
    const base = i * cols;
    if (coefficient === 0) {
      result.set(input.subarray(base, base + cols), base);
      continue;
    }
    decodeHalfRow(input, base, cols, dtype, scratch);
    for (let j = 0; j < cols; j++) {
      const delta = coefficient * projection[j];
      row[j] = delta !== 0 ? decoded[j] - delta : decoded[j];
    }
    encodeHalfRow(row, scratch.rowWords, cols, dtype, result, base);
  }
  return bytes;
}

/**
 * Both passes of the columns edit on a whole matrix in memory (a matrix that fits one chunk): rᵀW from zeros,
 * then W − α r pᵀ; the same bytes as applyColumnsFast(…, projectColumnsFast(…)), which is what runs unless the
 * BF16 WebAssembly kernels take both passes on one copy of the matrix.
 */
export function orthogonalizeColumnsFast(
  matrix: Uint8Array, // [rows = dModel, cols] stored
  dtype: FloatDType,
  rows: number,
  cols: number,
  direction: Float32Array, // [dModel]
  scale: number,
  output?: Uint8Array, // [rows, cols] stored; may be `matrix` (see outputBytes)
): Uint8Array {
  check(matrix, dtype, rows, cols, 'orthogonalizeColumns');
  checkRowRange(0, rows, direction.length, 'orthogonalizeColumns');
  if (dtype === 'BF16') {
    const bytes = outputBytes(matrix, dtype, output);
    if (orthogonalizeColumnsBf16(matrix, rows, cols, direction.subarray(0, rows), scale, bytes)) return bytes;
  }
  return applyColumnsFast(matrix, dtype, 0, rows, cols, direction, projectColumnsFast(matrix, dtype, 0, rows, cols, direction), scale, output);
}

/** Rows edit E − α (E r) rᵀ for whole rows (embedding rows, a bias as one row); bit-identical to `applyRows`. */
export function applyRowsFast(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rows: number,
  cols: number,
  direction: Float32Array, // [cols = dModel]
  scale: number,
  output?: Uint8Array, // [rows, cols] stored; may be `chunk` (see outputBytes)
): Uint8Array {
  check(chunk, dtype, rows, cols, 'applyRows');
  if (direction.length !== cols) throw new RangeError(`applyRows: direction length ${direction.length} ≠ ${cols} columns`);
  const bytes = outputBytes(chunk, dtype, output);
  if (dtype === 'F32') {
    const inputWords = wordView(chunk);
    const input = floatView(inputWords);
    const outputWords = wordOutput(bytes);
    const result = floatView(outputWords);
    for (let i = 0; i < rows; i++) {
      const base = i * cols;
      let dot = 0;
      for (let j = 0; j < cols; j++) dot += input[base + j] * direction[j];
      const coefficient = scale * dot;
      if (coefficient === 0) {
        outputWords.set(inputWords.subarray(base, base + cols), base);
        continue;
      }
      for (let j = 0; j < cols; j++) {
        const delta = coefficient * direction[j];
        result[base + j] = delta !== 0 ? input[base + j] - delta : input[base + j];
      }
    }
    return bytes;
  }
  if (dtype === 'BF16' && applyRowsBf16(chunk, rows, cols, direction, scale, bytes)) return bytes;
  const input = halfView(chunk);
  const result = halfOutput(bytes);
  const scratch = scratchFor(cols);
  const { decoded, row } = scratch;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    decodeHalfRow(input, base, cols, dtype, scratch);
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += decoded[j] * direction[j];
    const coefficient = scale * dot;
    if (coefficient === 0) {
      result.set(input.subarray(base, base + cols), base);
      continue;
    }
    for (let j = 0; j < cols; j++) {
      const delta = coefficient * direction[j];
      row[j] = delta !== 0 ? decoded[j] - delta : decoded[j];
    }
    encodeHalfRow(row, scratch.rowWords, cols, dtype, result, base);
  }
  return bytes;
}

/** Bias edit b − α r (r·b), the one-row case of the rows edit. */
export function applyBiasFast(bias: Uint8Array /* [dModel] stored */, dtype: FloatDType, direction: Float32Array, scale: number): Uint8Array {
  return applyRowsFast(bias, dtype, 1, bias.byteLength / (dtype === 'F32' ? 4 : 2), direction, scale);
}
