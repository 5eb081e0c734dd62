/**
 * The compute interface of the streaming ablation: the CPU kernels (src/core/*-fast.ts, bit-identical to their
 * reference twins src/core/orthogonalize.ts and norm-preserving.ts) and the WebGPU kernels implement the same
 * calls on row chunks of stored bytes, so the engine does not know which runs.
 * Shapes: a chunk holds `rows` whole rows of `cols` elements of `dtype`, row-major little-endian.
 */
import type { FloatDType } from '../core/dtypes';
import type { ColumnProjectionAndNorms } from '../core/norm-preserving';
import { kernelBackend, runKernel } from './kernel-ops';

export interface OrthogonalizeBackend {
  readonly name: string;
  /** Pass 1 of W ← W − α r(rᵀW): the partial rᵀW [cols] of rows rowStart..rowStart+rows, float64. */
  projectColumns(chunk: Uint8Array, dtype: FloatDType, rowStart: number, rows: number, cols: number, direction: Float32Array): Promise<Float64Array>;
  /** Pass 2: W − α r pᵀ for one row chunk, with p = rᵀW of the whole matrix. Returns new stored bytes. */
  applyColumns(
    chunk: Uint8Array,
    dtype: FloatDType,
    rowStart: number,
    rows: number,
    cols: number,
    direction: Float32Array,
    projection: Float64Array,
    scale: number,
  ): Promise<Uint8Array>;
  /** E ← E − α (E r) rᵀ for whole rows of length dModel. Returns new stored bytes. */
  applyRows(chunk: Uint8Array, dtype: FloatDType, rows: number, cols: number, direction: Float32Array, scale: number): Promise<Uint8Array>;
  /** b ← b − α r (r·b). Returns new stored bytes. */
  applyBias(bias: Uint8Array, dtype: FloatDType, direction: Float32Array, scale: number): Promise<Uint8Array>;
  /**
   * The norm-preserving method (src/core/norm-preserving.ts). Optional: a backend without them has those calls
   * run by the CPU kernels (`normPreservingCalls`).
   */
  projectColumnsWithNorms?(chunk: Uint8Array, dtype: FloatDType, rowStart: number, rows: number, cols: number, direction: Float32Array): Promise<ColumnProjectionAndNorms>;
  applyColumnsNormPreserving?(
    chunk: Uint8Array,
    dtype: FloatDType,
    rowStart: number,
    rows: number,
    cols: number,
    direction: Float32Array,
    projection: Float64Array,
    factors: Float64Array,
    weight: number,
  ): Promise<Uint8Array>;
  applyRowsNormPreserving?(chunk: Uint8Array, dtype: FloatDType, rows: number, cols: number, direction: Float32Array, weight: number): Promise<Uint8Array>;
  /**
   * Optional: both passes on a whole matrix [rows = dModel, cols] in one call, the same bytes as the two-pass calls
   * on one chunk; lets a backend that runs elsewhere (a worker thread) receive the matrix once.
   */
  orthogonalizeColumns?(matrix: Uint8Array, dtype: FloatDType, rows: number, cols: number, direction: Float32Array, scale: number): Promise<Uint8Array>;
  orthogonalizeColumnsNormPreserving?(matrix: Uint8Array, dtype: FloatDType, rows: number, cols: number, direction: Float32Array, weight: number): Promise<Uint8Array>;
}

export type NormPreservingCalls = Required<Pick<OrthogonalizeBackend, 'projectColumnsWithNorms' | 'applyColumnsNormPreserving' | 'applyRowsNormPreserving'>>;

/** The CPU kernels on the calling thread: core's fast kernels, bit-identical to the reference twins. */
export const cpuOrthogonalizeBackend: OrthogonalizeBackend = kernelBackend('cpu', async (request) => runKernel(request, false));

/**
 * The same kernels writing each result over the chunk they were given (no allocation per call): only for a
 * caller that owns every chunk it passes and never reads one again, as the streaming engine with its own read
 * buffers (./chunk-buffers.ts).
 */
export const cpuInPlaceOrthogonalizeBackend: OrthogonalizeBackend = kernelBackend('cpu', async (request) => runKernel(request, true));

/** The backend's norm-preserving calls, each falling back to the CPU kernels where the backend has none. */
export function normPreservingCalls(backend: OrthogonalizeBackend): NormPreservingCalls {
  const cpu = cpuOrthogonalizeBackend as NormPreservingCalls;
  return {
    projectColumnsWithNorms: backend.projectColumnsWithNorms?.bind(backend) ?? cpu.projectColumnsWithNorms,
    applyColumnsNormPreserving: backend.applyColumnsNormPreserving?.bind(backend) ?? cpu.applyColumnsNormPreserving,
    applyRowsNormPreserving: backend.applyRowsNormPreserving?.bind(backend) ?? cpu.applyRowsNormPreserving,
  };
}
