/**
 * The call bookkeeping every comlink worker endpoint does: each long call gets an AbortController under the id
 * the client chose, so a `cancel(callId)` message can abort it (an AbortSignal cannot cross postMessage), and
 * every result or failure goes back as an envelope (failures as SerializedError, rebuilt as named classes on
 * the UI side, src/clients/worker-client.ts).
 */
import type { Envelope } from '../src/protocol/envelope';
import { serializeError } from '../src/base/errors';

export interface WorkerCallRunner {
  /** Runs one call; `callId` null for calls that cannot be cancelled. */
  envelope<T>(callId: number | null, run: (signal: AbortSignal) => Promise<T>): Promise<Envelope<T>>;
  /** Aborts the call with this id, if it is still running. */
  cancel(callId: number): void;
}

/**
 * `cancelledMessage`: when given, a call whose signal fired reports CancelledError with this message, whatever
 * the service threw while stopping; when absent, the service's own error is reported.
 */
export function createWorkerCallRunner(cancelledMessage?: string): WorkerCallRunner {
  const controllers = new Map<number, AbortController>();
  return {
    async envelope<T>(callId: number | null, run: (signal: AbortSignal) => Promise<T>): Promise<Envelope<T>> {
      const controller = new AbortController();
      if (callId !== null) controllers.set(callId, controller);
      try {
        return { ok: true, value: await run(controller.signal) };
      } catch (error) {
        if (cancelledMessage !== undefined && controller.signal.aborted) return { ok: false, error: { name: 'CancelledError', message: cancelledMessage } };
        return { ok: false, error: serializeError(error) };
      } finally {
        if (callId !== null) controllers.delete(callId);
      }
    },
    cancel(callId: number) {
      controllers.get(callId)?.abort();
    },
  };
}
