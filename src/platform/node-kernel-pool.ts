/**
 * The orthogonalization kernels on a pool of Node worker threads: an OrthogonalizeBackend whose calls run in
 * parallel, one per thread, so the streaming ablation (which keeps several chunks in flight) uses every core.
 * Results are bit-identical to the calling-thread backend: the same kernels, and the engine, not the pool, fixes
 * the order in which partial projections are summed.
 *
 * Each chunk is copied once into the worker (a chunk that views a larger buffer is sliced first, so only its own
 * bytes travel), or moved when the caller hands its buffers over; results come back transferred. Queued calls wait
 * for an idle thread.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { FloatDType } from '../core/dtypes';
import type { ColumnProjectionAndNorms } from '../core/norm-preserving';
import type { OrthogonalizeBackend } from '../engine/orthogonalize-backend';
import { BackendError, deserializeError, type SerializedError } from '../base/errors';

export type KernelOp =
  | 'projectColumns'
  | 'applyColumns'
  | 'orthogonalizeColumns'
  | 'applyRows'
  | 'applyBias'
  | 'projectColumnsWithNorms'
  | 'applyColumnsNormPreserving'
  | 'applyRowsNormPreserving'
  | 'orthogonalizeColumnsNormPreserving';

type KernelResult = Uint8Array | Float64Array | [Float64Array, Float64Array];

export interface KernelRequest {
  id: number;
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

export type KernelResponse = { id: number; result: KernelResult } | { id: number; error: SerializedError };

interface PendingCall {
  request: KernelRequest;
  transfer: ArrayBuffer[];
  resolve: (result: KernelResult) => void;
  reject: (error: Error) => void;
}

interface PoolThread {
  worker: Worker;
  busy: PendingCall | null;
}

const WORKER_ENTRY = new URL('./node-kernel-worker.mjs', import.meta.url);

/**
 * Threads for the kernels by default: one per core the process may use, at most MAX_DEFAULT_THREADS. Each thread
 * is a V8 isolate with the TypeScript loader (tens of MB), and the engine keeps only two chunks' worth of input in
 * flight, so more threads would add memory, not speed.
 */
export function defaultKernelThreads(): number {
  return Math.min(availableParallelism(), MAX_DEFAULT_THREADS);
}
const MAX_DEFAULT_THREADS = 4;

export class NodeKernelPool implements OrthogonalizeBackend {
  readonly name = 'cpu';
  private readonly threads: PoolThread[] = [];
  private readonly waiting: PendingCall[] = [];
  private nextId = 1;
  private failure: Error | null = null;
  private closed = false;

