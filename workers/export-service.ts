/**
 * The export engine in-thread (ExportApi): open the model folder, resolve the current ablation (recipe and
 * direction rows) exactly as `abliterate ablate` does, validate everything (planAblation) before creating any output, stream
 * writeAblation into the chosen browser output folder, verify before commit, and hand back what to download.
 * The worker (workers/export.worker.ts) wraps this class; tests may run it on the page directly.
 */
import { Sha256 } from '../src/core/sha256';
import { parseRecipe, RecipeError, type Recipe } from '../src/core/recipe';
import { encodeDirectionsSafetensors, parseDirectionFile } from '../src/formats/direction-file';
import { readModelConfig, type ModelConfig } from '../src/formats/hf-folder';
import type { AblationSelection } from '../src/engine/ablation-selection';
import type { DirectionProvenance } from '../src/engine/ablate-manifest';
import { recipeFromFile, shorthandFromFile } from '../src/engine/selection-from-file';
import type { AblationSpec } from '../src/protocol/ablation-spec';
import { decideAutoBackend, openOrthogonalizeBackend, type BackendDecision } from '../src/engine/backend-choice';
import { MANIFEST_FILE, planAblation, writeAblation } from '../src/engine/ablate';
import { MODEL_CARD_FILE } from '../src/engine/model-card';
import { openFolderDescriptor } from '../src/platform/browser-folder';
import { DirectoryOutputFolder, ZipOutputFolder, type OutputReader } from '../src/platform/browser-output';
import { openExportStaging, discardExportStaging } from '../src/platform/browser-staging';
import { InvalidInputError } from '../src/base/errors';
import { checkDownloadNames, type ExportApi, type ExportCapabilities, type ExportedFile, type ExportRequest, type ExportResult } from '../src/protocol/export-api';
import type { LongCallOptions } from '../src/base/progress';
import { hashSource, verifyExport, type VerificationSummary } from './export-verify';
import type { ByteSource } from '../src/ports/bytes';
import { createWasmSha256 } from '../src/platform/wasm-sha256';
import { startBrowserHashWorker } from '../src/platform/browser-hash-worker';

/**
 * The selection the current ablation describes, exactly as `abliterate ablate` builds it from the same directions
 * file and flags (or recipe): the analysis' rows become the `directions.safetensors` that `abliterate analyze`
 * writes (and the report download saves), so `--direction directions.safetensors --layer N` (or `--recipe`) gives
 * the very same edit and manifest.
 */
function selectionFor(spec: AblationSpec, config: ModelConfig): { selection: AblationSelection; provenance: DirectionProvenance } {
  const file = spec.directions.kind === 'analysis' ? 'directions.safetensors' : spec.directions.file;
  const bytes = spec.directions.kind === 'analysis' ? encodeDirectionsSafetensors(spec.directions.rows) : spec.directions.bytes;
  const parsed = parseDirectionFile(file, bytes);
  const sha256 = new Sha256().update(bytes).hexDigest();
  if (spec.shorthand) {
    const { row, scale, targets, layers } = spec.shorthand;
    const chosen = shorthandFromFile(parsed, config, { layer: row ?? undefined, scale, targets, ...(layers ? { layers } : {}) });
    return { selection: chosen.selection, provenance: { file, sha256, layer: chosen.row } };
  }
  let recipe: Recipe;
  try {
    recipe = parseRecipe(spec.recipe, config.numLayers);
  } catch (error) {
    if (error instanceof RecipeError) throw new InvalidInputError(`the current recipe: ${error.message}`, { field: error.field });
    throw error;
  }
  const chosen = recipeFromFile(parsed, config, recipe, 'the current recipe');
  return { selection: chosen.selection, provenance: { file, sha256, layer: chosen.row } };
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
    const { selection, provenance } = selectionFor(request.ablation, config);
    // Everything is validated before an output exists.
    // The recipe the manifest records names the direction's row, as the CLI's does for the same file and layer.
    const plan = await planAblation(folder, selection, provenance.layer, { onnx: request.onnx === true });
    const outputName = `${folder.name}-abliterated`;
    if (request.destination.kind === 'downloads') {
      checkDownloadNames([...new Set([...plan.shards.map((shard) => shard.path), ...plan.otherFiles.map((file) => file.path), MODEL_CARD_FILE, MANIFEST_FILE])]);
    }
    let verification: VerificationSummary = { filesChecked: 0, bytesChecked: 0, headersChecked: 0 };
    // Hashing in a worker of its own where workers can be started (this class may also run on a page in tests).
    const hashing = typeof Worker !== 'undefined' ? startBrowserHashWorker() : null;
    const createHash = hashing ? () => hashing.createHash() : createWasmSha256;
    // Each file of a folder output is read back and hashed once closed, one at a time, while the next is written;
    // verification before commit then compares those digests (and checks headers and the file list).
    const early = new Map<string, Promise<string>>();
    let earlyChain: Promise<unknown> = Promise.resolve();
    const hashWhenClosed = (path: string, read: () => Promise<ByteSource>) => {
      const digest = earlyChain.then(async () => hashSource(await read(), createHash, options.signal));
      digest.catch(() => undefined); // reported by verification
      earlyChain = digest.catch(() => undefined);
      early.set(path, digest);
    };
    const verify = async (reader: OutputReader) => {
      verification = await verifyExport(reader, plan, { ...options, createHash, early });
    };
    const destination = request.destination;
    const { backend, release, note } = await openOrthogonalizeBackend(request.backend, () => this.decide());
    const staging = destination.kind === 'folder' ? null : await openExportStaging();
    const output =
      destination.kind === 'folder'
        ? await DirectoryOutputFolder.create(destination.parent, outputName, { verify, lastFile: MANIFEST_FILE, onFileClosed: hashWhenClosed })
        : destination.kind === 'downloads'
          ? await DirectoryOutputFolder.create(staging!, outputName, { verify, lastFile: MANIFEST_FILE, onFileClosed: hashWhenClosed })
          : await ZipOutputFolder.create(staging!, outputName, { verify });
    let manifest;
    try {
      manifest = await writeAblation(plan, output, {
        ...selection,
        backend,
        maxChunkBytes: request.maxChunkBytes,
        directionSource: provenance,
        createHash, // each byte hashed once, as it is written
        results: request.results ?? null,
        signal: options.signal,
        onProgress: options.onProgress,
      });
    } catch (error) {
      if (staging) await discardExportStaging(staging);
      throw error;
    } finally {
      release();
      await hashing?.close();
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
