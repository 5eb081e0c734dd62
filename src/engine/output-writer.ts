/**
 * Writing the files of an ablated folder: each file hashed while it is written, a byte meter for progress, and
 * the chunked copy every untouched range goes through. Shared by the safetensors and the ONNX writers.
 */
import { Sha256 } from '../core/sha256';
import { readExactly } from '../formats/safetensors';
import type { ByteSink, ByteSource } from '../ports/bytes';
import type { OutputFolder } from '../ports/folder';
import { throwIfAborted } from '../base/errors';
import type { ProgressReporter } from '../base/progress';

/** One written file as the manifest lists it. */
export interface OutputFileRecord {
  sha256: string;
  bytes: number;
}

export interface IncrementalHash {
  /** Hashes `bytes` now or, for a hash on another thread, a copy of them; calls are hashed in call order. */
  update(bytes: Uint8Array): unknown;
  hexDigest(): string | Promise<string>;
  /**
   * Optional, for a hash that runs on another thread: hashes bytes the caller hands over (their buffer may move
   * to that thread and back) and resolves with them, in a view of the buffer that came back, once they are
   * hashed. Ordered with update(): everything is hashed in call order.
   */
  updateOwned?(bytes: Uint8Array): Promise<Uint8Array>;
  /** Optional, for a hash on another thread: hashes `length` bytes of the file at `path` from `offset`, read there. */
  updateFromFile?(path: string, offset: number, length: number): Promise<void>;
}

/**
 * The sink a writeFile body writes through: every byte is hashed, then written, in call order. A caller that
 * does not await one write before issuing the next gets hashing (possibly on another thread) and writing of
 * consecutive chunks overlapped.
 */
export interface HashingSink extends ByteSink {
  /**
   * Writes bytes the caller owns and hands over until this resolves, with the view to use afterwards (the
   * buffer may have travelled to a hashing thread and back; the view passed in may then be empty).
   */
  writeOwned(chunk: Uint8Array): Promise<Uint8Array>;
  /**
   * Present when the file was created as a copy of its source (writeFile's `copyOf`, where the output folder
   * can copy in the kernel): the copy as written, to read back.
   */
  readonly copied?: ByteSource;
  /** Like writeOwned, for bytes read from `copied` at the current position: hashed and left in place, not written. */
  keepOwned(chunk: Uint8Array): Promise<Uint8Array>;
  /**
   * Present when the file is a copy on disk and the hash can read files itself: the next `length` bytes stay as
   * copied and are hashed without being read here. (Such a sink hashes everything it writes by reading it back
   * from the file, too.)
   */
  keepRange?(length: number): Promise<void>;
}

/** A new incremental hash per file; may be asynchronous (a WebAssembly hash instantiates its module). */
export type HashFactory = () => IncrementalHash | Promise<IncrementalHash>;

