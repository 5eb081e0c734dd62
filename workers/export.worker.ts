/**
 * The export worker: ExportService behind comlink. Calls carry an id so the UI can cancel one (an AbortSignal
 * cannot cross postMessage); failures travel as serialized errors and are rebuilt as named classes on the UI side.
 */
import * as Comlink from 'comlink';
import type { ExportRequest, ExportWorkerEndpoint } from '../src/protocol/export-api';
import type { Progress } from '../src/base/progress';
import { ExportService } from './export-service';
import { createWorkerCallRunner } from './expose-service';

const service = new ExportService();
// No cancelledMessage: a stopped export reports what the service threw while cleaning up.
const calls = createWorkerCallRunner();

const endpoint: ExportWorkerEndpoint = {
  exportModel(callId: number, request: ExportRequest, onProgress?: (event: Progress) => void) {
    return calls.envelope(callId, (signal) => service.exportModel(request, { signal, onProgress: onProgress ? (event) => void onProgress(event) : undefined }));
  },
  capabilities() {
    return calls.envelope(null, () => service.capabilities());
  },
  cancel(callId: number) {
    calls.cancel(callId);
  },
};

Comlink.expose(endpoint);
