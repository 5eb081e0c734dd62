/**
 * Streaming weight orthogonalization of a safetensors model folder (docs/definitions.md "Weight orthogonalization").
 *
 * Shard by shard, tensor by tensor, big tensors in row chunks of at most `maxChunkBytes`: memory stays bounded
 * by a few chunks whatever the model's size. Each output shard starts with the input header copied byte for byte
 * (same dtypes, shapes, offsets, __metadata__); untouched tensors and every other file are copied byte for byte.
 * The base README.md becomes the model card (engine/model-card.ts), its text kept below the generated part.
 * Every output file is hashed while it is written; the manifest `abliteration.json` lists the hashes.
 * The output only becomes final on `output.commit()`; any error or cancel calls `output.abort()`.
 */
import { FLOAT_DTYPE_BYTES } from '../core/dtypes';
import type { ByteSink, ByteSource } from '../ports/bytes';
import type { ModelFolder, OutputFolder } from '../ports/folder';
import { BackendError, InvalidFileError, throwIfAborted } from '../base/errors';
import { ProgressReporter, type LongCallOptions } from '../base/progress';
import { checkEditsFitChunk, MANIFEST_FILE, planAblation, type AblationPlan, type AblationSelection, type ShardPlan, type TensorEdit } from './ablate-plan';
import { buildManifest, type AblationManifest, type DirectionProvenance, type OutputFileRecord } from './ablate-manifest';
import { cpuInPlaceOrthogonalizeBackend, cpuOrthogonalizeBackend, normPreservingCalls, type NormPreservingCalls, type OrthogonalizeBackend } from './orthogonalize-backend';
import { normPreservingFactors, squaredLength, type ColumnProjectionAndNorms } from '../core/norm-preserving';
import { MODEL_CARD_FILE, modelCardFacts, writeModelCard } from './model-card';
import type { ModelCardResults } from '../formats/model-card';
import { ByteMeter, portableHash, rowsPerChunk, writeFile, writeFileThenFinish, type HashFactory } from './output-writer';
import { OrderedWriter, type JobResult } from './ordered-writer';
import { ChunkBuffers } from './chunk-buffers';
import { readExactly } from '../formats/safetensors';

export type { AblationManifest } from './ablate-manifest';
export { checkEditsFitChunk, planAblation, MANIFEST_FILE, type AblationPlan } from './ablate-plan';
export type { HashFactory, IncrementalHash } from './output-writer';

/** 32 MiB: big enough that per-chunk overheads vanish, small enough that a few chunks in flight stay far below the RSS budget. */
export const DEFAULT_MAX_CHUNK_BYTES = 32 * 1024 * 1024;

export type AblateOptions = LongCallOptions & AblationSelection & AblateRunOptions;

export interface AblateRunOptions {
  backend?: OrthogonalizeBackend;
  maxChunkBytes?: number;
  /** Where the direction came from, recorded in the manifest. */
  directionSource?: DirectionProvenance;
  /**
   * SHA-256 of the output files; defaults to the pure-TypeScript one (browser and Node alike). Callers pass a
   * faster one where they have it: node:crypto's in Node, a WebAssembly one in the browser.
   */
  createHash?: HashFactory;
  /** Also write abliterated ONNX graphs to onnx/ (ablateModel plans them; writeAblation takes them from the plan). */
  onnx?: boolean;
  /** Measured refusal / KL / action figures for the model card (README.md), when the caller has them. */
  results?: ModelCardResults | null;
}

/** Plans (validating everything) and writes the ablated folder; aborts the output on any failure. */
export async function ablateModel(input: ModelFolder, output: OutputFolder, options: AblateOptions): Promise<AblationManifest> {
  let plan: AblationPlan;
  try {
    // Without a provenance the direction is a bare vector: a single direction, not a row of a file.
    plan = await planAblation(input, options, options.directionSource?.layer ?? null, { onnx: options.onnx === true });
  } catch (error) {
    await output.abort();
    throw error;
  }
  return writeAblation(plan, output, options);
}

