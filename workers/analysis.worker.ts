/**
 * The analysis worker: AnalysisService behind comlink. Calls carry an id so the UI can cancel one (an
 * AbortSignal cannot cross postMessage); failures travel as SerializedError envelopes and are rebuilt as the
 * named classes on the UI side.
 */
import * as Comlink from 'comlink';
import type { AnalysisWorkerEndpoint, Envelope } from '../src/protocol/analysis-api';
import { serializeError } from '../src/protocol/errors';
import type { Progress } from '../src/protocol/progress';
import { createWebSessionFactory, probeWebGpu } from '../src/platform/ort-web';
import { AnalysisService } from './analysis-service';

const service = new AnalysisService({ sessionFactory: createWebSessionFactory, probeWebGpu });
const controllers = new Map<number, AbortController>();

async function envelope<T>(callId: number | null, run: (signal: AbortSignal) => Promise<T>): Promise<Envelope<T>> {
  const controller = new AbortController();
  if (callId !== null) controllers.set(callId, controller);
  try {
    return { ok: true, value: await run(controller.signal) };
  } catch (error) {
    if (controller.signal.aborted) return { ok: false, error: { name: 'CancelledError', message: 'Cancelled.' } };
    return { ok: false, error: serializeError(error) };
  } finally {
    if (callId !== null) controllers.delete(callId);
  }
}

const endpoint: AnalysisWorkerEndpoint = {
  openModel: (callId, folder, onProgress?: (event: Progress) => void) =>
    envelope(callId, (signal) => service.openModel(folder, { signal, onProgress })),
  analyze: (callId, request, onProgress?: (event: Progress) => void) =>
    envelope(callId, (signal) => service.analyze(request, { signal, onProgress })),
  probeBackend: () => envelope(null, () => service.probeBackend()),
  cancel: (callId) => controllers.get(callId)?.abort(),
};

Comlink.expose(endpoint);
