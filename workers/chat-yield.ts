/**
 * Keeps the chat worker responsive while it generates. onnxruntime-web's wasm runs settle as microtasks, so
 * transformers.js's decoding loop never returns to the worker's event loop: a Stop (a `cancel` message) or the
 * other column's request would wait until the whole reply is done. Letting one task pass before every run
 * lets queued messages in: Stop lands within a token, and the base and ablated replies interleave step by step.
 * This is the browser side of the platform boundary (onnxruntime-node already runs off the event loop).
 */
import { ort } from '../src/platform/ort-web';

let installed = false;

/** Resolves after the tasks already queued (a MessageChannel message: no setTimeout clamping). */
function nextTask(): Promise<void> {
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
  if (installed) return;
  installed = true;
  // The factory object is the session class at runtime; its typing only exposes `create`.
  const prototype = (ort.InferenceSession as unknown as { prototype: { run: (...args: unknown[]) => Promise<unknown> } }).prototype;
  const run = prototype.run;
  prototype.run = async function (this: unknown, ...args: unknown[]) {
    await nextTask();
    return run.apply(this, args);
  };
}
