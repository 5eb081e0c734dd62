/**
 * The WebAssembly SIMD kernels for BF16 storage (kernels/bf16.ts, AssemblyScript, built into
 * ./bf16-wasm-module.ts): the same float64 operations as the reference twin in the same order, two lanes at a
 * time, so the bytes equal the twin's (test/unit/bf16-wasm.test.ts). Each call copies its chunk into the module's
 * memory, runs there in place and copies the result out; the copies cost a few percent of the arithmetic.
 *
 * Every function returns false when it did not run — no WebAssembly SIMD here, the kernels switched off
 * (setWasmKernels), or a NaN/±Inf anywhere in its numbers, whose payloads WebAssembly leaves unspecified — and
 * the caller then runs its JavaScript loop, which keeps the twin's NaN bits. One instance per thread (module
 * state), compiled on first use.
 */
import { BF16_KERNELS_WASM_BASE64 } from './bf16-wasm-module';
import { float32ToBfloat16Bits } from './dtypes';
import { normPreservingFactor } from './norm-preserving';

interface KernelExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  hasNonFinite(data: number, count: number): number;
  projectColumns(chunk: number, rows: number, cols: number, direction: number, projection: number): void;
  applyColumns(chunk: number, output: number, rows: number, cols: number, direction: number, projection: number, scale: number): void;
  applyRows(chunk: number, output: number, rows: number, cols: number, directionF64: number, directionPairs: number, scale: number): void;
  projectColumnsWithNorms(chunk: number, rows: number, cols: number, direction: number, projection: number, squaredNorms: number): void;
  applyColumnsNormPreserving(chunk: number, output: number, rows: number, cols: number, direction: number, projection: number, factors: number, weight: number, untouchedColumns: number): void;
  applyRowsNormPreserving(chunk: number, output: number, rows: number, cols: number, directionF64: number, directionPairs: number, weight: number): void;
}

const WASM_PAGE = 65536;
const ALIGN = 16;
let instance: KernelExports | null | undefined; // undefined: not tried yet
let enabled = true;

/** Switches the WebAssembly kernels off (or back on): the bench compares them with the JavaScript loops. */
export function setWasmKernels(on: boolean): void {
  enabled = on;
}

/** Whether the WebAssembly kernels run on this thread (compiled and switched on). */
export function wasmKernelsAvailable(): boolean {
  return kernels() !== null;
}

function kernels(): KernelExports | null {
  if (!enabled) return null;
  if (instance !== undefined) return instance;
  try {
    const bytes = Uint8Array.from(atob(BF16_KERNELS_WASM_BASE64), (char) => char.charCodeAt(0));
    // Synchronous compile: fine in Node and in workers (the browser's main thread refuses modules over 4 KB,
    // and then the JavaScript loops run).
    const module = new WebAssembly.Module(bytes);
    instance = new WebAssembly.Instance(module, { env: { encodeSlow: (value: number) => float32ToBfloat16Bits(value), normFactor: normPreservingFactor } }).exports as unknown as KernelExports;
  } catch {
    instance = null;
  }
  return instance;
}

const aligned = (offset: number) => Math.ceil(offset / ALIGN) * ALIGN;

/**
 * Lays out regions of the given byte sizes after the module's static data, growing its memory to fit; null when
 * it cannot grow that far (32-bit memory, or the host refuses), and the caller falls back to its JavaScript loop.
 */
function layout(exports: KernelExports, sizes: number[]): number[] | null {
  let offset = aligned(exports.heapBase());
  const starts = sizes.map((size) => {
    const start = offset;
    offset = aligned(offset + size);
    return start;
  });
  const missing = offset - exports.memory.buffer.byteLength;
  if (missing > 0) {
    try {
      exports.memory.grow(Math.ceil(missing / WASM_PAGE));
    } catch {
      return null;
    }
  }
  return starts;
}

