/**
 * WebGPU orthogonalization kernels (src/gpu via GpuOrthogonalizeBackend) vs their CPU twin
 * (src/core/orthogonalize via cpuOrthogonalizeBackend) in the same page, on the same BF16 chunks:
 *   columns  both passes of W ← W − α r(rᵀW) on an MLP-down-shaped chunk [dModel, intermediate]
 *   rows     E ← E − α (E r) rᵀ on an embedding chunk [rows, dModel]
 * GB/s counts the chunk's bytes once per edit. Every GPU result is checked against the CPU result
 * (≤ 1 BF16 ulp per element, the kernel tests' bound) before it counts.
 */
import { acquireGpuDevice } from '../../src/gpu/device';
import { GpuOrthogonalizeBackend } from '../../src/engine/gpu-orthogonalize-backend';
import { cpuOrthogonalizeBackend, type OrthogonalizeBackend } from '../../src/engine/orthogonalize-backend';

export interface KernelTask {
  dModel: number;
  intermediate: number;
  embeddingRows: number;
  rounds: number;
}

export interface KernelTiming {
  edit: 'columns' | 'rows';
  shape: [number, number];
  bytes: number;
  cpuSeconds: number[];
  gpuSeconds: number[];
  elementsBeyondOneUlp: number;
}

export interface KernelResult {
  adapter: string;
  timings: KernelTiming[];
}

/** BF16 values with weight-like magnitudes from a seeded xorshift (the model generator's recipe). */
function randomBf16(count: number, seed: number): Uint8Array {
  const halves = new Uint16Array(count);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    halves[i] = ((x >>> 16) & 0x8000) | ((120 + ((x >>> 29) & 3)) << 7) | (x & 0x7f);
  }
  return new Uint8Array(halves.buffer);
}

function unitDirection(length: number): Float32Array {
  const values = Float64Array.from({ length }, (_, i) => Math.sin(i * 0.37) + 0.1);
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
}

/** Elements whose BF16 bit patterns differ by more than one (same sign: adjacent patterns are adjacent values). */
function beyondOneUlp(a: Uint8Array, b: Uint8Array): number {
  const x = new Uint16Array(a.buffer, a.byteOffset, a.byteLength / 2);
  const y = new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  let count = 0;
  for (let i = 0; i < x.length; i++) {
    const sameSign = (x[i] & 0x8000) === (y[i] & 0x8000);
    if (!sameSign ? (x[i] & 0x7fff) + (y[i] & 0x7fff) > 1 : Math.abs(x[i] - y[i]) > 1) count++;
  }
  return count;
}

async function columnsEdit(backend: OrthogonalizeBackend, chunk: Uint8Array, rows: number, cols: number, direction: Float32Array): Promise<Uint8Array> {
  const projection = await backend.projectColumns(chunk, 'BF16', 0, rows, cols, direction);
  return backend.applyColumns(chunk, 'BF16', 0, rows, cols, direction, projection, 1);
}

async function timed(body: () => Promise<Uint8Array>): Promise<{ seconds: number; output: Uint8Array }> {
  const started = performance.now();
  const output = await body();
  return { seconds: (performance.now() - started) / 1000, output };
}

async function runKernelTask(task: KernelTask): Promise<KernelResult> {
  const context = await acquireGpuDevice();
  const gpu = new GpuOrthogonalizeBackend(context);
  try {
    const timings: KernelTiming[] = [];
    const direction = unitDirection(task.dModel);
    const cases: { edit: KernelTiming['edit']; rows: number; cols: number; run: (backend: OrthogonalizeBackend, chunk: Uint8Array) => Promise<Uint8Array> }[] = [
      { edit: 'columns', rows: task.dModel, cols: task.intermediate, run: (backend, chunk) => columnsEdit(backend, chunk, task.dModel, task.intermediate, direction) },
      { edit: 'rows', rows: task.embeddingRows, cols: task.dModel, run: (backend, chunk) => backend.applyRows(chunk, 'BF16', task.embeddingRows, task.dModel, direction, 1) },
    ];
    for (const [index, testCase] of cases.entries()) {
      const chunk = randomBf16(testCase.rows * testCase.cols, 1234 + index);
      const timing: KernelTiming = { edit: testCase.edit, shape: [testCase.rows, testCase.cols], bytes: chunk.byteLength, cpuSeconds: [], gpuSeconds: [], elementsBeyondOneUlp: 0 };
      // Warm-up: shader compilation and pipeline creation are not throughput.
      const reference = await testCase.run(cpuOrthogonalizeBackend, chunk);
      timing.elementsBeyondOneUlp = beyondOneUlp(reference, await testCase.run(gpu, chunk));
      for (let round = 0; round < task.rounds; round++) {
        const order = round % 2 === 0 ? ['cpu', 'gpu'] : ['gpu', 'cpu'];
        for (const which of order) {
          const { seconds, output } = await timed(() => testCase.run(which === 'cpu' ? cpuOrthogonalizeBackend : gpu, chunk));
          if (which === 'gpu') timing.elementsBeyondOneUlp = Math.max(timing.elementsBeyondOneUlp, beyondOneUlp(reference, output));
          (which === 'cpu' ? timing.cpuSeconds : timing.gpuSeconds).push(seconds);
        }
      }
      timings.push(timing);
    }
    return { adapter: gpu.name, timings };
  } finally {
    gpu.destroy();
  }
}

Object.assign(globalThis, { runKernelTask, benchReady: true });
