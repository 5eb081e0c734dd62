/**
 * The chat worker: ChatService behind comlink, on onnxruntime-web through transformers.js (both import
 * `onnxruntime-web/webgpu`, so configureOrtWeb points the one runtime at the bundled wasm files before any
 * model loads). Calls carry an id so the UI can stop one (an AbortSignal cannot cross postMessage); failures
 * travel as SerializedError envelopes.
 */
import * as Comlink from 'comlink';
import { env } from '@huggingface/transformers';
import { openFolderDescriptor } from '../src/platform/browser-folder';
import { configureOrtWeb } from '../src/platform/ort-web';
import type { Envelope } from '../src/protocol/analysis-api';
import type { ChatTokenEvent, ChatWorkerEndpoint } from '../src/protocol/chat-api';
import { serializeError } from '../src/protocol/errors';
import type { Progress } from '../src/protocol/progress';
import { ChatService } from './chat-service';
import { yieldBeforeEveryRun } from './chat-yield';

configureOrtWeb();
yieldBeforeEveryRun();
// Model files come from the folder through transformers-files' cache, never from the hub or the browser cache.
env.allowRemoteModels = false;
env.useBrowserCache = false;

const service = new ChatService({
  openFolder: openFolderDescriptor,
  device: (backend) => backend,
});
const controllers = new Map<number, AbortController>();

async function envelope<T>(callId: number | null, run: (signal: AbortSignal) => Promise<T>): Promise<Envelope<T>> {
  const controller = new AbortController();
  if (callId !== null) controllers.set(callId, controller);
  try {
    return { ok: true, value: await run(controller.signal) };
  } catch (error) {
    if (controller.signal.aborted) return { ok: false, error: { name: 'CancelledError', message: 'Stopped.' } };
    return { ok: false, error: serializeError(error) };
  } finally {
    if (callId !== null) controllers.delete(callId);
  }
}

const endpoint: ChatWorkerEndpoint = {
  prepare: (callId, models, onProgress?: (event: Progress) => void) => envelope(callId, (signal) => service.prepare(models, { signal, onProgress })),
  generate: (callId, request, onToken?: (event: ChatTokenEvent) => void, onProgress?: (event: Progress) => void) =>
    envelope(callId, (signal) => service.generate(request, { signal, onToken, onProgress })),
  evaluate: (callId, request, onProgress?: (event: Progress) => void) => envelope(callId, (signal) => service.evaluate(request, { signal, onProgress })),
  sweep: (callId, request, onProgress?: (event: Progress) => void) => envelope(callId, (signal) => service.sweep(request, { signal, onProgress })),
  release: () => envelope(null, () => service.release()),
  cancel: (callId) => controllers.get(callId)?.abort(),
};

Comlink.expose(endpoint);
