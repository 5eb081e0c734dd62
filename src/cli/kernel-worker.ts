/**
 * Body of one kernel worker thread of the Node pool (src/cli/kernel-pool.ts): runs each request it is sent
 * through the engine's kernel list, in place (the thread owns the chunk it received, moved or copied), and moves
 * the result back.
 */
import { parentPort } from 'node:worker_threads';
import { resultBuffers, runKernel } from '../engine/kernel-ops';
import { serializeError } from '../base/errors';
import type { KernelMessage, KernelResponse } from './kernel-pool';

const port = parentPort;
if (!port) throw new Error('kernel-worker runs only as a worker thread');
port.on('message', (request: KernelMessage) => {
  let response: KernelResponse;
  try {
    const result = runKernel(request, true);
    response = { id: request.id, result };
    port.postMessage(response, resultBuffers(result));
  } catch (error) {
    response = { id: request.id, error: serializeError(error) };
    port.postMessage(response);
  }
});