  /**
   * `transferChunks`: the caller hands each chunk's buffer over (the engine never touches a chunk after passing it
   * to the backend, and the Node file source reads every chunk into a buffer of its own): whole-buffer chunks are
   * then moved to the thread instead of copied. Off by default, since a moved buffer is empty for its old owner.
   */
  constructor(
    readonly size: number = defaultKernelThreads(),
    private readonly transferChunks = false,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`kernel pool size ${size} must be a positive integer`);
    for (let i = 0; i < size; i++) this.threads.push(this.startThread());
  }

  projectColumns(chunk: Uint8Array, dtype: FloatDType, rowStart: number, rows: number, cols: number, direction: Float32Array): Promise<Float64Array> {
    return this.call('projectColumns', chunk, dtype, rowStart, rows, cols, direction, 1) as Promise<Float64Array>;
  }

  applyColumns(chunk: Uint8Array, dtype: FloatDType, rowStart: number, rows: number, cols: number, direction: Float32Array, projection: Float64Array, scale: number): Promise<Uint8Array> {
    return this.call('applyColumns', chunk, dtype, rowStart, rows, cols, direction, scale, projection) as Promise<Uint8Array>;
  }

  orthogonalizeColumns(matrix: Uint8Array, dtype: FloatDType, rows: number, cols: number, direction: Float32Array, scale: number): Promise<Uint8Array> {
    return this.call('orthogonalizeColumns', matrix, dtype, 0, rows, cols, direction, scale) as Promise<Uint8Array>;
  }

  applyRows(chunk: Uint8Array, dtype: FloatDType, rows: number, cols: number, direction: Float32Array, scale: number): Promise<Uint8Array> {
    return this.call('applyRows', chunk, dtype, 0, rows, cols, direction, scale) as Promise<Uint8Array>;
  }

  applyBias(bias: Uint8Array, dtype: FloatDType, direction: Float32Array, scale: number): Promise<Uint8Array> {
    return this.call('applyBias', bias, dtype, 0, 1, direction.length, direction, scale) as Promise<Uint8Array>;
  }

  async projectColumnsWithNorms(chunk: Uint8Array, dtype: FloatDType, rowStart: number, rows: number, cols: number, direction: Float32Array): Promise<ColumnProjectionAndNorms> {
    const [projection, squaredNorms] = (await this.call('projectColumnsWithNorms', chunk, dtype, rowStart, rows, cols, direction, 1)) as [Float64Array, Float64Array];
    return { projection, squaredNorms };
  }

  applyColumnsNormPreserving(
    chunk: Uint8Array,
    dtype: FloatDType,
    rowStart: number,
    rows: number,
    cols: number,
    direction: Float32Array,
    projection: Float64Array,
    factors: Float64Array,
    weight: number,
  ): Promise<Uint8Array> {
    return this.call('applyColumnsNormPreserving', chunk, dtype, rowStart, rows, cols, direction, weight, projection, factors) as Promise<Uint8Array>;
  }

  applyRowsNormPreserving(chunk: Uint8Array, dtype: FloatDType, rows: number, cols: number, direction: Float32Array, weight: number): Promise<Uint8Array> {
    return this.call('applyRowsNormPreserving', chunk, dtype, 0, rows, cols, direction, weight) as Promise<Uint8Array>;
  }

  orthogonalizeColumnsNormPreserving(matrix: Uint8Array, dtype: FloatDType, rows: number, cols: number, direction: Float32Array, weight: number): Promise<Uint8Array> {
    return this.call('orthogonalizeColumnsNormPreserving', matrix, dtype, 0, rows, cols, direction, weight) as Promise<Uint8Array>;
  }

  /** Stops every thread; calls still queued or running are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new BackendError('the kernel pool was closed'));
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  private call(
    op: KernelOp,
    chunk: Uint8Array,
    dtype: FloatDType,
    rowStart: number,
    rows: number,
    cols: number,
    direction: Float32Array,
    scale: number,
    projection?: Float64Array,
    factors?: Float64Array,
  ): Promise<KernelResult> {
    if (this.failure) return Promise.reject(this.failure);
    // Only the chunk's own bytes travel: a view into a larger buffer is copied out, and that copy is transferred.
    const ownsBuffer = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength;
    const sent = ownsBuffer ? chunk : chunk.slice();
    const request: KernelRequest = { id: this.nextId++, op, chunk: sent, dtype, rowStart, rows, cols, direction, projection, factors, scale };
    const transfer = ownsBuffer && !this.transferChunks ? [] : [sent.buffer as ArrayBuffer];
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, transfer, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const thread of this.threads) {
      if (this.waiting.length === 0) return;
      if (thread.busy) continue;
      const call = this.waiting.shift()!;
      thread.busy = call;
      thread.worker.postMessage(call.request, call.transfer);
    }
  }

  private startThread(): PoolThread {
    const worker = new Worker(WORKER_ENTRY);
    const thread: PoolThread = { worker, busy: null };
    worker.on('message', (response: KernelResponse) => {
      const call = thread.busy;
      thread.busy = null;
      if (call && call.request.id === response.id) {
        if ('error' in response) call.reject(deserializeError(response.error));
        else call.resolve(response.result);
      }
      this.dispatch();
    });
    worker.on('error', (error) => this.fail(new BackendError(`a kernel worker thread failed: ${error.message}`)));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(new BackendError(`a kernel worker thread exited (code ${code})`));
    });
    return thread;
  }

  /** A thread that died takes the pool with it: every queued and running call is rejected. */
  private fail(error: Error): void {
    this.failure ??= error;
    for (const thread of this.threads) {
      thread.busy?.reject(error);
      thread.busy = null;
    }
    for (const call of this.waiting.splice(0)) call.reject(error);
  }
}
