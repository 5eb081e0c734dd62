/**
 * SHA-256 of the output files on a thread of their own, for `abliterate ablate`: the shared hashing client
 * (src/platform/hash-worker-client.ts) over a Node worker thread running node:crypto (./hash-worker.mjs).
 *
 * Why a thread: on the main thread node:crypto's hash (~1.7 GB/s here) was the largest single cost of an
 * ablation — a profile of a 1 GB model showed the main thread hashing for 0.67 s and idle for 1.1 s while it
 * waited on writes and kernels it could not overlap. Into a file the output made as a kernel copy, the engine
 * asks this thread to hash each range where it lies (updateFromFile): no byte passes to it, since buffers moved
 * to it and back kept the main thread's garbage collector busy (0.26–0.42 s of a 1 GB run). Files written from
 * scratch (model card, manifest, ONNX graphs) still hand their bytes over.
 */
import { Worker } from 'node:worker_threads';
import { HashWorkerClient, type HashReply } from '../platform/hash-worker-client';
import type { IncrementalHash } from '../engine/output-writer';

const WORKER_ENTRY = new URL('./hash-worker.mjs', import.meta.url);

export class HashThread {
  private readonly client: HashWorkerClient;

  constructor() {
    const worker = new Worker(WORKER_ENTRY);
    let closing = false;
    this.client = new HashWorkerClient(
      {
        post: (message, transfer) => worker.postMessage(message, transfer),
        onReply: (handler) => worker.on('message', (reply: HashReply) => handler(reply)),
        onFailure: (handler) => {
          worker.on('error', handler);
          worker.on('exit', (code) => {
            if (!closing) handler(new Error(`exited (code ${code})`));
          });
        },
        terminate: async () => {
          closing = true;
          await worker.terminate();
        },
      },
      true,
    );
  }

  createHash(): IncrementalHash {
    return this.client.createHash();
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
