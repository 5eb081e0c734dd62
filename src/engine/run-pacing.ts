/**
 * Turns of the event loop inside long loops of ONNX runs. `nextTask` and `createYielder` serve any loop (the
 * capture's batches). The pacing below is a step awaited before every forward pass of the models LanguageModel
 * loads, and only theirs: the chat worker sets one (workers/chat-yield.ts) so that its event loop turns between decoding steps. The step is installed on
 * each loaded model's own ONNX sessions, never on onnxruntime's InferenceSession class, so no other session in
 * the process is touched.
 */
import { BackendError } from '../base/errors';

type RunStep = () => Promise<void>;
interface RunnableSession {
  run: (...args: never[]) => Promise<unknown>;
}

let step: RunStep | null = null;

/**
 * Resolves after the tasks already queued (a MessageChannel message: no setTimeout clamping). onnxruntime-web's
 * wasm runs settle as microtasks, so a loop of them never hands a worker back to its event loop: awaiting this
 * lets a queued `cancel` message in.
 */
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

/** How long a loop may keep the event loop before `createYielder` lets queued messages in. */
const YIELD_INTERVAL_MS = 25;

/**
 * A step for long loops (capture batches, tokenizing thousands of prompts): awaits `nextTask` when the last turn
 * of the event loop is more than YIELD_INTERVAL_MS ago, so Cancel lands within a batch while a loop of fast
 * passes pays almost nothing.
 */
export function createYielder(intervalMs = YIELD_INTERVAL_MS): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < intervalMs) return;
    await nextTask();
    last = performance.now();
  };
}

/** Sets (or, with null, removes) the step for models loaded from now on. */
export function setRunPacing(next: RunStep | null): void {
  step = next;
}

/**
 * Wraps the `run` of every session of a transformers.js model (its `sessions` record) so the pacing step runs
 * first. Without a step this does nothing; with one, a model that exposes no sessions is an error rather than a
 * silently unpaced chat.
 */
export function paceModelSessions(model: object): void {
  const pacing = step;
  if (!pacing) return;
  const sessions = Object.values((model as { sessions?: Record<string, unknown> }).sessions ?? {}) as Partial<RunnableSession>[];
  if (sessions.length === 0 || sessions.some((session) => typeof session?.run !== 'function')) {
    throw new BackendError('transformers.js no longer exposes its ONNX sessions as `model.sessions`; the chat cannot pace its decoding steps.');
  }
  for (const session of sessions as RunnableSession[]) {
    const run = session.run.bind(session);
    session.run = async (...args: never[]) => {
      await pacing();
      return run(...args);
    };
  }
}
