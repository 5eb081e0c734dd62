/**
 * The UI's handle on the export worker: a comlink proxy dressed as ExportApi (the same interface the in-thread
 * ExportService implements). An abort becomes `cancel(callId)`; failures are rebuilt as the named error classes.
 */
import * as Comlink from 'comlink';
import { CancelledError, deserializeError } from '../protocol/errors';
import type { ExportApi, ExportEnvelope, ExportRequest, ExportWorkerEndpoint } from '../protocol/export-api';
import type { LongCallOptions } from '../protocol/progress';

function unwrap<T>(envelope: ExportEnvelope<T>): T {
  if (envelope.ok) return envelope.value;
  throw deserializeError(envelope.error);
}

export class ExportClient implements ExportApi {
  private nextCallId = 1;
  constructor(private readonly remote: Comlink.Remote<ExportWorkerEndpoint>) {}

  async exportModel(request: ExportRequest, options?: LongCallOptions) {
    const callId = this.nextCallId++;
    const signal = options?.signal;
    if (signal?.aborted) throw new CancelledError();
    const onAbort = () => void this.remote.cancel(callId);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const onProgress = options?.onProgress ? Comlink.proxy(options.onProgress) : undefined;
      return unwrap(await this.remote.exportModel(callId, request, onProgress));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async capabilities() {
    return unwrap(await this.remote.capabilities());
  }
}

let shared: ExportClient | null = null;

/** One export worker per page, started on first use. */
export function exportClient(): ExportClient {
  if (!shared) {
    const worker = new Worker(new URL('../../workers/export.worker.ts', import.meta.url), { type: 'module', name: 'export' });
    shared = new ExportClient(Comlink.wrap<ExportWorkerEndpoint>(worker));
  }
  return shared;
}
