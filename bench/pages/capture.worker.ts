/**
 * Runs one capture bench task on onnxruntime-web (wasm or webgpu) through the workbench's own session factory
 * (src/platform/ort-web.ts), so the figures are those of the app's capture path.
 */
import { createWebSessionFactory, ortEnvFor } from '../../src/platform/ort-web';
import { deserializeTensor, runCaptureLoop, type SerializedCaptureTask } from '../capture-loop';

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

self.onmessage = async (event: MessageEvent<SerializedCaptureTask>) => {
  const task = event.data;
  try {
    // Each build has its own runtime (src/platform/ort-web.ts); the thread count is set on the one the task uses.
    const build = task.asyncify ? 'asyncify' : 'plain';
    const env = ortEnvFor(task.backend, build);
    if (task.wasmThreads) env.wasm.numThreads = task.wasmThreads;
    const threads = env.wasm.numThreads ?? 1;
    const result = await runCaptureLoop(createWebSessionFactory(task.backend, build), {
      modelName: task.modelName,
      plainGraph: await fetchBytes(task.plainGraphUrl),
      captureGraph: await fetchBytes(task.captureGraphUrl),
      engineGraph: await fetchBytes(task.engineGraphUrl),
      activationNames: task.activationNames,
      batches: task.batches.map((batch) => ({
        tokens: batch.tokens,
        feeds: Object.fromEntries(Object.entries(batch.feeds).map(([name, tensor]) => [name, deserializeTensor(tensor)])),
      })),
      rounds: task.rounds,
    });
    self.postMessage({ ok: true, result: { ...result, backend: `${result.backend}${self.crossOriginIsolated ? `, ${threads} thread${threads === 1 ? '' : 's'}` : ' (not cross-origin isolated: 1 thread)'}` } });
  } catch (error) {
    self.postMessage({ ok: false, error: (error as Error).message ?? String(error) });
  }
};
