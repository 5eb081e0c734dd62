/**
 * Keeps the chat worker responsive while it generates. onnxruntime-web's wasm runs settle as microtasks, so
 * transformers.js's decoding loop never returns to the worker's event loop: a Stop (a `cancel` message) or the
 * other column's request would wait until the whole reply is done. Letting one task pass before every run of
 * the chat's own models (src/engine/run-pacing.ts) lets queued messages in: Stop lands within a token, and the
 * base and ablated replies interleave step by step. (onnxruntime-node already runs off the event loop.)
 */
import { setRunPacing } from '../src/engine/run-pacing';

/** Resolves after the tasks already queued (a MessageChannel message: no setTimeout clamping). */
export function nextTask(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

export function yieldBeforeEveryRun(): void {
  setRunPacing(nextTask);
}
