/**
 * The export worker: ExportService behind comlink. Calls carry an id so the UI can cancel one (an AbortSignal
 * cannot cross postMessage); failures travel as serialized errors and are rebuilt as named classes on the UI side.
 */
import * as Comlink from 'comlink';
import { serializeError } from '../src/protocol/errors';
import type { ExportEnvelope, ExportRequest, ExportWorkerEndpoint } from '../src/protocol/export-api';
import type { Progress } from '../src/protocol/progress';
import { ExportService } from './export-service';

const service = new ExportService();
const running = new Map<number, AbortController>();

async function envelope<T>(work: () => Promise<T>): Promise<ExportEnvelope<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, error: serializeError(error) };
  }
}

const endpoint: ExportWorkerEndpoint = {
  async exportModel(callId: number, request: ExportRequest, onProgress?: (event: Progress) => void) {
    const controller = new AbortController();
    running.set(callId, controller);
    try {
      return await envelope(() => service.exportModel(request, { signal: controller.signal, onProgress: onProgress ? (event) => void onProgress(event) : undefined }));
    } finally {
      running.delete(callId);
    }
  },
  capabilities() {
    return envelope(() => service.capabilities());
  },
  cancel(callId: number) {
    running.get(callId)?.abort();
  },
};

Comlink.expose(endpoint);
