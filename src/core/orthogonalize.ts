/**
 * Weight orthogonalization against a unit direction r (docs/definitions.md), the CPU reference twin of every GPU kernel.
 *
 * - out-projections W [dModel, in] (HF layout, rows = residual dimension): W ← W − α r (rᵀW).
 *   Done in two passes over row chunks so a tensor never has to be in memory whole:
 *   pass 1 `projectColumns` accumulates p = rᵀW [in] over the rows, pass 2 `applyColumns` writes W − α r pᵀ.
 * - embedding E [vocab, dModel] (rows = tokens): E ← E − α (E r) rᵀ, row by row (`applyRows`).
 * - biases b [dModel]: b ← b − α r (r·b) (`applyBias`, the one-row case of the rows formula).
 *
 * The norm-preserving variants of the same edits are in ./norm-preserving.ts.
 *
 * All arithmetic is float64 on decoded values; each output element is rounded once, to nearest even, into the
 * stored dtype. A zero update leaves the stored bits untouched (also the sign of −0), so α = 0 is byte-identical.
 */
import { decodeElementsInto, encodeElementsInto, storedElements, allocateStored, type FloatDType } from './dtypes';

export function checkShape(chunk: Uint8Array, dtype: FloatDType, rows: number, cols: number, what: string): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new RangeError(`${what}: invalid shape [${rows}, ${cols}]`);
  }
  const bytesPerElement = dtype === 'F32' ? 4 : 2;
  if (chunk.byteLength !== rows * cols * bytesPerElement) {
    throw new RangeError(`${what}: ${chunk.byteLength} bytes is not [${rows}, ${cols}] ${dtype}`);
  }
}

export function checkRowRange(rowStart: number, rows: number, directionLength: number, what: string): void {
  if (rowStart < 0 || rowStart + rows > directionLength) {
    throw new RangeError(`${what}: rows ${rowStart}..${rowStart + rows} outside a direction of length ${directionLength}`);
  }
}

/**
 * Pass 1 of the columns edit: the partial projection p = r[rowStart .. rowStart+rows)ᵀ · W[those rows]
 * for one row chunk. Sum the partials of all chunks (float64) to get rᵀW.
 */
export function projectColumns(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rowStart: number,
  rows: number,
  cols: number,
  direction: ArrayLike<number>, // [dModel]
): Float64Array /* [cols] */ {
  checkShape(chunk, dtype, rows, cols, 'projectColumns');
  checkRowRange(rowStart, rows, direction.length, 'projectColumns');
  const view = storedElements(chunk, dtype);
  const row = new Float64Array(cols);
  const projection = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const coefficient = direction[rowStart + i];
    if (coefficient === 0) continue;
    decodeElementsInto(view, dtype, i * cols, cols, row);
    for (let j = 0; j < cols; j++) projection[j] += coefficient * row[j];
  }
  return projection;
}

/** Pass 2 of the columns edit: W ← W − α r pᵀ for one row chunk, with p = rᵀW of the whole tensor. */
export function applyColumns(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rowStart: number,
  rows: number,
  cols: number,
  direction: ArrayLike<number>, // [dModel]
  projection: Float64Array, // [cols] = rᵀW
  scale: number,
): Uint8Array {
  checkShape(chunk, dtype, rows, cols, 'applyColumns');
  if (projection.length !== cols) throw new RangeError(`applyColumns: projection length ${projection.length} ≠ ${cols} columns`);
  checkRowRange(rowStart, rows, direction.length, 'applyColumns');
  return mapRows(chunk, dtype, rows, cols, (row, i) => {
    const coefficient = scale * direction[rowStart + i];
    for (let j = 0; j < cols; j++) {
      const delta = coefficient * projection[j];
      if (delta !== 0) row[j] -= delta;
    }
    return coefficient === 0;
  });
}

/** Rows edit: E ← E − α (E r) rᵀ for a chunk of whole rows (embedding rows, or a bias as one row). */
export function applyRows(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rows: number,
  cols: number,
  direction: ArrayLike<number>, // [cols = dModel]
  scale: number,
): Uint8Array {
  checkShape(chunk, dtype, rows, cols, 'applyRows');
  if (direction.length !== cols) throw new RangeError(`applyRows: direction length ${direction.length} ≠ ${cols} columns`);
  return mapRows(chunk, dtype, rows, cols, (row) => {
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += row[j] * direction[j];
    const coefficient = scale * dot;
    if (coefficient !== 0) {
      for (let j = 0; j < cols; j++) {
        const delta = coefficient * direction[j];
        if (delta !== 0) row[j] -= delta;
      }
    }
    return coefficient === 0;
  });
}

/** Bias edit: b ← b − α r (r·b). */
export function applyBias(bias: Uint8Array /* [dModel] stored */, dtype: FloatDType, direction: ArrayLike<number>, scale: number): Uint8Array {
  const bytesPerElement = dtype === 'F32' ? 4 : 2;
  return applyRows(bias, dtype, 1, bias.byteLength / bytesPerElement, direction, scale);
}

/**
 * The row loop of every row-local edit: each stored row decoded into float64, handed to `update` (which edits it
 * in place and says whether the row is untouched), and encoded into new stored bytes, or copied bit for bit where
 * untouched (see encodeRowPreservingUntouched).
 */
