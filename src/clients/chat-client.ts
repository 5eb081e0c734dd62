/**
 * The UI's handle on the chat worker: a comlink proxy dressed as ChatApi. An abort becomes `cancel(callId)`
 * (the worker's generation stops at its next token); `onToken`/`onProgress` cross as comlink proxies; failures
 * are rebuilt as the named error classes.
 */
import * as Comlink from 'comlink';
import type { Envelope } from '../protocol/analysis-api';
import type { ChatApi, ChatCallOptions, ChatModelsSpec, ChatRequest, ChatWorkerEndpoint, EvaluationRequest, SweepRequest } from '../protocol/chat-api';
import { CancelledError, deserializeError } from '../protocol/errors';
import type { LongCallOptions, Progress } from '../protocol/progress';

function unwrap<T>(envelope: Envelope<T>): T {
  if (envelope.ok) return envelope.value;
  throw deserializeError(envelope.error);
}

export class ChatClient implements ChatApi {
  private nextCallId = 1;
  constructor(private readonly remote: Comlink.Remote<ChatWorkerEndpoint>) {}

  private async call<T>(options: LongCallOptions | undefined, invoke: (callId: number, onProgress?: (event: Progress) => void) => Promise<Envelope<T>>): Promise<T> {
    const callId = this.nextCallId++;
    const signal = options?.signal;
    if (signal?.aborted) throw new CancelledError('Stopped.');
    const onAbort = () => void this.remote.cancel(callId);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const onProgress = options?.onProgress ? Comlink.proxy(options.onProgress) : undefined;
      return unwrap(await invoke(callId, onProgress));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  prepare(models: ChatModelsSpec, options?: LongCallOptions) {
    return this.call(options, (callId, onProgress) => this.remote.prepare(callId, models, onProgress));
  }
  generate(request: ChatRequest, options?: ChatCallOptions) {
    const onToken = options?.onToken ? Comlink.proxy(options.onToken) : undefined;
    return this.call(options, (callId, onProgress) => this.remote.generate(callId, request, onToken, onProgress));
  }
  evaluate(request: EvaluationRequest, options?: LongCallOptions) {
    return this.call(options, (callId, onProgress) => this.remote.evaluate(callId, request, onProgress));
  }
  sweep(request: SweepRequest, options?: LongCallOptions) {
    return this.call(options, (callId, onProgress) => this.remote.sweep(callId, request, onProgress));
  }
  async release() {
    unwrap(await this.remote.release());
  }
}

let shared: ChatClient | null = null;

/** One chat worker per page: it holds the base and the ablated model, shared by chat, evaluation and sweep. */
export function chatClient(): ChatClient {
  if (!shared) {
    const worker = new Worker(new URL('../../workers/chat.worker.ts', import.meta.url), { type: 'module', name: 'chat' });
    shared = new ChatClient(Comlink.wrap<ChatWorkerEndpoint>(worker));
  }
  return shared;
}
