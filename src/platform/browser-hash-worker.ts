/**
 * The browser side of the hashing worker (src/platform/hash-worker-client.ts): SHA-256 in a Web Worker of its
 * own (workers/hash.worker.ts, hash-wasm), started by the export worker, so an export's hashing — every byte as
 * it is written, and again in the verification re-read — runs beside reading, the edit and writing instead of
 * between them.
 */
import { HashWorkerClient, type HashReply } from './hash-worker-client';

export function startBrowserHashWorker(): HashWorkerClient {
  const worker = new Worker(new URL('../../workers/hash.worker.ts', import.meta.url), { type: 'module', name: 'hash' });
  return new HashWorkerClient(
    {
      post: (message, transfer) => worker.postMessage(message, transfer),
      onReply: (handler) => worker.addEventListener('message', (event: MessageEvent<HashReply>) => handler(event.data)),
      onFailure: (handler) => {
        worker.addEventListener('error', (event) => handler(new Error(event.message || 'the worker could not start')));
        worker.addEventListener('messageerror', () => handler(new Error('a message could not be read')));
      },
      terminate: async () => worker.terminate(),
    },
    false,
  );
}
