/**
 * The UI's handle on the export worker: a comlink proxy dressed as ExportApi (the same interface the in-thread
 * ExportService implements). An abort becomes `cancel(callId)`; failures are rebuilt as the named error classes
 * (worker-client.ts).
 */
import * as Comlink from 'comlink';
import type { ExportApi, ExportRequest, ExportWorkerEndpoint } from '../protocol/export-api';
import type { LongCallOptions } from '../base/progress';
import { onFirstUse, unwrapEnvelope, WorkerCalls } from './worker-client';

export class ExportClient implements ExportApi {
  private readonly calls: WorkerCalls;
  constructor(private readonly remote: Comlink.Remote<ExportWorkerEndpoint>) {
    this.calls = new WorkerCalls((callId) => remote.cancel(callId));
  }

  exportModel(request: ExportRequest, options?: LongCallOptions) {
    return this.calls.run(options, (callId, onProgress) => this.remote.exportModel(callId, request, onProgress));
  }

  async capabilities() {
    return unwrapEnvelope(await this.remote.capabilities());
  }
}

/** One export worker per page, started on first use. */
export const exportClient = onFirstUse(() => {
  const worker = new Worker(new URL('../../workers/export.worker.ts', import.meta.url), { type: 'module', name: 'export' });
  return new ExportClient(Comlink.wrap<ExportWorkerEndpoint>(worker));
});
