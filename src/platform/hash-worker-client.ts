/**
 * SHA-256 of output files on a thread of their own: the calling side of the hashing worker, shared by the CLI
 * (src/cli/hash-thread.ts: a Node worker thread with node:crypto) and the browser export (workers/hash.worker.ts:
 * a Web Worker with hash-wasm). Both workers speak the protocol below; `HashPort` hides which kind of worker it is.
 *
 * Bytes the caller hands over (updateOwned) move to the worker and back, buffer and all, so nothing is copied;
 * bytes it keeps (update: headers, small files) are copied first; ranges of a file on disk (updateFromFile, Node
 * only) are read by the worker itself. Every file's bytes are hashed in call order, since one port delivers
 * messages in the order they were posted, and the worker handles them in that order.
 */
import { BackendError } from '../base/errors';
import type { IncrementalHash } from '../engine/output-writer';

/** What the caller sends; `seq` is present when it waits for a reply. */
export type HashRequest =
  | { op: 'open'; file: number; seq?: number }
  | { op: 'update'; file: number; bytes: Uint8Array; seq?: number }
  | { op: 'updateFile'; file: number; path: string; offset: number; length: number; seq?: number }
  | { op: 'digest'; file: number; seq?: number };

export type HashReply = { seq: number; bytes: Uint8Array } | { seq: number; hex: string } | { seq: number; hashed: number } | { seq: number; error: string };

/** A worker as the client sees it: post with a transfer list, hear replies, learn of its death, stop it. */
export interface HashPort {
  post(message: HashRequest, transfer: ArrayBuffer[]): void;
  onReply(handler: (reply: HashReply) => void): void;
  onFailure(handler: (error: Error) => void): void;
  terminate(): Promise<void>;
}

interface Waiter {
  resolve: (reply: HashReply) => void;
  reject: (error: Error) => void;
}

export class HashWorkerClient {
  private readonly waiting = new Map<number, Waiter>();
  private nextSeq = 1;
  private nextFile = 1;
  private failure: Error | null = null;
  private closed = false;

  constructor(
    private readonly port: HashPort,
    /** Whether the worker can read files by path (updateFromFile). */
    private readonly readsFiles: boolean,
  ) {
    port.onReply((reply) => {
      const waiter = this.waiting.get(reply.seq);
      this.waiting.delete(reply.seq);
      waiter?.resolve(reply);
    });
    port.onFailure((error) => {
      if (!this.closed) this.fail(new BackendError(`the hashing worker failed: ${error.message}`));
    });
  }

  /** A new incremental SHA-256 in the worker. */
  createHash(): IncrementalHash {
    const file = this.nextFile++;
    this.post({ op: 'open', file }, []);
    const hash: IncrementalHash = {
      update: (bytes: Uint8Array) => {
        const copy = copyOf(bytes);
        this.post({ op: 'update', file, bytes: copy }, [copy.buffer]);
      },
      updateOwned: async (bytes: Uint8Array) => {
        // The caller's own buffers start at their beginning (a chunk read into one, maybe shorter than it): the
        // buffer moves. Any other view (a slice of Node's shared Buffer pool, say) is copied, never moved.
        const moves = bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength > 0;
        const sent = moves ? bytes : copyOf(bytes);
        const reply = await this.request({ op: 'update', file, bytes: sent }, [sent.buffer as ArrayBuffer]);
        if (!('bytes' in reply)) throw new BackendError('the hashing worker returned no bytes');
        return moves ? reply.bytes : bytes;
      },
      hexDigest: async () => {
        const reply = await this.request({ op: 'digest', file });
        if (!('hex' in reply)) throw new BackendError('the hashing worker returned no digest');
        return reply.hex;
      },
    };
    if (this.readsFiles) {
      hash.updateFromFile = async (path: string, offset: number, length: number) => {
        const reply = await this.request({ op: 'updateFile', file, path, offset, length });
        if (!('hashed' in reply) || reply.hashed !== length) throw new BackendError(`the hashing worker did not hash ${path}`);
      };
    }
    return hash;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new BackendError('the hashing worker was closed'));
    await this.port.terminate();
  }

  private post(message: HashRequest, transfer: ArrayBuffer[]): void {
    if (this.failure) throw this.failure;
    this.port.post(message, transfer);
  }

  private request(message: HashRequest, transfer: ArrayBuffer[] = []): Promise<HashReply> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = this.nextSeq++;
    return new Promise<HashReply>((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      this.port.post({ ...message, seq }, transfer);
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

/** A copy in a buffer of its own. (Not `bytes.slice()`: on a Node Buffer that is a view, and moving it would empty the original.) */
function copyOf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}
