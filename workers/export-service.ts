/**
 * The export engine in-thread (ExportApi): open the model folder, resolve the direction exactly as
 * `abliterate ablate` does, validate everything (planAblation) before creating any output, stream
 * writeAblation into the chosen browser output folder, verify before commit, and hand back what to download.
 * The worker (workers/export.worker.ts) wraps this class; tests may run it on the page directly.
 */
import { Sha256 } from '../src/core/sha256';
import { encodeDirectionsSafetensors, parseDirectionFile, selectDirection } from '../src/formats/direction-file';
import { readModelConfig } from '../src/formats/hf-folder';
import { decideAutoBackend, openOrthogonalizeBackend, type BackendDecision } from '../src/engine/backend-choice';
import { MANIFEST_FILE, planAblation, writeAblation } from '../src/engine/ablate';
import { MODEL_CARD_FILE } from '../src/engine/model-card';
import { openFolderDescriptor } from '../src/platform/browser-folder';
import { DirectoryOutputFolder, ZipOutputFolder, type OutputReader } from '../src/platform/browser-output';
import { openExportStaging, discardExportStaging } from '../src/platform/browser-staging';
import { checkDownloadNames, type ExportApi, type ExportCapabilities, type ExportDirection, type ExportedFile, type ExportRequest, type ExportResult } from '../src/protocol/export-api';
import type { LongCallOptions } from '../src/base/progress';
import { verifyExport, type VerificationSummary } from './export-verify';

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

  async exportModel(request: ExportRequest, options: LongCallOptions = {}): Promise<ExportResult> {
    const started = performance.now();
    const folder = await openFolderDescriptor(request.folder);
    const config = await readModelConfig(folder);
    const { direction, provenance } = resolveDirection(request.direction, config.hiddenSize, config.numLayers);
    const selection = { direction, scale: request.scale, targets: request.targets, layers: request.layers ?? undefined };
    // Everything is validated before an output exists.
    // The recipe the manifest records names the direction's row, as the CLI's does for the same file and layer.
    const plan = await planAblation(folder, selection, provenance.layer ?? undefined, { onnx: request.onnx === true });
    const outputName = `${folder.name}-abliterated`;
    if (request.destination.kind === 'downloads') {
      checkDownloadNames([...new Set([...plan.shards.map((shard) => shard.path), ...plan.otherFiles.map((file) => file.path), MODEL_CARD_FILE, MANIFEST_FILE])]);
    }
    let verification: VerificationSummary = { filesChecked: 0, bytesChecked: 0, headersChecked: 0 };
    const verify = async (reader: OutputReader) => {
      verification = await verifyExport(reader, plan, options);
    };
    const destination = request.destination;
    const { backend, release, note } = await openOrthogonalizeBackend(request.backend, () => this.decide());
    const staging = destination.kind === 'folder' ? null : await openExportStaging();
    const output =
      destination.kind === 'folder'
        ? await DirectoryOutputFolder.create(destination.parent, outputName, { verify, lastFile: MANIFEST_FILE })
        : destination.kind === 'downloads'
          ? await DirectoryOutputFolder.create(staging!, outputName, { verify, lastFile: MANIFEST_FILE })
          : await ZipOutputFolder.create(staging!, outputName, { verify });
    let manifest;
    try {
      manifest = await writeAblation(plan, output, {
        ...selection,
        backend,
        maxChunkBytes: request.maxChunkBytes,
        directionSource: provenance,
        results: request.results ?? null,
        signal: options.signal,
        onProgress: options.onProgress,
      });
    } catch (error) {
      if (staging) await discardExportStaging(staging);
      throw error;
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
      onnx: manifest.onnx,
      backend: backend.name,
      seconds: (performance.now() - started) / 1000,
      verification,
      notes: [...manifest.notes, ...(note ? [note] : [])],
    };
  }
}
