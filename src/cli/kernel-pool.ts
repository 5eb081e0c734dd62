/**
 * The orthogonalization kernels on a pool of Node worker threads: an OrthogonalizeBackend whose calls run in
 * parallel, one per thread, so the streaming ablation (which keeps several chunks in flight) uses every core.
 * Results are bit-identical to the calling-thread backend: the same kernels, and the engine, not the pool, fixes
 * the order in which partial projections are summed.
 *
 * Each chunk is copied once into the worker (a chunk that views a larger buffer is sliced first, so only its own
 * bytes travel), or moved when the caller hands its buffers over; the thread edits it in place and moves it back.
 * Queued calls wait for an idle thread. The calls themselves come from the one list in src/engine/kernel-ops.ts.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { kernelBackend, type KernelRequest, type KernelResult } from '../engine/kernel-ops';
import type { OrthogonalizeBackend } from '../engine/orthogonalize-backend';
import { BackendError, deserializeError, type SerializedError } from '../base/errors';

export type KernelMessage = KernelRequest & { id: number };
export type KernelResponse = { id: number; result: KernelResult } | { id: number; error: SerializedError };

interface PendingCall {
  request: KernelMessage;
  transfer: ArrayBuffer[];
  resolve: (result: KernelResult) => void;
  reject: (error: Error) => void;
}

interface PoolThread {
  worker: Worker;
  busy: PendingCall | null;
}

const WORKER_ENTRY = new URL('./kernel-worker.mjs', import.meta.url);

/**
 * Threads for the kernels by default: one per core the process may use but one, which the main thread keeps busy
 * reading, hashing and writing; at least 1, at most MAX_DEFAULT_THREADS. Each thread is a V8 isolate with the
 * TypeScript loader (tens of MB, and most of a CPU second to start), and the engine keeps only two chunks' worth of
 * input in flight, so more threads would add memory, not speed. On 2 cores one thread measured faster than two
 * (0.5 GB model: 4.3–4.4 s against 4.6–4.7 s wall, less CPU time and 40 MB less peak RSS).
 */
export function defaultKernelThreads(): number {
  return Math.max(1, Math.min(availableParallelism() - 1, MAX_DEFAULT_THREADS));
}
const MAX_DEFAULT_THREADS = 4;

/** The kernels on `size` worker threads, as a backend; close() stops the threads. */
export type NodeKernelPool = Required<OrthogonalizeBackend> & { readonly size: number; close(): Promise<void> };

/**
 * `transferChunks`: the caller hands each chunk's buffer over (the engine never touches a chunk after passing it
 * to the backend, and reads every chunk into a buffer of its own): a chunk at the start of its buffer then moves
 * to the thread, buffer and all, instead of being copied. Off by default, since a moved buffer is empty for its
 * old owner. Either way the thread owns what it receives and edits it in place, so it allocates nothing, and the
 * result moves back in that same buffer.
 */
export function createNodeKernelPool(size: number = defaultKernelThreads(), transferChunks = false): NodeKernelPool {
  const threads = new KernelThreads(size, transferChunks);
  return { ...kernelBackend('cpu', (request) => threads.call(request)), size, close: () => threads.close() };
}

class KernelThreads {
  private readonly threads: PoolThread[] = [];
  private readonly waiting: PendingCall[] = [];
  private nextId = 1;
  private failure: Error | null = null;
  private closed = false;

  constructor(
    readonly size: number = defaultKernelThreads(),
    private readonly transferChunks = false,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`kernel pool size ${size} must be a positive integer`);
    for (let i = 0; i < size; i++) this.threads.push(this.startThread());
  }

  /** Stops every thread; calls still queued or running are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new BackendError('the kernel pool was closed'));
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  call(request: KernelRequest): Promise<KernelResult> {
    if (this.failure) return Promise.reject(this.failure);
    const { chunk } = request;
    // A chunk at the start of its buffer owns it (a source's own read buffer; any tail is that read's unused
    // capacity): handed over, the whole buffer moves. Any other view is copied out first, so only its own bytes
    // travel and the buffer it views stays intact.
    const ownsBuffer = chunk.byteOffset === 0 && (this.transferChunks || chunk.byteLength === chunk.buffer.byteLength);
    const sent = ownsBuffer ? chunk : chunk.slice();
    const message: KernelMessage = { ...request, chunk: sent, id: this.nextId++ };
    const transfer = ownsBuffer && !this.transferChunks ? [] : [sent.buffer as ArrayBuffer];
    return new Promise((resolve, reject) => {
      this.waiting.push({ request: message, transfer, resolve, reject });
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
