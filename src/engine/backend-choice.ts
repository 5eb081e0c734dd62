/**
 * Which compute backend the browser export runs its orthogonalization on when the user leaves it on 'auto':
 * a one-off self-test and timing of the WebGPU kernels against their CPU twins on a sample edit.
 */
import { encodeFromFloat64 } from '../core/dtypes';
import { acquireGpuDevice } from '../gpu/device';
import { GpuOrthogonalizeBackend } from './gpu-orthogonalize-backend';
import { cpuOrthogonalizeBackend, type OrthogonalizeBackend } from './orthogonalize-backend';

/** The sample the 'auto' choice times and compares: a [512, 2048] BF16 out-projection (2 MiB). */
const SAMPLE_ROWS = 512;
const SAMPLE_COLS = 2048;

export interface BackendDecision {
  backend: 'cpu' | 'webgpu';
  /** Whether a WebGPU device could be had at all. */
  webgpu: boolean;
  reason: string;
}

/**
 * What 'auto' runs on: the export must be byte-identical to `abliterate ablate`, which computes on the CPU. The
 * WebGPU kernels compute in double-f32 (~48 bits against f64's 53) and land on the same roundings unless a
 * value lies within ~2^-46 of a boundary, and only where the shader compiler keeps that arithmetic. So WebGPU is
 * chosen only when (1) the compiler keeps it (probe), (2) a sample edit comes out byte-identical to the CPU's,
 * and (3) it is faster on that sample; otherwise the CPU, with the reason. On this project's machines WebGPU is
 * SwiftShader and loses (3).
 */
export async function decideAutoBackend(): Promise<BackendDecision> {
  let gpu: GpuOrthogonalizeBackend;
  try {
    gpu = new GpuOrthogonalizeBackend(await acquireGpuDevice());
  } catch (error) {
    return { backend: 'cpu', webgpu: false, reason: `CPU: ${(error as Error).message}` };
  }
  try {
    if (!(await gpu.preservesDoubleFloat())) {
      return { backend: 'cpu', webgpu: true, reason: `CPU: this GPU's shader compiler (${gpu.name}) simplifies away the double-f32 arithmetic, so its results could differ from abliterate ablate.` };
    }
    const weight = encodeFromFloat64(Float64Array.from({ length: SAMPLE_ROWS * SAMPLE_COLS }, (_, index) => 0.05 * Math.sin(index * 0.618)), 'BF16'); // [rows, cols]
    const direction = Float32Array.from({ length: SAMPLE_ROWS }, (_, index) => Math.cos(index * 0.7) / Math.sqrt(SAMPLE_ROWS / 2)); // [rows]
    const edit = async (backend: OrthogonalizeBackend) => {
      const started = performance.now();
      const projection = await backend.projectColumns(weight, 'BF16', 0, SAMPLE_ROWS, SAMPLE_COLS, direction);
      const edited = await backend.applyColumns(weight, 'BF16', 0, SAMPLE_ROWS, SAMPLE_COLS, direction, projection, 1);
      return { edited, milliseconds: performance.now() - started };
    };
    await edit(gpu); // compiles the pipelines
    const onGpu = await edit(gpu);
    const onCpu = await edit(cpuOrthogonalizeBackend);
    const rate = (milliseconds: number) => `${(weight.byteLength / 2 ** 20 / (milliseconds / 1000)).toFixed(1)} MiB/s`;
    const identical = onGpu.edited.length === onCpu.edited.length && onGpu.edited.every((byte, index) => byte === onCpu.edited[index]);
    if (!identical) return { backend: 'cpu', webgpu: true, reason: `CPU: a sample edit on ${gpu.name} differed from the CPU reference.` };
    if (onGpu.milliseconds < onCpu.milliseconds) {
      return { backend: 'webgpu', webgpu: true, reason: `WebGPU (${gpu.name}): ${rate(onGpu.milliseconds)} against the CPU's ${rate(onCpu.milliseconds)}, and its sample edit matched the CPU reference byte for byte.` };
    }
    return { backend: 'cpu', webgpu: true, reason: `CPU: ${rate(onCpu.milliseconds)} against ${rate(onGpu.milliseconds)} on ${gpu.name}.` };
  } catch (error) {
    return { backend: 'cpu', webgpu: true, reason: `CPU: WebGPU failed its self-test (${(error as Error).message}).` };
  } finally {
    gpu.destroy();
  }
}

/** The backend an export asks for: 'auto' takes the measured decision, the others are forced. */
export type OrthogonalizeBackendChoice = 'auto' | 'cpu' | 'webgpu';

/**
 * Opens the backend for one export; `release` frees its GPU device. `note` says, for the export's notes, why
 * 'auto' chose what it chose, or that a forced WebGPU may differ from the CPU by a rounding step.
 */
export async function openOrthogonalizeBackend(
  choice: OrthogonalizeBackendChoice,
  decide: () => Promise<BackendDecision>,
): Promise<{ backend: OrthogonalizeBackend; release: () => void; note: string | null }> {
  let note: string | null = null;
  if (choice === 'auto') {
    const decision = await decide();
    note = `Backend chosen automatically: ${decision.reason}`;
    if (decision.backend === 'cpu') return { backend: cpuOrthogonalizeBackend, release: () => undefined, note };
  } else if (choice === 'cpu') {
    return { backend: cpuOrthogonalizeBackend, release: () => undefined, note };
  }
  const gpu = new GpuOrthogonalizeBackend(await acquireGpuDevice());
  if (choice === 'webgpu' && !(await gpu.preservesDoubleFloat())) {
    note = `${gpu.name} simplifies the kernels' double-f32 arithmetic away: the output may differ from abliterate ablate by a rounding step.`;
  }
  return { backend: gpu, release: () => gpu.destroy(), note };
}
