/**
 * The UI's handle on the analysis worker: a comlink proxy dressed as AnalysisApi. An abort becomes a
 * `cancel(callId)` message, `onProgress` crosses as a comlink proxy and failures are rebuilt as the named error
 * classes (worker-client.ts).
 */
import * as Comlink from 'comlink';
import type { AnalysisApi, AnalysisRequest, AnalysisWorkerEndpoint, FolderDescriptor, PromptMessage } from '../protocol/analysis-api';
import type { LongCallOptions } from '../base/progress';
import { onFirstUse, unwrapEnvelope, WorkerCalls } from './worker-client';

export class AnalysisClient implements AnalysisApi {
  private readonly calls: WorkerCalls;
  constructor(private readonly remote: Comlink.Remote<AnalysisWorkerEndpoint>) {
    this.calls = new WorkerCalls((callId) => remote.cancel(callId));
  }

  openModel(folder: FolderDescriptor, options?: LongCallOptions) {
    return this.calls.run(options, (callId, onProgress) => this.remote.openModel(callId, folder, onProgress));
  }
  analyze(request: AnalysisRequest, options?: LongCallOptions) {
    return this.calls.run(options, (callId, onProgress) => this.remote.analyze(callId, request, onProgress));
  }
  async probeBackend() {
    return unwrapEnvelope(await this.remote.probeBackend());
  }
  async renderTemplate(messages: PromptMessage[], position: number) {
    return unwrapEnvelope(await this.remote.renderTemplate(messages, position));
  }
}

/** One analysis worker per page: it holds the open model and its sessions. */
export const analysisClient = onFirstUse(() => {
  const worker = new Worker(new URL('../../workers/analysis.worker.ts', import.meta.url), { type: 'module', name: 'analysis' });
  return new AnalysisClient(Comlink.wrap<AnalysisWorkerEndpoint>(worker));
});