export class ByteMeter {
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

export interface WriteFileOptions {
  /** The source's permission bits, so a copy is created with no more than these. */
  mode?: number;
  /** A source most of whose bytes the file keeps: the file starts as its copy where the folder can do that. */
  copyOf?: ByteSource;
  /** The file, already being created by the caller with `output.createFile(path, …)` (mode and copyOf then unused). */
  opened?: Promise<ByteSink>;
}

/** Creates one output file, lets `body` write it through a hashing sink, and closes it. */
export async function writeFile(
  output: OutputFolder,
  path: string,
  createHash: HashFactory,
  body: (sink: HashingSink) => Promise<void>,
  file: WriteFileOptions = {},
): Promise<OutputFileRecord> {
  return (await writeFileThenFinish(output, path, createHash, body, file)).finished;
}

/** A file whose every byte has landed; `finished` settles once it is hashed and closed (it never rejects unobserved). */
export interface LandedFile {
  finished: Promise<OutputFileRecord>;
}

/**
 * writeFile in two steps: resolves once `body` is done and all its writes have landed, while the hash may still
 * be reading the file back (a hash on another thread that reads files is behind the writes by what it has
 * queued). The caller can start the next file meanwhile, on an output folder that allows several open files,
 * so the edit of one shard runs while the hash finishes the one before; it must await `finished` before it
 * relies on the record or lets the folder go.
 */
export async function writeFileThenFinish(
  output: OutputFolder,
  path: string,
  createHash: HashFactory,
  body: (sink: HashingSink) => Promise<void>,
  file: WriteFileOptions = {},
): Promise<LandedFile> {
  const hash = await createHash();
  const sink = await (file.opened ?? output.createFile(path, { ...(file.mode !== undefined ? { mode: file.mode } : {}), ...(file.copyOf ? { copyOf: file.copyOf } : {}) }));
  const skip = sink.copied && sink.skip ? sink.skip.bind(sink) : null;
  let bytes = 0;
  // Each write waits for the one before it, so the file's bytes land in order; the hash of a chunk handed over
  // starts at once, so it runs while the chunks before it are still being written.
  let previous: Promise<unknown> = Promise.resolve();
  const inOrder = <T>(ready: Promise<T>, land: (value: T) => Promise<void>): Promise<T> => {
    const step = previous.then(async () => {
      const value = await ready;
      await land(value);
      return value;
    });
    previous = step; // a failed write fails every later one: nothing lands after a gap
    step.catch(() => undefined); // reported to the caller of that write
    return step;
  };
  const write = (chunk: Uint8Array) => sink.write(chunk);
  const keep = (chunk: Uint8Array) => skip!(chunk.byteLength);
  const handOver = (chunk: Uint8Array, inPlace: boolean): Promise<Uint8Array> => {
    bytes += chunk.byteLength;
    if (hash.updateOwned) return inOrder(hash.updateOwned(chunk), inPlace ? keep : write);
    hash.update(chunk);
    return inOrder(Promise.resolve(chunk), inPlace ? keep : write);
  };
  // A copy on disk whose hash can read files: every range is hashed where it lies, after it is written (or, left
  // as copied, at once), asked for in file order from within the ordered chain. No byte travels to the hash, and
  // no write waits for hashing.
  const filePath = skip ? sink.copied?.filePath : undefined;
  const readBack = filePath !== undefined && hash.updateFromFile ? hash.updateFromFile.bind(hash) : null;
  const hashedBack: Promise<void>[] = []; // awaited before the digest
  const landThenHash = (length: number, land: () => Promise<void>): Promise<void> => {
    const offset = bytes;
    bytes += length;
    const landed = inOrder(Promise.resolve(null), async () => {
      await land();
      const hashed = readBack!(filePath!, offset, length);
      hashed.catch(() => undefined); // reported before the digest
      hashedBack.push(hashed);
    });
    return landed.then(() => undefined);
  };
  const hashing: HashingSink = readBack
    ? {
        name: path,
        copied: sink.copied!,
        write: (chunk) => landThenHash(chunk.byteLength, () => sink.write(chunk)),
        writeOwned: (chunk) => landThenHash(chunk.byteLength, () => sink.write(chunk)).then(() => chunk),
        keepOwned: (chunk) => landThenHash(chunk.byteLength, () => skip!(chunk.byteLength)).then(() => chunk),
        keepRange: (length) => landThenHash(length, () => skip!(length)),
        close: () => sink.close(),
        abort: () => sink.abort(),
      }
    : {
        name: path, // progress shows folder-relative names
        async write(chunk) {
          hash.update(chunk);
          bytes += chunk.byteLength;
          await inOrder(Promise.resolve(chunk), write);
        },
        writeOwned: (chunk) => handOver(chunk, false),
        ...(skip ? { copied: sink.copied } : {}),
        keepOwned(chunk) {
          if (!skip) throw new Error(`${path}: keepOwned on a file that is not a copy`);
          return handOver(chunk, true);
        },
        close: () => sink.close(),
        abort: () => sink.abort(),
      };
  const fail = async (error: unknown): Promise<never> => {
    await sink.abort().catch(() => undefined);
    throw error;
  };
  try {
    await body(hashing);
    await previous;
  } catch (error) {
    await fail(error);
  }
  const finished = (async () => {
    try {
      await Promise.all(hashedBack);
      await sink.close();
    } catch (error) {
      await fail(error);
    }
    return { sha256: await hash.hexDigest(), bytes };
  })();
  finished.catch(() => undefined); // reported to whoever awaits it
  return { finished };
}

export async function copyRange(source: ByteSource, begin: number, end: number, sink: ByteSink, maxChunkBytes: number, signal: AbortSignal | undefined, meter: ByteMeter): Promise<void> {
  for (let offset = begin; offset < end; offset += maxChunkBytes) {
    throwIfAborted(signal);
    const length = Math.min(maxChunkBytes, end - offset);
    await sink.write(await readExactly(source, offset, length));
    meter.advance(length, sink.name);
  }
}

/** Rows per chunk: as many whole rows as fit, at least one. */
export function rowsPerChunk(cols: number, elementBytes: number, maxChunkBytes: number): number {
  return Math.max(1, Math.floor(maxChunkBytes / (cols * elementBytes)));
}

/** The portable SHA-256 (browser and Node alike). */
export function portableHash(): IncrementalHash {
  return new Sha256();
}
