/**
 * Streaming weight orthogonalization of a safetensors model folder (DESIGN.md "Weight orthogonalization").
 *
 * Shard by shard, tensor by tensor, big tensors in row chunks of at most `maxChunkBytes`: memory stays bounded
 * by a few chunks whatever the model's size. Each output shard starts with the input header copied byte for byte
 * (same dtypes, shapes, offsets, __metadata__); untouched tensors and every other file are copied byte for byte.
 * Every output file is hashed while it is written; the manifest `abliteration.json` lists the hashes.
 * The output only becomes final on `output.commit()`; any error or cancel calls `output.abort()`.
 */
import { FLOAT_DTYPE_BYTES } from '../core/dtypes';
import { Sha256 } from '../core/sha256';
import { readExactly } from '../formats/safetensors';
import type { ByteSink, ByteSource } from '../ports/bytes';
import type { ModelFolder, OutputFolder } from '../ports/folder';
import { BackendError, InvalidFileError, throwIfAborted } from '../base/errors';
import { ProgressReporter, type LongCallOptions } from '../base/progress';
import { MANIFEST_FILE, planAblation, type AblationPlan, type AblationSelection, type TensorEdit } from './ablate-plan';
import { buildManifest, type AblationManifest, type DirectionProvenance, type OutputFileRecord } from './ablate-manifest';
import { cpuOrthogonalizeBackend, normPreservingCalls, type OrthogonalizeBackend } from './orthogonalize-backend';
import { normPreservingFactors, squaredLength } from '../core/norm-preserving';

export type { AblationTarget } from '../model/tensor-roles';
export type { AblationManifest } from './ablate-manifest';
export { planAblation, MANIFEST_FILE, type AblationPlan } from './ablate-plan';

/** 32 MiB: big enough that per-chunk overheads vanish, small enough that a few chunks in flight stay far below the RSS budget. */
export const DEFAULT_MAX_CHUNK_BYTES = 32 * 1024 * 1024;

export type AblateOptions = LongCallOptions & AblationSelection & AblateRunOptions;

export interface AblateRunOptions {
  backend?: OrthogonalizeBackend;
  maxChunkBytes?: number;
  /** Where the direction came from, recorded in the manifest. */
  directionSource?: DirectionProvenance;
  /**
   * SHA-256 of the output files; defaults to the pure-TypeScript one (browser and Node alike). Node callers may
   * pass node:crypto's, which is an order of magnitude faster on gigabytes.
   */
  createHash?: () => IncrementalHash;
}

export interface IncrementalHash {
  update(bytes: Uint8Array): unknown;
  hexDigest(): string;
}

/** Plans (validating everything) and writes the ablated folder; aborts the output on any failure. */
export async function ablateModel(input: ModelFolder, output: OutputFolder, options: AblateOptions): Promise<AblationManifest> {
  let plan: AblationPlan;
  try {
    plan = await planAblation(input, options, options.directionSource?.layer ?? undefined);
  } catch (error) {
    await output.abort();
    throw error;
  }
  return writeAblation(plan, output, options);
}

