/**
 * Keeps the chat worker responsive while it generates. onnxruntime-web's wasm runs settle as microtasks, so
 * transformers.js's decoding loop never returns to the worker's event loop: a Stop (a `cancel` message) or the
 * other column's request would wait until the whole reply is done. Letting one task pass before every run of
 * the chat's own models (src/engine/run-pacing.ts) lets queued messages in: Stop lands within a token, and the
 * base and ablated replies interleave step by step. (onnxruntime-node already runs off the event loop.)
 */
import { nextTask, setRunPacing } from '../src/engine/run-pacing';

export function yieldBeforeEveryRun(): void {
  setRunPacing(nextTask);
}