/** Writes a validated plan into `output` and commits it. */
export async function writeAblation(plan: AblationPlan, output: OutputFolder, options: AblateOptions): Promise<AblationManifest> {
  const maxChunkBytes = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes < 16) throw new RangeError(`maxChunkBytes ${maxChunkBytes} is too small`);
  checkEditsFitChunk(plan, maxChunkBytes);
  const createHash = options.createHash ?? portableHash;
  const progress = new ProgressReporter('ablate', options.onProgress);
  // The ONNX writer is loaded only for a plan with graphs to write (ablate-plan.ts says why).
  const onnx = plan.onnx ? { plan: plan.onnx, writer: await import('./onnx-export') } : null;
  const meter = new ByteMeter(progress, totalWork(plan) + (onnx ? onnx.writer.onnxExportWork(onnx.plan) : 0));
  const files: Record<string, OutputFileRecord> = {};
  const buffers = new ChunkBuffers([pieceBytes(maxChunkBytes), maxChunkBytes], inFlightBytes(maxChunkBytes));
  let nextShardSink: Promise<ByteSink> | null = null;
  // Shards whose bytes have landed while their hash may still be reading them back (see below), in shard order.
  const finishing: Promise<OutputFileRecord>[] = [];
  try {
    // Where the output allows it, each shard's file is created while the shard before it is written: where
    // creating it means copying the whole shard (Node), that copy runs beside the edit and hashing of the previous one.
    const create = (shard: ShardPlan) => output.createFile(shard.path, { ...(shard.source.mode !== undefined ? { mode: shard.source.mode } : {}), copyOf: shard.source });
    for (const [index, shard] of plan.shards.entries()) {
      throwIfAborted(options.signal);
      const sink = nextShardSink ?? create(shard);
      nextShardSink = output.concurrentFiles && index + 1 < plan.shards.length ? create(plan.shards[index + 1]) : null;
      nextShardSink?.catch(() => undefined); // reported when its turn comes
      // Chunks read into the engine's own buffers (a source with readInto) may be edited in place.
      const backend = options.backend ?? (shard.source.readInto ? cpuInPlaceOrthogonalizeBackend : cpuOrthogonalizeBackend);
      const landed = await writeFileThenFinish(output, shard.path, createHash, async (sink) => {
        // Where the output folder made the file a copy of the shard, only the edited tensors are written; every
        // byte is read back from the copy, so what is hashed is what the output holds.
        const source = sink.copied ?? shard.source;
        if (sink.copied) await sink.keepOwned(await copiedHeader(sink.copied, shard.header.rawHeader, shard.source.name));
        else await sink.write(shard.header.rawHeader);
        meter.advance(shard.header.rawHeader.byteLength, shard.path);
        const writer = new OrderedWriter(sink, inFlightBytes(maxChunkBytes), meter, buffers);
        // Runs of untouched tensors are copied (or only hashed) as one range, in pieces.
        let copyBegin = shard.header.dataStart;
        for (const tensor of shard.header.tensors) {
          const edit = plan.edits.get(tensor.name);
          if (!edit) continue;
          const begin = shard.header.dataStart + tensor.dataOffsets[0];
          await queueCopy(writer, buffers, source, copyBegin, begin, pieceBytes(maxChunkBytes), options.signal, sink.copied !== undefined);
          await queueEditedTensor(writer, buffers, source, begin, edit, backend, options.signal, maxChunkBytes);
          copyBegin = shard.header.dataStart + tensor.dataOffsets[1];
        }
        await queueCopy(writer, buffers, source, copyBegin, shard.header.fileSize, pieceBytes(maxChunkBytes), options.signal, sink.copied !== undefined);
        await writer.drain();
      }, { opened: sink });
      const recorded = landed.finished.then((record) => {
        if (record.bytes !== shard.header.fileSize) {
          throw new InvalidFileError(shard.source.name, `wrote ${record.bytes} bytes but the shard is ${shard.header.fileSize}`);
        }
        return record;
      });
      recorded.catch(() => undefined); // reported by the await below
      finishing.push(recorded);
      // Where several files may be open at once, the next shard's edit starts while this one's hash catches up
      // (it reads each range back once written, so it trails the edit); elsewhere each file is done before the next.
      if (!output.concurrentFiles) await recorded;
    }
    const records = await Promise.all(finishing);
    plan.shards.forEach((shard, index) => (files[shard.path] = records[index]));
    for (const file of plan.otherFiles) {
      if (file.path === MODEL_CARD_FILE) continue; // the model card below keeps its text
      throwIfAborted(options.signal);
      files[file.path] = await writeFile(output, file.path, createHash, async (sink) => {
        const writer = new OrderedWriter(sink, inFlightBytes(maxChunkBytes), meter, buffers);
        await queueCopy(writer, buffers, sink.copied ?? file.source, 0, file.source.size, pieceBytes(maxChunkBytes), options.signal, sink.copied !== undefined);
        await writer.drain();
      }, { ...(file.source.mode !== undefined ? { mode: file.source.mode } : {}), copyOf: file.source });
    }
    files[MODEL_CARD_FILE] = await writeModelCard(plan, output, modelCardFacts(plan, options), { createHash, meter, maxChunkBytes, ...(options.signal ? { signal: options.signal } : {}) });
    if (onnx) {
      for (const graph of onnx.plan.graphs) {
        throwIfAborted(options.signal);
        Object.assign(files, await onnx.writer.writeOnnxGraph(graph, output, { maxChunkBytes, createHash, meter, ...(options.signal ? { signal: options.signal } : {}) }));
      }
    }
    const manifest = buildManifest(plan, options, files);
    await writeFile(output, MANIFEST_FILE, createHash, (sink) => sink.write(new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`)));
    throwIfAborted(options.signal);
    await output.commit();
    progress.done();
    return manifest;
  } catch (error) {
    await nextShardSink?.then((sink) => sink.abort()).catch(() => undefined); // settled before the folder goes
    await Promise.allSettled(finishing);
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

/**
 * Input bytes in flight (being read, computed or waiting for their turn to be written): two of the largest chunks,
 * i.e. several of the smaller pieces below, which keeps the kernel threads and the disk busy at once while memory
 * stays a few chunks whatever the model's size.
 */
function inFlightBytes(maxChunkBytes: number): number {
  return 2 * maxChunkBytes;
}

/**
 * Work that is row-local (the rows edit, pass 2 of the columns edit, copies) goes in pieces of at most 8 MiB, so
 * several run at once within the in-flight budget; any split of it gives the same bytes. Only pass 1 of the columns
 * edit keeps whole maxChunkBytes chunks, because its chunks fix the order in which partial projections are summed.
 */
function pieceBytes(maxChunkBytes: number): number {
  return Math.min(maxChunkBytes, PIECE_BYTES);
}
const PIECE_BYTES = 8 * 1024 * 1024;

/** `inPlace`: `source` is the output file's own copy, so the bytes are only hashed, not written again. */
async function queueCopy(writer: OrderedWriter, buffers: ChunkBuffers, source: ByteSource, begin: number, end: number, pieceLength: number, signal: AbortSignal | undefined, inPlace: boolean): Promise<void> {
  if (inPlace && writer.keepsRanges) {
    // Nothing is read here: the hash reads the range where it lies. No memory is held, so it costs no budget.
    if (end > begin) await writer.queue(0, end - begin, async () => ({ data: null, done: [], keepBytes: end - begin }));
    return;
  }
  for (let offset = begin; offset < end; offset += pieceLength) {
    throwIfAborted(signal);
    const length = Math.min(pieceLength, end - offset);
    await writer.queue(length, length, async () => {
      const data = await buffers.read(source, offset, length);
      return { data, done: [data], ...(inPlace ? { inPlace } : {}) };
    });
  }
}

/**
 * The header as the copy holds it, which must be the one the plan validated: if the shard was replaced between
 * planning and copying, its tensors may lie elsewhere, and editing the planned ranges would corrupt it.
 */
async function copiedHeader(copy: ByteSource, planned: Uint8Array, shardName: string): Promise<Uint8Array> {
  const header = await readExactly(copy, 0, planned.byteLength);
  if (header.byteLength !== planned.byteLength || !header.every((byte, index) => byte === planned[index])) {
    throw new InvalidFileError(shardName, 'changed while it was being read: its header is not the one checked before writing; run again');
  }
  return header;
}

/** The edited bytes to write; both they and the chunk they came from (unless moved away or edited in place) are done after. */
function edited(chunk: Uint8Array, result: Uint8Array): JobResult {
  return { data: result, done: result.buffer === chunk.buffer ? [result] : [result, chunk] };
}

/** A backend that returned the wrong number of bytes would shift every later tensor: stop instead. */
function checkedSize(edited: Uint8Array, chunkBytes: number, backend: OrthogonalizeBackend, edit: TensorEdit): Uint8Array {
  if (edited.byteLength !== chunkBytes) {
    throw new BackendError(`${backend.name} backend returned ${edited.byteLength} bytes for a ${chunkBytes}-byte chunk of ${edit.tensor.name}`);
  }
  return edited;
}

/**
 * Queues the reads and edits of one tensor. The chunking (rows per chunk from maxChunkBytes) fixes the order in
 * which the column edit sums its partial projections (and norms), so the output does not depend on how many jobs
 * run at once.
 */
async function queueEditedTensor(
  writer: OrderedWriter,
  buffers: ChunkBuffers,
  source: ByteSource,
  begin: number,
  edit: TensorEdit,
  backend: OrthogonalizeBackend,
  signal: AbortSignal | undefined,
  maxChunkBytes: number,
): Promise<void> {
  const { dtype, rows, cols, batches, direction, weight } = edit; // direction [dModel], weight w ≠ 0
  const elementBytes = FLOAT_DTYPE_BYTES[dtype];
  const rowBytes = cols * elementBytes;
  const chunkRows = rowsPerChunk(cols, elementBytes, maxChunkBytes);
  const pieceRows = rowsPerChunk(cols, elementBytes, pieceBytes(maxChunkBytes));
  const normPreserving = edit.method === 'norm-preserving' ? normPreservingCalls(backend) : null;
  if (edit.orientation === 'rows') {
    for (let rowStart = 0; rowStart < rows; rowStart += pieceRows) {
      throwIfAborted(signal);
      const count = Math.min(pieceRows, rows - rowStart);
      const length = count * rowBytes;
      await writer.queue(length, length, async () => {
        const chunk = await buffers.read(source, begin + rowStart * rowBytes, length); // [count, dModel]
        const result = normPreserving
          ? await normPreserving.applyRowsNormPreserving(chunk, dtype, count, cols, direction, weight)
          : edit.match.isBias && rows === 1
            ? await backend.applyBias(chunk, dtype, direction, weight)
            : await backend.applyRows(chunk, dtype, count, cols, direction, weight);
        return edited(chunk, checkedSize(result, length, backend, edit));
      });
    }
    return;
  }
  // Columns: per matrix [dModel, cols], pass 1 accumulates p = rᵀW over row chunks (and, norm-preserving, the
  // column norms in the same read), pass 2 writes W − w r pᵀ (norm-preserving: each column rescaled by s_j).
  const matrixBytes = rows * rowBytes;
  const directionSquaredLength = squaredLength(direction);
  for (let batch = 0; batch < batches; batch++) {
    throwIfAborted(signal);
    const matrixBegin = begin + batch * matrixBytes;
    if (chunkRows >= rows) {
      // The matrix fits in one chunk: read once, both passes on the bytes in memory (one call where the backend fuses them).
      await writer.queue(matrixBytes, 2 * matrixBytes, async () => {
        const chunk = await buffers.read(source, matrixBegin, matrixBytes); // [rows, cols]
        let result: Uint8Array;
        if (normPreserving) {
          result = backend.orthogonalizeColumnsNormPreserving
            ? await backend.orthogonalizeColumnsNormPreserving(chunk, dtype, rows, cols, direction, weight)
            : await applyNormPreserving(normPreserving, chunk, 0, rows, cols, edit, sumPartials([await normPreserving.projectColumnsWithNorms(chunk, dtype, 0, rows, cols, direction)], cols, directionSquaredLength, weight));
        } else {
          result = backend.orthogonalizeColumns
            ? await backend.orthogonalizeColumns(chunk, dtype, rows, cols, direction, weight)
            : await backend.applyColumns(chunk, dtype, 0, rows, cols, direction, await backend.projectColumns(chunk, dtype, 0, rows, cols, direction), weight);
        }
        return edited(chunk, checkedSize(result, matrixBytes, backend, edit));
      });
      continue;
    }
    const partials: Promise<ColumnProjectionAndNorms>[] = []; // one per chunk, in row order
    for (let rowStart = 0; rowStart < rows; rowStart += chunkRows) {
      const count = Math.min(chunkRows, rows - rowStart);
      const length = count * rowBytes;
      await writer.queue(length, length, () => {
        let read: Uint8Array | null = null;
        const partial = buffers.read(source, matrixBegin + rowStart * rowBytes, length).then(async (chunk): Promise<ColumnProjectionAndNorms> => {
          read = chunk;
          return normPreserving
            ? normPreserving.projectColumnsWithNorms(chunk, dtype, rowStart, count, cols, direction)
            : { projection: await backend.projectColumns(chunk, dtype, rowStart, count, cols, direction), squaredNorms: new Float64Array(0) };
        });
        partials.push(partial);
        // Nothing to write; the chunk is done (a backend that moved it elsewhere left an empty buffer, never reused).
        return partial.then((): JobResult => ({ data: null, done: read ? [read] : [] }));
      });
    }
    const whole = Promise.all(partials).then((all) => sumPartials(all, cols, directionSquaredLength, normPreserving ? weight : null));
    whole.catch(() => undefined); // reported through the pass-1 jobs' own results
    for (let rowStart = 0; rowStart < rows; rowStart += pieceRows) {
      throwIfAborted(signal);
      const count = Math.min(pieceRows, rows - rowStart);
      const length = count * rowBytes;
      await writer.queue(length, length, async () => {
        const chunk = await buffers.read(source, matrixBegin + rowStart * rowBytes, length); // [count, cols]
        const sums = await whole;
        const result = normPreserving
          ? await applyNormPreserving(normPreserving, chunk, rowStart, count, cols, edit, sums)
          : await backend.applyColumns(chunk, dtype, rowStart, count, cols, direction, sums.projection, weight);
        return edited(chunk, checkedSize(result, length, backend, edit));
      });
    }
  }
}

interface ColumnSums {
  projection: Float64Array; // [cols] = rᵀW
  factors: Float64Array | null; // [cols] norm-preserving s_j, else null
}

/** The per-chunk partials summed in row order from zero (as a single chunk's partial is too), and the factors. */
function sumPartials(partials: ColumnProjectionAndNorms[], cols: number, directionSquaredLength: number, normPreservingWeight: number | null): ColumnSums {
  const projection = new Float64Array(cols); // [cols]
  const squaredNorms = new Float64Array(cols); // [cols]
  for (const partial of partials) {
    for (let j = 0; j < cols; j++) projection[j] += partial.projection[j];
    if (normPreservingWeight !== null) for (let j = 0; j < cols; j++) squaredNorms[j] += partial.squaredNorms[j];
  }
  const factors = normPreservingWeight === null ? null : normPreservingFactors(projection, squaredNorms, directionSquaredLength, normPreservingWeight);
  return { projection, factors };
}

function applyNormPreserving(calls: NormPreservingCalls, chunk: Uint8Array, rowStart: number, count: number, cols: number, edit: TensorEdit, sums: ColumnSums): Promise<Uint8Array> {
  return calls.applyColumnsNormPreserving(chunk, edit.dtype, rowStart, count, cols, edit.direction, sums.projection, sums.factors!, edit.weight);
}