export function mapRows(
  chunk: Uint8Array, // [rows, cols] stored
  dtype: FloatDType,
  rows: number,
  cols: number,
  update: (row: Float64Array /* [cols] */, i: number) => boolean,
): Uint8Array {
  const input = storedElements(chunk, dtype);
  const { bytes, view: output } = allocateStored(rows * cols, dtype);
  const row = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    decodeElementsInto(input, dtype, i * cols, cols, row);
    const untouched = update(row, i);
    encodeRowPreservingUntouched(row, input, output, dtype, i * cols, cols, untouched);
  }
  return bytes;
}

/**
 * Encodes one row; a row with no update is copied bit for bit, which keeps NaN payloads and −0 exact for α = 0
 * (re-encoding a value that did not change gives the same bits anyway, this only spares the work and NaN payloads).
 */
export function encodeRowPreservingUntouched(
  row: Float64Array,
  input: Uint16Array | Float32Array,
  output: Uint16Array | Float32Array,
  dtype: FloatDType,
  start: number,
  cols: number,
  untouched: boolean,
): void {
  if (untouched) {
    if (dtype === 'F32') {
      // Copy through integer views so a signalling NaN is not quieted on the way.
      new Uint32Array(output.buffer, output.byteOffset + start * 4, cols).set(new Uint32Array(input.buffer, input.byteOffset + start * 4, cols));
    } else {
      (output as Uint16Array).set((input as Uint16Array).subarray(start, start + cols), start);
    }
    return;
  }
  encodeElementsInto(row, cols, dtype, output, start);
}

/** Both passes of the columns edit on a whole tensor held in memory (tests, small tensors). */
export function orthogonalizeColumns(
  weight: Uint8Array, // [rows = dModel, cols] stored
  dtype: FloatDType,
  rows: number,
  cols: number,
  direction: ArrayLike<number>, // [dModel]
  scale: number,
): Uint8Array {
  if (direction.length !== rows) throw new RangeError(`orthogonalizeColumns: direction length ${direction.length} ≠ ${rows} rows`);
  const projection = projectColumns(weight, dtype, 0, rows, cols, direction);
  return applyColumns(weight, dtype, 0, rows, cols, direction, projection, scale);
}

/**
 * The columns edit W ← W − α r (rᵀW) on a matrix stored transposed, as ONNX MatMul weights are: Wᵀ [in, dModel],
 * one row per column of the HF matrix. Each stored row k gets p_k = Σ_i r_i Wᵀ[k, i], then Wᵀ[k, i] − (α r_i) p_k.
 * The arithmetic is that of `projectColumns` + `applyColumns` on the HF layout, operation for operation: p_k is
 * summed over i in partial sums of `partialRows` HF rows each (the row chunks the safetensors export reads), so
 * an ONNX initializer and its safetensors twin come out bit for bit the same. Rows are independent: any chunk of
 * whole stored rows can be edited on its own.
 */
export function applyColumnsTransposed(
  chunk: Uint8Array, // [rows = in, cols = dModel] stored
  dtype: FloatDType,
  rows: number,
  cols: number,
  direction: ArrayLike<number>, // [dModel]
  scale: number,
  partialRows: number,
): Uint8Array {
  checkShape(chunk, dtype, rows, cols, 'applyColumnsTransposed');
  if (direction.length !== cols) throw new RangeError(`applyColumnsTransposed: direction length ${direction.length} ≠ ${cols} columns`);
  if (!Number.isInteger(partialRows) || partialRows < 1) throw new RangeError(`applyColumnsTransposed: invalid partial sum length ${partialRows}`);
  const input = storedElements(chunk, dtype);
  const { bytes, view: output } = allocateStored(rows * cols, dtype);
  const row = new Float64Array(cols);
  const coefficients = Float64Array.from({ length: cols }, (_, i) => scale * direction[i]); // [dModel]: α r_i as applyColumns forms it
  const untouched = [...coefficients.keys()].filter((i) => coefficients[i] === 0);
  // Bit copies through integer views, so a NaN payload survives as applyColumns' untouched rows keep it.
  const inputBits = dtype === 'F32' ? new Uint32Array(input.buffer, input.byteOffset, input.length) : (input as Uint16Array);
  const outputBits = dtype === 'F32' ? new Uint32Array(output.buffer, output.byteOffset, output.length) : (output as Uint16Array);
  for (let k = 0; k < rows; k++) {
    decodeElementsInto(input, dtype, k * cols, cols, row);
    let projection = 0; // p_k = rᵀ W[:, k]
    for (let start = 0; start < cols; start += partialRows) {
      let partial = 0;
      const end = Math.min(cols, start + partialRows);
      for (let i = start; i < end; i++) {
        const coefficient = direction[i];
        if (coefficient !== 0) partial += coefficient * row[i];
      }
      projection += partial;
    }
    for (let i = 0; i < cols; i++) {
      const delta = coefficients[i] * projection;
      if (delta !== 0) row[i] -= delta;
    }
    encodeElementsInto(row, cols, dtype, output, k * cols);
    // An HF row with α r_i = 0 is copied bit for bit by applyColumns; here that row is a column.
    for (const i of untouched) outputBits[k * cols + i] = inputBits[k * cols + i];
  }
  return bytes;
}