/** Writes a validated plan into `output` and commits it. */
export async function writeAblation(plan: AblationPlan, output: OutputFolder, options: AblateOptions): Promise<AblationManifest> {
  const backend = options.backend ?? cpuOrthogonalizeBackend;
  const maxChunkBytes = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes < 16) throw new RangeError(`maxChunkBytes ${maxChunkBytes} is too small`);
  const createHash = options.createHash ?? (() => new Sha256());
  const progress = new ProgressReporter('ablate', options.onProgress);
  const meter = new ByteMeter(progress, totalWork(plan));
  const files: Record<string, OutputFileRecord> = {};
  try {
    for (const shard of plan.shards) {
      throwIfAborted(options.signal);
      files[shard.path] = await writeFile(output, shard.path, createHash, async (sink) => {
        await sink.write(shard.header.rawHeader);
        meter.advance(shard.header.rawHeader.byteLength, shard.path);
        for (const tensor of shard.header.tensors) {
          const edit = plan.edits.get(tensor.name);
          const begin = shard.header.dataStart + tensor.dataOffsets[0];
          const end = shard.header.dataStart + tensor.dataOffsets[1];
          if (edit) await writeEditedTensor(shard.source, begin, edit, sink, backend, options, maxChunkBytes, meter);
          else await copyRange(shard.source, begin, end, sink, maxChunkBytes, options.signal, meter);
        }
      });
      if (files[shard.path].bytes !== shard.header.fileSize) {
        throw new InvalidFileError(shard.source.name, `wrote ${files[shard.path].bytes} bytes but the shard is ${shard.header.fileSize}`);
      }
    }
    for (const file of plan.otherFiles) {
      throwIfAborted(options.signal);
      files[file.path] = await writeFile(output, file.path, createHash, (sink) =>
        copyRange(file.source, 0, file.source.size, sink, maxChunkBytes, options.signal, meter),
      );
    }
    const manifest = buildManifest(plan, options, files);
    await writeFile(output, MANIFEST_FILE, createHash, (sink) => sink.write(new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`)));
    throwIfAborted(options.signal);
    await output.commit();
    progress.done();
    return manifest;
  } catch (error) {
    await output.abort().catch(() => undefined);
    throw error;
  }
}

/** Bytes read plus bytes written, so the column edit's extra read pass moves the bar too. */
function totalWork(plan: AblationPlan): number {
  let total = 0;
  for (const shard of plan.shards) total += shard.header.fileSize;
  for (const edit of plan.edits.values()) {
    if (edit.orientation === 'columns') total += edit.tensor.dataOffsets[1] - edit.tensor.dataOffsets[0];
  }
  for (const file of plan.otherFiles) total += file.source.size;
  return total;
}

class ByteMeter {
  private done = 0;
  constructor(
    private readonly progress: ProgressReporter,
    private readonly total: number,
  ) {}
  advance(bytes: number, file: string): void {
    this.done += bytes;
    this.progress.report(this.total > 0 ? this.done / this.total : 1, file, { bytes: this.done, totalBytes: this.total });
  }
}

/** Creates one output file, lets `body` write it through a hashing sink, and closes it. */
async function writeFile(
  output: OutputFolder,
  path: string,
  createHash: () => IncrementalHash,
  body: (sink: ByteSink) => Promise<void>,
): Promise<OutputFileRecord> {
  const sink = await output.createFile(path);
  const hash = createHash();
  let bytes = 0;
  const hashing: ByteSink = {
    name: path, // progress shows folder-relative names

    async write(chunk) {
      hash.update(chunk);
      bytes += chunk.byteLength;
      await sink.write(chunk);
    },
    close: () => sink.close(),
    abort: () => sink.abort(),
  };
  try {
    await body(hashing);
    await sink.close();
  } catch (error) {
    await sink.abort().catch(() => undefined);
    throw error;
  }
  return { sha256: hash.hexDigest(), bytes };
}

async function copyRange(source: ByteSource, begin: number, end: number, sink: ByteSink, maxChunkBytes: number, signal: AbortSignal | undefined, meter: ByteMeter): Promise<void> {
  for (let offset = begin; offset < end; offset += maxChunkBytes) {
    throwIfAborted(signal);
    const length = Math.min(maxChunkBytes, end - offset);
    await sink.write(await readExactly(source, offset, length));
    meter.advance(length, sink.name);
  }
}

/** A backend that returned the wrong number of bytes would shift every later tensor: stop instead. */
function checkedSize(edited: Uint8Array, chunk: Uint8Array, backend: OrthogonalizeBackend, edit: TensorEdit): Uint8Array {
  if (edited.byteLength !== chunk.byteLength) {
    throw new BackendError(`${backend.name} backend returned ${edited.byteLength} bytes for a ${chunk.byteLength}-byte chunk of ${edit.tensor.name}`);
  }
  return edited;
}

/** Rows per chunk: as many whole rows as fit, at least one. */
function rowsPerChunk(cols: number, elementBytes: number, maxChunkBytes: number): number {
  return Math.max(1, Math.floor(maxChunkBytes / (cols * elementBytes)));
}

async function writeEditedTensor(
  source: ByteSource,
  begin: number,
  edit: TensorEdit,
  sink: ByteSink,
  backend: OrthogonalizeBackend,
  options: AblateOptions,
  maxChunkBytes: number,
  meter: ByteMeter,
): Promise<void> {
  const { dtype, rows, cols, batches, direction, weight } = edit; // direction [dModel], weight w ≠ 0
  const elementBytes = FLOAT_DTYPE_BYTES[dtype];
  const rowBytes = cols * elementBytes;
  const chunkRows = rowsPerChunk(cols, elementBytes, maxChunkBytes);
  const normPreserving = edit.method === 'norm-preserving' ? normPreservingCalls(backend) : null;
  if (edit.orientation === 'rows') {
    for (let rowStart = 0; rowStart < rows; rowStart += chunkRows) {
      throwIfAborted(options.signal);
      const count = Math.min(chunkRows, rows - rowStart);
      const chunk = await readExactly(source, begin + rowStart * rowBytes, count * rowBytes); // [count, dModel]
      const edited = normPreserving
        ? await normPreserving.applyRowsNormPreserving(chunk, dtype, count, cols, direction, weight)
        : edit.match.isBias && rows === 1
          ? await backend.applyBias(chunk, dtype, direction, weight)
          : await backend.applyRows(chunk, dtype, count, cols, direction, weight);
      await sink.write(checkedSize(edited, chunk, backend, edit));
      meter.advance(chunk.byteLength, sink.name);
    }
    return;
  }
  // Columns: per matrix [dModel, cols], pass 1 accumulates p = rᵀW over row chunks (and, norm-preserving, the
  // column norms in the same read), pass 2 writes W − w r pᵀ (norm-preserving: each column rescaled by s_j).
  const matrixBytes = rows * rowBytes;
  const directionSquaredLength = squaredLength(direction);
  for (let batch = 0; batch < batches; batch++) {
    const matrixBegin = begin + batch * matrixBytes;
    const projection = new Float64Array(cols); // [cols]
    const squaredNorms = new Float64Array(cols); // [cols], norm-preserving only
    // A matrix that fits in one chunk is read once: pass 2 reuses pass 1's bytes (still one chunk in memory).
    let wholeMatrix: Uint8Array | null = null; // [rows, cols] stored
    for (let rowStart = 0; rowStart < rows; rowStart += chunkRows) {
      throwIfAborted(options.signal);
      const count = Math.min(chunkRows, rows - rowStart);
      const chunk = await readExactly(source, matrixBegin + rowStart * rowBytes, count * rowBytes); // [count, cols]
      if (normPreserving) {
        const partial = await normPreserving.projectColumnsWithNorms(chunk, dtype, rowStart, count, cols, direction);
        for (let j = 0; j < cols; j++) {
          projection[j] += partial.projection[j];
          squaredNorms[j] += partial.squaredNorms[j];
        }
      } else {
        const partial = await backend.projectColumns(chunk, dtype, rowStart, count, cols, direction);
        for (let j = 0; j < cols; j++) projection[j] += partial[j];
      }
      meter.advance(chunk.byteLength, sink.name);
      if (count === rows) wholeMatrix = chunk;
    }
    const factors = normPreserving ? normPreservingFactors(projection, squaredNorms, directionSquaredLength, weight) : null; // [cols]
    for (let rowStart = 0; rowStart < rows; rowStart += chunkRows) {
      throwIfAborted(options.signal);
      const count = Math.min(chunkRows, rows - rowStart);
      const chunk = wholeMatrix ?? (await readExactly(source, matrixBegin + rowStart * rowBytes, count * rowBytes)); // [count, cols]
      const edited =
        normPreserving && factors
          ? await normPreserving.applyColumnsNormPreserving(chunk, dtype, rowStart, count, cols, direction, projection, factors, weight)
          : await backend.applyColumns(chunk, dtype, rowStart, count, cols, direction, projection, weight);
      await sink.write(checkedSize(edited, chunk, backend, edit));
      meter.advance(chunk.byteLength, sink.name);
    }
  }
}
