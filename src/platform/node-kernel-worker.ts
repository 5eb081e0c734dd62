/**
 * Body of one kernel worker thread of the Node pool (src/platform/node-kernel-pool.ts): runs core's fast kernels on
 * the chunks it is sent and transfers each result back (the result is a fresh buffer, so nothing is copied back).
 */
import { parentPort } from 'node:worker_threads';
import {
  applyColumnsNormPreservingFast,
  applyRowsNormPreservingFast,
  orthogonalizeColumnsNormPreservingFast,
  projectColumnsWithNormsFast,
} from '../core/norm-preserving-fast';
import { applyBiasFast, applyColumnsFast, applyRowsFast, projectColumnsFast } from '../core/orthogonalize-fast';
import { serializeError } from '../base/errors';
import type { KernelRequest, KernelResponse } from './node-kernel-pool';

function run(request: KernelRequest): Uint8Array | Float64Array | [Float64Array, Float64Array] {
  const { chunk, dtype, rowStart, rows, cols, direction, scale } = request;
  switch (request.op) {
    case 'projectColumns':
      return projectColumnsFast(chunk, dtype, rowStart, rows, cols, direction);
    case 'applyColumns':
      return applyColumnsFast(chunk, dtype, rowStart, rows, cols, direction, request.projection!, scale);
    case 'orthogonalizeColumns':
      return applyColumnsFast(chunk, dtype, 0, rows, cols, direction, projectColumnsFast(chunk, dtype, 0, rows, cols, direction), scale);
    case 'applyRows':
      return applyRowsFast(chunk, dtype, rows, cols, direction, scale);
    case 'applyBias':
      return applyBiasFast(chunk, dtype, direction, scale);
    case 'projectColumnsWithNorms': {
      const { projection, squaredNorms } = projectColumnsWithNormsFast(chunk, dtype, rowStart, rows, cols, direction);
      return [projection, squaredNorms];
    }
    case 'applyColumnsNormPreserving':
      return applyColumnsNormPreservingFast(chunk, dtype, rowStart, rows, cols, direction, request.projection!, request.factors!, scale);
    case 'applyRowsNormPreserving':
      return applyRowsNormPreservingFast(chunk, dtype, rows, cols, direction, scale);
    case 'orthogonalizeColumnsNormPreserving':
      return orthogonalizeColumnsNormPreservingFast(chunk, dtype, rows, cols, direction, scale);
  }
}

const port = parentPort;
if (!port) throw new Error('node-kernel-worker runs only as a worker thread');
port.on('message', (request: KernelRequest) => {
  let response: KernelResponse;
  try {
    const result = run(request);
    response = { id: request.id, result };
    const buffers = (Array.isArray(result) ? result : [result]).map((array) => array.buffer as ArrayBuffer);
    port.postMessage(response, buffers);
  } catch (error) {
    response = { id: request.id, error: serializeError(error) };
    port.postMessage(response);
  }
});
