/**
 * Capture bench page: hands each task to a dedicated worker (where the workbench runs onnxruntime-web too) and
 * returns the worker's timings to bench/capture.ts.
 */
import type { CaptureLoopResult, SerializedCaptureTask } from '../capture-loop';

type Reply = { ok: true; result: CaptureLoopResult } | { ok: false; error: string };

function runCaptureTask(task: SerializedCaptureTask): Promise<CaptureLoopResult> {
  // A fresh worker per task: each backend starts from a clean ORT instance, as in a fresh workbench tab.
  const worker = new Worker(new URL('./capture.worker.ts', import.meta.url), { type: 'module' });
  return new Promise<CaptureLoopResult>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<Reply>) => {
      worker.terminate();
      if (event.data.ok) resolve(event.data.result);
      else reject(new Error(event.data.error));
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(`capture worker failed: ${event.message}`));
    };
    worker.postMessage(task);
  });
}

Object.assign(globalThis, { runCaptureTask, crossOriginIsolatedPage: self.crossOriginIsolated, benchReady: true });
