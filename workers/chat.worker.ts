/**
 * The chat worker: ChatService behind comlink, on onnxruntime-web through transformers.js (both import
 * `onnxruntime-web/webgpu`, so configureOrtWeb points the one runtime at the bundled wasm files before any
 * model loads). Calls carry an id so the UI can stop one (an AbortSignal cannot cross postMessage); failures
 * travel as SerializedError envelopes.
 */
import * as Comlink from 'comlink';
import { env } from '@huggingface/transformers';
import { openFolderDescriptor } from '../src/platform/browser-folder';
import { configureOrtWeb, webMemoryLimits } from '../src/platform/ort-web';
import type { ChatTokenEvent, ChatWorkerEndpoint } from '../src/protocol/chat-api';
import type { Progress } from '../src/base/progress';
import { ChatService } from './chat-service';
import { yieldBeforeEveryRun } from './chat-yield';
import { createWorkerCallRunner } from './expose-service';

configureOrtWeb();
yieldBeforeEveryRun();
// Model files come from the folder through transformers-files' cache, never from the hub or the browser cache.
env.allowRemoteModels = false;
env.useBrowserCache = false;

const service = new ChatService({
  openFolder: openFolderDescriptor,
  device: (backend) => backend,
  memoryLimits: webMemoryLimits,
});
const calls = createWorkerCallRunner('Stopped.');

const endpoint: ChatWorkerEndpoint = {
  prepare: (callId, models, onProgress?: (event: Progress) => void) => calls.envelope(callId, (signal) => service.prepare(models, { signal, onProgress })),
  generate: (callId, request, onToken?: (event: ChatTokenEvent) => void, onProgress?: (event: Progress) => void) =>
    calls.envelope(callId, (signal) => service.generate(request, { signal, onToken, onProgress })),
  evaluate: (callId, request, onProgress?: (event: Progress) => void) => calls.envelope(callId, (signal) => service.evaluate(request, { signal, onProgress })),
  sweep: (callId, request, onProgress?: (event: Progress) => void) => calls.envelope(callId, (signal) => service.sweep(request, { signal, onProgress })),
  preflight: (callId, request, onProgress?: (event: Progress) => void) => calls.envelope(callId, (signal) => service.preflight(request, { signal, onProgress })),
  compareExport: (callId, request, onProgress?: (event: Progress) => void) => calls.envelope(callId, (signal) => service.compareExport(request, { signal, onProgress })),
  release: () => calls.envelope(null, () => service.release()),
  cancel: (callId) => calls.cancel(callId),
};

Comlink.expose(endpoint);
