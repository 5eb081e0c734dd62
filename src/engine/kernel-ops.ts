/**
 * The one list of kernel calls behind OrthogonalizeBackend (./orthogonalize-backend.ts): each call as a plain
 * request object, the CPU kernel that runs it, and the backend built from any runner of requests. The calling-
 * thread CPU backend and the Node worker pool (src/cli/kernel-pool.ts, whose threads run `runKernel`) are both
 * `kernelBackend(runner)`, so a call added here reaches every CPU backend at once.
 */
import type { FloatDType } from '../core/dtypes';
import type { ColumnProjectionAndNorms } from '../core/norm-preserving';
import {
  applyColumnsNormPreservingFast,
  applyRowsNormPreservingFast,
  orthogonalizeColumnsNormPreservingFast,
  projectColumnsWithNormsFast,
} from '../core/norm-preserving-fast';
import { applyBiasFast, applyColumnsFast, applyRowsFast, orthogonalizeColumnsFast, projectColumnsFast } from '../core/orthogonalize-fast';
import type { OrthogonalizeBackend } from './orthogonalize-backend';

export interface KernelRequest {
  op: KernelOp;
  chunk: Uint8Array; // [rows, cols] stored
  dtype: FloatDType;
  rowStart: number;
  rows: number;
  cols: number;
  direction: Float32Array; // [dModel]
  projection?: Float64Array; // [cols], pass 2 of the columns edits only
  factors?: Float64Array; // [cols], applyColumnsNormPreserving only
  /** α, or the norm-preserving weight w. */
  scale: number;
}

export type KernelResult = Uint8Array | Float64Array | ColumnProjectionAndNorms;

/**
 * Each call on the calling thread. `output`, where the call writes stored bytes, may be the request's chunk
 * itself (an edit in place, see outputBytes in core): a thread that owns the chunk then allocates nothing.
 */
const KERNELS = {
  projectColumns: (r: KernelRequest) => projectColumnsFast(r.chunk, r.dtype, r.rowStart, r.rows, r.cols, r.direction),
  applyColumns: (r: KernelRequest, output?: Uint8Array) => applyColumnsFast(r.chunk, r.dtype, r.rowStart, r.rows, r.cols, r.direction, required(r.projection, r, 'projection'), r.scale, output),
  orthogonalizeColumns: (r: KernelRequest, output?: Uint8Array) => orthogonalizeColumnsFast(r.chunk, r.dtype, r.rows, r.cols, r.direction, r.scale, output),
  applyRows: (r: KernelRequest, output?: Uint8Array) => applyRowsFast(r.chunk, r.dtype, r.rows, r.cols, r.direction, r.scale, output),
  applyBias: (r: KernelRequest) => applyBiasFast(r.chunk, r.dtype, r.direction, r.scale),
  projectColumnsWithNorms: (r: KernelRequest) => projectColumnsWithNormsFast(r.chunk, r.dtype, r.rowStart, r.rows, r.cols, r.direction),
  applyColumnsNormPreserving: (r: KernelRequest, output?: Uint8Array) =>
    applyColumnsNormPreservingFast(r.chunk, r.dtype, r.rowStart, r.rows, r.cols, r.direction, required(r.projection, r, 'projection'), required(r.factors, r, 'factors'), r.scale, output),
  applyRowsNormPreserving: (r: KernelRequest, output?: Uint8Array) => applyRowsNormPreservingFast(r.chunk, r.dtype, r.rows, r.cols, r.direction, r.scale, output),
  orthogonalizeColumnsNormPreserving: (r: KernelRequest, output?: Uint8Array) => orthogonalizeColumnsNormPreservingFast(r.chunk, r.dtype, r.rows, r.cols, r.direction, r.scale, output),
} satisfies Record<string, (request: KernelRequest, output?: Uint8Array) => KernelResult>;

export type KernelOp = keyof typeof KERNELS;

function required(values: Float64Array | undefined, request: KernelRequest, what: string): Float64Array {
  if (!values) throw new RangeError(`${request.op}: the request has no ${what}`);
  return values;
}

/** Runs one request on this thread; `inPlace`: write stored results into the request's chunk. */
export function runKernel(request: KernelRequest, inPlace: boolean): KernelResult {
  const kernel = KERNELS[request.op] as ((r: KernelRequest, output?: Uint8Array) => KernelResult) | undefined;
  if (!kernel) throw new RangeError(`unknown kernel call ${String(request.op)}`);
  return kernel(request, inPlace ? request.chunk : undefined);
}

/** The typed array buffers of a result, to transfer it to another thread instead of copying it. */
export function resultBuffers(result: KernelResult): ArrayBuffer[] {
  const arrays = result instanceof Uint8Array || result instanceof Float64Array ? [result] : [result.projection, result.squaredNorms];
  return arrays.map((array) => array.buffer as ArrayBuffer);
}

/** Every OrthogonalizeBackend call as a request handed to `run` (the calling thread, or a pool of threads). */
export function kernelBackend(name: string, run: (request: KernelRequest) => Promise<KernelResult>): Required<OrthogonalizeBackend> {
  const call = <T extends KernelResult>(op: KernelOp, chunk: Uint8Array, dtype: FloatDType, rowStart: number, rows: number, cols: number, direction: Float32Array, scale: number, projection?: Float64Array, factors?: Float64Array) =>
    run({ op, chunk, dtype, rowStart, rows, cols, direction, scale, ...(projection ? { projection } : {}), ...(factors ? { factors } : {}) }) as Promise<T>;
  return {
    name,
    projectColumns: (chunk, dtype, rowStart, rows, cols, direction) => call<Float64Array>('projectColumns', chunk, dtype, rowStart, rows, cols, direction, 1),
    applyColumns: (chunk, dtype, rowStart, rows, cols, direction, projection, scale) => call<Uint8Array>('applyColumns', chunk, dtype, rowStart, rows, cols, direction, scale, projection),
    orthogonalizeColumns: (matrix, dtype, rows, cols, direction, scale) => call<Uint8Array>('orthogonalizeColumns', matrix, dtype, 0, rows, cols, direction, scale),
    applyRows: (chunk, dtype, rows, cols, direction, scale) => call<Uint8Array>('applyRows', chunk, dtype, 0, rows, cols, direction, scale),
    applyBias: (bias, dtype, direction, scale) => call<Uint8Array>('applyBias', bias, dtype, 0, 1, direction.length, direction, scale),
    projectColumnsWithNorms: (chunk, dtype, rowStart, rows, cols, direction) => call<ColumnProjectionAndNorms>('projectColumnsWithNorms', chunk, dtype, rowStart, rows, cols, direction, 1),
    applyColumnsNormPreserving: (chunk, dtype, rowStart, rows, cols, direction, projection, factors, weight) =>
      call<Uint8Array>('applyColumnsNormPreserving', chunk, dtype, rowStart, rows, cols, direction, weight, projection, factors),
    applyRowsNormPreserving: (chunk, dtype, rows, cols, direction, weight) => call<Uint8Array>('applyRowsNormPreserving', chunk, dtype, 0, rows, cols, direction, weight),
    orthogonalizeColumnsNormPreserving: (matrix, dtype, rows, cols, direction, weight) =>
      call<Uint8Array>('orthogonalizeColumnsNormPreserving', matrix, dtype, 0, rows, cols, direction, weight),
  };
}
