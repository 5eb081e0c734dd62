/**
 * What every client of a comlink worker does around its calls: number each long call so an abort can become a
 * `cancel(callId)` message (an AbortSignal cannot cross postMessage), pass `onProgress` as a comlink proxy,
 * rebuild failures from their SerializedError envelopes as the named error classes, and start the worker once
 * per page on first use.
 */
import * as Comlink from 'comlink';
import type { Envelope } from '../protocol/envelope';
import { CancelledError, deserializeError } from '../base/errors';
import type { LongCallOptions, Progress } from '../base/progress';

export function unwrapEnvelope<T>(envelope: Envelope<T>): T {
  if (envelope.ok) return envelope.value;
  throw deserializeError(envelope.error);
}

export class WorkerCalls {
  private nextCallId = 1;
  /** `cancelledMessage`: the CancelledError's message when the signal has already fired before the call. */
  constructor(
    private readonly cancel: (callId: number) => unknown,
    private readonly cancelledMessage?: string,
  ) {}

  async run<T>(options: LongCallOptions | undefined, invoke: (callId: number, onProgress?: (event: Progress) => void) => Promise<Envelope<T>>): Promise<T> {
    const callId = this.nextCallId++;
    const signal = options?.signal;
    if (signal?.aborted) throw new CancelledError(this.cancelledMessage);
    const onAbort = () => void this.cancel(callId);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const onProgress = options?.onProgress ? Comlink.proxy(options.onProgress) : undefined;
      return unwrapEnvelope(await invoke(callId, onProgress));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * A getter that creates its value on first call and returns the same one after: one worker per page.
 * The worker itself must be started where Vite can see `new Worker(new URL('…', import.meta.url))` spelled out,
 * so the caller's `create` does that.
 */
export function onFirstUse<T>(create: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= create());
}
