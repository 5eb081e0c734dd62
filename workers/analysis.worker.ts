/**
 * The analysis worker: AnalysisService behind comlink. Calls carry an id so the UI can cancel one (an
 * AbortSignal cannot cross postMessage); failures travel as SerializedError envelopes and are rebuilt as the
 * named classes on the UI side.
 */
import * as Comlink from 'comlink';
import type { AnalysisWorkerEndpoint } from '../src/protocol/analysis-api';
import type { Progress } from '../src/base/progress';
import { createWebSessionFactory, probeWebGpu, webMemoryLimits } from '../src/platform/ort-web';
import { AnalysisService } from './analysis-service';
import { createWorkerCallRunner } from './expose-service';

const service = new AnalysisService({ sessionFactory: createWebSessionFactory, probeWebGpu, memoryLimits: webMemoryLimits });
const calls = createWorkerCallRunner('Cancelled.');

const endpoint: AnalysisWorkerEndpoint = {
  openModel: (callId, folder, onProgress?: (event: Progress) => void) =>
    calls.envelope(callId, (signal) => service.openModel(folder, { signal, onProgress })),
  analyze: (callId, request, onProgress?: (event: Progress) => void) =>
    calls.envelope(callId, (signal) => service.analyze(request, { signal, onProgress })),
  probeBackend: () => calls.envelope(null, () => service.probeBackend()),
  renderTemplate: (messages, position) => calls.envelope(null, () => service.renderTemplate(messages, position)),
  cancel: (callId) => calls.cancel(callId),
};

Comlink.expose(endpoint);