function allFinite(values: Float32Array | Float64Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

function copyIn(exports: KernelExports, at: number, bytes: Uint8Array): void {
  new Uint8Array(exports.memory.buffer, at, bytes.byteLength).set(bytes);
}

/**
 * The columns edits' layout: the chunk, the chunk's rows' direction entries as float32 [rows], then each of
 * `vectors` as float64 [cols], copied in; null where it cannot be laid out or anything is NaN/±Inf.
 */
function columnsLayout(exports: KernelExports, chunk: Uint8Array, rows: number, cols: number, direction: Float32Array, vectors: Float64Array[]): number[] | null {
  if (!allFinite(direction) || !vectors.every(allFinite)) return null;
  const regions = layout(exports, [chunk.byteLength, rows * 4, ...vectors.map(() => cols * 8)]);
  if (!regions) return null;
  copyIn(exports, regions[0], chunk);
  if (exports.hasNonFinite(regions[0], rows * cols)) return null;
  new Float32Array(exports.memory.buffer, regions[1], rows).set(direction);
  vectors.forEach((vector, index) => new Float64Array(exports.memory.buffer, regions[2 + index], cols).set(vector));
  return regions;
}

/** Copies the float64 vector at `at` back out into `target`. */
function copyOut(exports: KernelExports, at: number, target: Float64Array): void {
  target.set(new Float64Array(exports.memory.buffer, at, target.length));
}

/** The edited chunk, in place at `at`, back out into `output`. */
function chunkOut(exports: KernelExports, at: number, output: Uint8Array): true {
  output.set(new Uint8Array(exports.memory.buffer, at, output.byteLength));
  return true;
}

/** Pass 1 of the columns edit on a BF16 chunk [rows, cols]; `direction` holds the chunk's rows' entries. */
export function projectColumnsBf16(chunk: Uint8Array, rows: number, cols: number, direction: Float32Array, projection: Float64Array): boolean {
  const exports = kernels();
  const regions = exports && columnsLayout(exports, chunk, rows, cols, direction, [projection]);
  if (!exports || !regions) return false;
  const [input, directionAt, projectionAt] = regions;
  exports.projectColumns(input, rows, cols, directionAt, projectionAt);
  copyOut(exports, projectionAt, projection);
  return true;
}

/** Pass 2 of the columns edit, W − scale·r pᵀ, written to `output` (which may be `chunk`). */
export function applyColumnsBf16(chunk: Uint8Array, rows: number, cols: number, direction: Float32Array, projection: Float64Array, scale: number, output: Uint8Array): boolean {
  const exports = Number.isFinite(scale) ? kernels() : null;
  const regions = exports && columnsLayout(exports, chunk, rows, cols, direction, [projection]);
  if (!exports || !regions) return false;
  const [input, directionAt, projectionAt] = regions;
  exports.applyColumns(input, input, rows, cols, directionAt, projectionAt, scale);
  return chunkOut(exports, input, output);
}

/**
 * Both passes of the columns edit on a whole matrix in memory: the matrix goes into the module once, pass 1 sums
 * into zeros (as projectColumnsFast's fresh projection) and pass 2 edits it in place there.
 */
export function orthogonalizeColumnsBf16(matrix: Uint8Array, rows: number, cols: number, direction: Float32Array, scale: number, output: Uint8Array): boolean {
  const exports = Number.isFinite(scale) ? kernels() : null;
  const regions = exports && columnsLayout(exports, matrix, rows, cols, direction, [new Float64Array(cols)]);
  if (!exports || !regions) return false;
  const [input, directionAt, projectionAt] = regions;
  exports.projectColumns(input, rows, cols, directionAt, projectionAt);
  exports.applyColumns(input, input, rows, cols, directionAt, projectionAt, scale);
  return chunkOut(exports, input, output);
}

/** The rows edit E − scale·(E r) rᵀ on a BF16 chunk [rows, cols = dModel], written to `output` (may be `chunk`). */
export function applyRowsBf16(chunk: Uint8Array, rows: number, cols: number, direction: Float32Array, scale: number, output: Uint8Array): boolean {
  return runRowsKernel('applyRows', chunk, rows, cols, direction, scale, output);
}

/** Either rows edit, `scale` being α or the norm-preserving weight w: both take the same layout. */
function runRowsKernel(kernel: 'applyRows' | 'applyRowsNormPreserving', chunk: Uint8Array, rows: number, cols: number, direction: Float32Array, scale: number, output: Uint8Array): boolean {
  const exports = kernels();
  if (!exports || !Number.isFinite(scale) || !allFinite(direction)) return false;
  const regions = rowsLayout(exports, chunk, rows, cols, direction);
  if (!regions) return false;
  exports[kernel](regions.input, regions.input, rows, cols, regions.directionAt, regions.pairsAt, scale);
  return chunkOut(exports, regions.input, output);
}

/** The chunk, r as float64 [cols] and r's entries twice [cols, 2] in the module's memory; null on NaN/±Inf. */
function rowsLayout(exports: KernelExports, chunk: Uint8Array, rows: number, cols: number, direction: Float32Array) {
  const regions = layout(exports, [chunk.byteLength, cols * 8, cols * 16]);
  if (!regions) return null;
  const [input, directionAt, pairsAt] = regions;
  copyIn(exports, input, chunk);
  if (exports.hasNonFinite(input, rows * cols)) return null;
  const directionF64 = new Float64Array(exports.memory.buffer, directionAt, cols);
  const pairs = new Float64Array(exports.memory.buffer, pairsAt, cols * 2);
  for (let j = 0; j < cols; j++) {
    directionF64[j] = direction[j];
    pairs[2 * j] = direction[j];
    pairs[2 * j + 1] = direction[j];
  }
  return { input, directionAt, pairsAt };
}

/** Norm-preserving pass 1: adds the chunk's rᵀW and column squared norms into `projection` and `squaredNorms`. */
export function projectColumnsWithNormsBf16(chunk: Uint8Array, rows: number, cols: number, direction: Float32Array, projection: Float64Array, squaredNorms: Float64Array): boolean {
  const exports = kernels();
  const regions = exports && columnsLayout(exports, chunk, rows, cols, direction, [projection, squaredNorms]);
  if (!exports || !regions) return false;
  const [input, directionAt, projectionAt, normsAt] = regions;
  exports.projectColumnsWithNorms(input, rows, cols, directionAt, projectionAt, normsAt);
  copyOut(exports, projectionAt, projection);
  copyOut(exports, normsAt, squaredNorms);
  return true;
}

/** Norm-preserving pass 2, (W − w·r pᵀ)·diag(factors), written to `output` (may be `chunk`). */
export function applyColumnsNormPreservingBf16(
  chunk: Uint8Array,
  rows: number,
  cols: number,
  direction: Float32Array,
  projection: Float64Array,
  factors: Float64Array,
  weight: number,
  untouchedColumns: boolean,
  output: Uint8Array,
): boolean {
  const exports = Number.isFinite(weight) ? kernels() : null;
  const regions = exports && columnsLayout(exports, chunk, rows, cols, direction, [projection, factors]);
  if (!exports || !regions) return false;
  const [input, directionAt, projectionAt, factorsAt] = regions;
  exports.applyColumnsNormPreserving(input, input, rows, cols, directionAt, projectionAt, factorsAt, weight, untouchedColumns ? 1 : 0);
  return chunkOut(exports, input, output);
}

/**
 * Both norm-preserving passes on a whole matrix in memory, the matrix copied into the module once: pass 1, then
 * `totals` (the caller's sums and factors, in JavaScript, from the partials) between the passes, then pass 2.
 */
export function orthogonalizeColumnsNormPreservingBf16(
  matrix: Uint8Array,
  rows: number,
  cols: number,
  direction: Float32Array,
  weight: number,
  output: Uint8Array,
  totals: (partial: { projection: Float64Array; squaredNorms: Float64Array }) => { projection: Float64Array; factors: Float64Array },
): boolean {
  const exports = Number.isFinite(weight) ? kernels() : null;
  const zeros = () => new Float64Array(cols);
  const regions = exports && columnsLayout(exports, matrix, rows, cols, direction, [zeros(), zeros(), zeros()]);
  if (!exports || !regions) return false;
  const [input, directionAt, projectionAt, normsAt, factorsAt] = regions;
  exports.projectColumnsWithNorms(input, rows, cols, directionAt, projectionAt, normsAt);
  const partial = { projection: zeros(), squaredNorms: zeros() };
  copyOut(exports, projectionAt, partial.projection);
  copyOut(exports, normsAt, partial.squaredNorms);
  const { projection, factors } = totals(partial);
  if (!allFinite(projection) || !allFinite(factors)) return false; // the caller's loops start over
  new Float64Array(exports.memory.buffer, projectionAt, cols).set(projection);
  new Float64Array(exports.memory.buffer, factorsAt, cols).set(factors);
  exports.applyColumnsNormPreserving(input, input, rows, cols, directionAt, projectionAt, factorsAt, weight, factors.every((factor) => factor === 1) ? 1 : 0);
  return chunkOut(exports, input, output);
}

/** The norm-preserving rows edit on a BF16 chunk [rows, cols = dModel], written to `output` (may be `chunk`). */
export function applyRowsNormPreservingBf16(chunk: Uint8Array, rows: number, cols: number, direction: Float32Array, weight: number, output: Uint8Array): boolean {
  return runRowsKernel('applyRowsNormPreserving', chunk, rows, cols, direction, weight, output);
}
