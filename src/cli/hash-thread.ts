/**
 * SHA-256 of the output files on a thread of its own, for `abliterate ablate`. On the main thread node:crypto's
 * hash (~1.7 GB/s here) was the largest single cost of an ablation: a profile of a 1 GB model showed the main
 * thread hashing for 0.67 s and idle for 1.1 s while it waited on writes and kernels it could not overlap. On this
 * thread a chunk is hashed while the chunks before it are still being written and the next ones edited.
 *
 * Bytes the engine hands over (updateOwned) move here and back, buffer and all, so nothing is copied; bytes it
 * keeps (update: headers, small files) are copied first; ranges of the output's own copy of a shard, which the
 * ablation leaves as copied (updateFromFile), are read by this thread, so they never pass through the main thread
 * (whose garbage collector the moved buffers kept busy: 0.4 s of a 1 GB run). Every file's bytes are hashed in call order, since one
 * port delivers messages in the order they were posted.
 */
import { Worker } from 'node:worker_threads';
import { BackendError } from '../base/errors';
import type { IncrementalHash } from '../engine/output-writer';

type Reply = { seq: number; bytes: Uint8Array } | { seq: number; hex: string } | { seq: number; hashed: number } | { seq: number; error: string };

interface Waiter {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
}

const WORKER_ENTRY = new URL('./hash-worker.mjs', import.meta.url);

export class HashThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Waiter>();
  private nextSeq = 1;
  private nextFile = 1;
  private failure: Error | null = null;
  private closed = false;

  constructor() {
    this.worker = new Worker(WORKER_ENTRY);
    this.worker.on('message', (reply: Reply) => {
      const waiter = this.waiting.get(reply.seq);
      this.waiting.delete(reply.seq);
      waiter?.resolve(reply);
    });
    this.worker.on('error', (error) => this.fail(new BackendError(`the hashing thread failed: ${error.message}`)));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new BackendError(`the hashing thread exited (code ${code})`));
    });
  }

  /** A new incremental SHA-256 on this thread. */
  createHash(): IncrementalHash {
    const file = this.nextFile++;
    this.post({ op: 'open', file });
    return {
      update: (bytes: Uint8Array) => {
        const copy = bytes.slice();
        this.post({ op: 'update', file, bytes: copy }, [copy.buffer]);
      },
      updateOwned: async (bytes: Uint8Array) => {
        // Only a whole plain ArrayBuffer can move; anything else (a view into a buffer someone else holds) is copied.
        if (!(bytes.buffer instanceof ArrayBuffer) || bytes.byteLength === 0) {
          const copy = bytes.slice();
          const reply = await this.request({ op: 'update', file, bytes: copy }, [copy.buffer]);
          if (!('bytes' in reply)) throw new BackendError('the hashing thread returned no bytes');
          return bytes;
        }
        const reply = await this.request({ op: 'update', file, bytes }, [bytes.buffer]);
        if (!('bytes' in reply)) throw new BackendError('the hashing thread returned no bytes');
        return reply.bytes;
      },
      updateFromFile: async (path: string, offset: number, length: number) => {
        const reply = await this.request({ op: 'updateFile', file, path, offset, length });
        if (!('hashed' in reply) || reply.hashed !== length) throw new BackendError(`the hashing thread did not hash ${path}`);
      },
      hexDigest: async () => {
        const reply = await this.request({ op: 'digest', file });
        if (!('hex' in reply)) throw new BackendError('the hashing thread returned no digest');
        return reply.hex;
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new BackendError('the hashing thread was closed'));
    await this.worker.terminate();
  }

  private post(message: object, transfer: ArrayBuffer[] = []): void {
    if (this.failure) throw this.failure;
    this.worker.postMessage(message, transfer);
  }

  private request(message: object, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = this.nextSeq++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      this.worker.postMessage({ ...message, seq }, transfer);
    }).then((reply) => {
      if ('error' in reply) throw new BackendError(`hashing failed: ${reply.error}`);
      return reply;
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}
