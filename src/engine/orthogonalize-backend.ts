/**
 * The compute interface of the streaming ablation: the CPU kernels (src/core/*-fast.ts, bit-identical to their
 * reference twins src/core/orthogonalize.ts and norm-preserving.ts) and the WebGPU kernels implement the same
 * calls on row chunks of stored bytes, so the engine does not know which runs.
 * Shapes: a chunk holds `rows` whole rows of `cols` elements of `dtype`, row-major little-endian.
 */
import type { FloatDType } from '../core/dtypes';
import type { ColumnProjectionAndNorms } from '../core/norm-preserving';
import {
  applyColumnsNormPreservingFast,
  applyRowsNormPreservingFast,
  orthogonalizeColumnsNormPreservingFast,
  projectColumnsWithNormsFast,
} from '../core/norm-preserving-fast';
import { applyBiasFast, applyColumnsFast, applyRowsFast, projectColumnsFast } from '../core/orthogonalize-fast';

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
export const cpuOrthogonalizeBackend: OrthogonalizeBackend = {
  name: 'cpu',
  async projectColumns(chunk, dtype, rowStart, rows, cols, direction) {
    return projectColumnsFast(chunk, dtype, rowStart, rows, cols, direction);
  },
  async applyColumns(chunk, dtype, rowStart, rows, cols, direction, projection, scale) {
    return applyColumnsFast(chunk, dtype, rowStart, rows, cols, direction, projection, scale);
  },
  async applyRows(chunk, dtype, rows, cols, direction, scale) {
    return applyRowsFast(chunk, dtype, rows, cols, direction, scale);
  },
  async applyBias(bias, dtype, direction, scale) {
    return applyBiasFast(bias, dtype, direction, scale);
  },
  async projectColumnsWithNorms(chunk, dtype, rowStart, rows, cols, direction) {
    return projectColumnsWithNormsFast(chunk, dtype, rowStart, rows, cols, direction);
  },
  async applyColumnsNormPreserving(chunk, dtype, rowStart, rows, cols, direction, projection, factors, weight) {
    return applyColumnsNormPreservingFast(chunk, dtype, rowStart, rows, cols, direction, projection, factors, weight);
  },
  async applyRowsNormPreserving(chunk, dtype, rows, cols, direction, weight) {
    return applyRowsNormPreservingFast(chunk, dtype, rows, cols, direction, weight);
  },
  async orthogonalizeColumns(matrix, dtype, rows, cols, direction, scale) {
    return applyColumnsFast(matrix, dtype, 0, rows, cols, direction, projectColumnsFast(matrix, dtype, 0, rows, cols, direction), scale);
  },
  async orthogonalizeColumnsNormPreserving(matrix, dtype, rows, cols, direction, weight) {
    return orthogonalizeColumnsNormPreservingFast(matrix, dtype, rows, cols, direction, weight);
  },
};

/** The backend's norm-preserving calls, each falling back to the CPU kernels where the backend has none. */
export function normPreservingCalls(backend: OrthogonalizeBackend): NormPreservingCalls {
  const cpu = cpuOrthogonalizeBackend as NormPreservingCalls;
  return {
    projectColumnsWithNorms: backend.projectColumnsWithNorms?.bind(backend) ?? cpu.projectColumnsWithNorms,
    applyColumnsNormPreserving: backend.applyColumnsNormPreserving?.bind(backend) ?? cpu.applyColumnsNormPreserving,
    applyRowsNormPreserving: backend.applyRowsNormPreserving?.bind(backend) ?? cpu.applyRowsNormPreserving,
  };
}
