/**
 * The export engine in-thread (ExportApi): open the model folder, resolve the direction exactly as
 * `abliterate ablate` does, validate everything (planAblation) before creating any output, stream B's
 * writeAblation into the chosen browser output folder, verify before commit, and hand back what to download.
 * The worker (workers/export.worker.ts) wraps this class; tests may run it on the page directly.
 */
import { encodeFromFloat64 } from '../src/core/dtypes';
import { Sha256 } from '../src/core/sha256';
import { encodeDirectionsSafetensors, parseDirectionFile, selectDirection } from '../src/formats/direction-file';
import { readModelConfig } from '../src/formats/hf-folder';
import { acquireGpuDevice } from '../src/gpu/device';
import { GpuOrthogonalizeBackend } from '../src/engine/gpu-orthogonalize-backend';
import { cpuOrthogonalizeBackend, type OrthogonalizeBackend } from '../src/engine/orthogonalize-backend';
import { MANIFEST_FILE, planAblation, writeAblation } from '../src/engine/ablate';
import { openFolderDescriptor } from '../src/platform/browser-folder';
import { DirectoryOutputFolder, ZIP_MAX_BYTES, ZipOutputFolder, type OutputReader } from '../src/platform/browser-output';
import { openExportStaging } from '../src/platform/browser-staging';
import { InvalidInputError } from '../src/protocol/errors';
import { checkDownloadNames, type ExportApi, type ExportCapabilities, type ExportDirection, type ExportedFile, type ExportRequest, type ExportResult } from '../src/protocol/export-api';
import type { LongCallOptions } from '../src/protocol/progress';
import { verifyExport, type VerificationSummary } from './export-verify';

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

interface ResolvedDirection {
  direction: Float32Array; // [dModel], unit
  provenance: { file: string; sha256: string; layer: number | null };
}

function resolveDirection(source: ExportDirection, hiddenSize: number, numLayers: number): ResolvedDirection {
  if (source.kind === 'analysis') {
    // The same file `abliterate analyze` writes (and the report download saves): `--direction
    // directions.safetensors --layer N` then gives the very same unit vector and manifest.
    const bytes = encodeDirectionsSafetensors(source.directions);
    const parsed = parseDirectionFile('directions.safetensors', bytes);
    return {
      direction: selectDirection(parsed, { layer: source.layer, hiddenSize, numLayers }),
      provenance: { file: 'directions.safetensors', sha256: new Sha256().update(bytes).hexDigest(), layer: source.layer },
    };
  }
  const parsed = parseDirectionFile(source.file, source.bytes);
  const layer = parsed.perLayer ? (source.layer ?? undefined) : undefined;
  return {
    direction: selectDirection(parsed, { layer, hiddenSize }),
    provenance: { file: source.file, sha256: new Sha256().update(source.bytes).hexDigest(), layer: layer ?? null },
  };
}

export class ExportService implements ExportApi {
  private autoDecision: Promise<BackendDecision> | null = null;

  /** Measured once per worker, on first need. */
  private decide(): Promise<BackendDecision> {
    this.autoDecision ??= decideAutoBackend();
    return this.autoDecision;
  }

  async capabilities(): Promise<ExportCapabilities> {
    const decision = await this.decide();
    return { webgpu: decision.webgpu, defaultBackend: decision.backend, reason: decision.reason };
  }

  private async backendFor(choice: ExportRequest['backend']): Promise<{ backend: OrthogonalizeBackend; release: () => void; note: string | null }> {
    let note: string | null = null;
    if (choice === 'auto') {
      const decision = await this.decide();
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

  async exportModel(request: ExportRequest, options: LongCallOptions = {}): Promise<ExportResult> {
    const started = performance.now();
    const folder = await openFolderDescriptor(request.folder);
    const config = await readModelConfig(folder);
    const { direction, provenance } = resolveDirection(request.direction, config.hiddenSize, config.numLayers);
    const selection = { direction, scale: request.scale, targets: request.targets, layers: request.layers ?? undefined };
    // Everything is validated before an output exists.
    const plan = await planAblation(folder, selection);
    const outputName = `${folder.name}-abliterated`;
    if (request.destination.kind === 'downloads') {
      checkDownloadNames([...plan.shards.map((shard) => shard.path), ...plan.otherFiles.map((file) => file.path), MANIFEST_FILE]);
    }
    if (request.destination.kind === 'zip') {
      const total = plan.shards.reduce((sum, shard) => sum + shard.header.fileSize, 0) + plan.otherFiles.reduce((sum, file) => sum + file.source.size, 0);
      if (total > ZIP_MAX_BYTES) {
        throw new InvalidInputError(`${folder.name}: ${(total / 2 ** 30).toFixed(2)} GiB is more than a zip without ZIP64 can hold (4 GiB); export to a folder or as downloads instead.`);
      }
    }
    let verification: VerificationSummary = { filesChecked: 0, bytesChecked: 0, headersChecked: 0 };
    const verify = async (reader: OutputReader) => {
      verification = await verifyExport(reader, plan, options);
    };
    const destination = request.destination;
    const { backend, release, note } = await this.backendFor(request.backend);
    const output =
      destination.kind === 'folder'
        ? await DirectoryOutputFolder.create(destination.parent, outputName, { verify, lastFile: MANIFEST_FILE })
        : destination.kind === 'downloads'
          ? await DirectoryOutputFolder.create(await openExportStaging(), outputName, { verify, lastFile: MANIFEST_FILE })
          : await ZipOutputFolder.create(await openExportStaging(), outputName, { verify });
    let manifest;
    try {
      manifest = await writeAblation(plan, output, {
        ...selection,
        backend,
        maxChunkBytes: request.maxChunkBytes,
        directionSource: provenance,
        signal: options.signal,
        onProgress: options.onProgress,
      });
    } finally {
      release();
    }
    const files: ExportedFile[] = Object.entries(manifest.files).map(([path, record]) => ({ path, bytes: record.bytes, sha256: record.sha256, file: null }));
    let deliver: ExportedFile[] = [];
    if (output instanceof ZipOutputFolder) {
      const archive = await output.file();
      deliver = [{ path: output.name, bytes: archive.size, sha256: '', file: archive }];
    } else if (destination.kind === 'downloads') {
      deliver = (await output.files()).map(({ path, file }) => ({ path, bytes: file.size, sha256: manifest.files[path]?.sha256 ?? '', file }));
    }
    return {
      outputName: output.name,
      destination: destination.kind,
      deliver,
      files,
      editedTensors: manifest.editedTensors.length,
      backend: backend.name,
      seconds: (performance.now() - started) / 1000,
      verification,
      notes: [...manifest.notes, ...(note ? [note] : [])],
    };
  }
}
