/**
 * The UI's handle on the chat worker: a comlink proxy dressed as ChatApi. An abort becomes `cancel(callId)`
 * (the worker's generation stops at its next token); `onToken`/`onProgress` cross as comlink proxies; failures
 * are rebuilt as the named error classes (the plumbing shared with the other clients is in worker-client.ts).
 */
import * as Comlink from 'comlink';
import type { ChatApi, ChatCallOptions, ChatModelsSpec, ChatRequest, ChatWorkerEndpoint, EvaluationRequest, ExportComparisonRequest, PreflightRequest, SweepRequest } from '../protocol/chat-api';
import type { LongCallOptions } from '../base/progress';
import { onFirstUse, unwrapEnvelope, WorkerCalls } from './worker-client';

export class ChatClient implements ChatApi {
  private readonly calls: WorkerCalls;

  constructor(private readonly remote: Comlink.Remote<ChatWorkerEndpoint>) {
    this.calls = new WorkerCalls((callId) => remote.cancel(callId), 'Stopped.');
  }

  prepare(models: ChatModelsSpec, options?: LongCallOptions) {
    return this.calls.run(options, (callId, onProgress) => this.remote.prepare(callId, models, onProgress));
  }
  generate(request: ChatRequest, options?: ChatCallOptions) {
    const onToken = options?.onToken ? Comlink.proxy(options.onToken) : undefined;
    return this.calls.run(options, (callId, onProgress) => this.remote.generate(callId, request, onToken, onProgress));
  }
  evaluate(request: EvaluationRequest, options?: LongCallOptions) {
    return this.calls.run(options, (callId, onProgress) => this.remote.evaluate(callId, request, onProgress));
  }
  sweep(request: SweepRequest, options?: LongCallOptions) {
    return this.calls.run(options, (callId, onProgress) => this.remote.sweep(callId, request, onProgress));
  }
  preflight(request: PreflightRequest, options?: LongCallOptions) {
    return this.calls.run(options, (callId, onProgress) => this.remote.preflight(callId, request, onProgress));
  }
  compareExport(request: ExportComparisonRequest, options?: LongCallOptions) {
    return this.calls.run(options, (callId, onProgress) => this.remote.compareExport(callId, request, onProgress));
  }
  async release() {
    unwrapEnvelope(await this.remote.release());
  }
}

/** One chat worker per page: it holds the base and the ablated model, shared by chat, evaluation and sweep. */
export const chatClient = onFirstUse(() => {
  const worker = new Worker(new URL('../../workers/chat.worker.ts', import.meta.url), { type: 'module', name: 'chat' });
  return new ChatClient(Comlink.wrap<ChatWorkerEndpoint>(worker));
});
