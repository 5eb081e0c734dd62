/**
 * The UI's handle on the analysis worker: a comlink proxy dressed as AnalysisApi. `signal` cannot cross
 * postMessage, so an abort becomes a `cancel(callId)` message; `onProgress` crosses as a comlink proxy;
 * failures come back as SerializedError envelopes and are rebuilt as the named error classes here.
 */
import * as Comlink from 'comlink';
import type { AnalysisApi, AnalysisRequest, AnalysisWorkerEndpoint, Envelope, FolderDescriptor } from '../protocol/analysis-api';
import { CancelledError, deserializeError } from '../protocol/errors';
import type { LongCallOptions, Progress } from '../protocol/progress';

function unwrap<T>(envelope: Envelope<T>): T {
  if (envelope.ok) return envelope.value;
  throw deserializeError(envelope.error);
}

export class AnalysisClient implements AnalysisApi {
  private nextCallId = 1;
  constructor(private readonly remote: Comlink.Remote<AnalysisWorkerEndpoint>) {}

  private async call<T>(
    options: LongCallOptions | undefined,
    invoke: (callId: number, onProgress?: (event: Progress) => void) => Promise<Envelope<T>>,
  ): Promise<T> {
    const callId = this.nextCallId++;
    const signal = options?.signal;
    if (signal?.aborted) throw new CancelledError();
    const onAbort = () => void this.remote.cancel(callId);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const onProgress = options?.onProgress ? Comlink.proxy(options.onProgress) : undefined;
      return unwrap(await invoke(callId, onProgress));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  openModel(folder: FolderDescriptor, options?: LongCallOptions) {
    return this.call(options, (callId, onProgress) => this.remote.openModel(callId, folder, onProgress));
  }
  analyze(request: AnalysisRequest, options?: LongCallOptions) {
    return this.call(options, (callId, onProgress) => this.remote.analyze(callId, request, onProgress));
  }
  async probeBackend() {
    return unwrap(await this.remote.probeBackend());
  }
}

let shared: AnalysisClient | null = null;

/** One analysis worker per page: it holds the open model and its sessions. */
export function analysisClient(): AnalysisClient {
  if (!shared) {
    const worker = new Worker(new URL('../../workers/analysis.worker.ts', import.meta.url), { type: 'module', name: 'analysis' });
    shared = new AnalysisClient(Comlink.wrap<AnalysisWorkerEndpoint>(worker));
  }
  return shared;
}
