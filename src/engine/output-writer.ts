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
  update(bytes: Uint8Array): unknown;
  hexDigest(): string;
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

/** Creates one output file, lets `body` write it through a hashing sink, and closes it. */
export async function writeFile(
  output: OutputFolder,
  path: string,
  createHash: HashFactory,
  body: (sink: ByteSink) => Promise<void>,
  /** The source's permission bits, so a copy is created with no more than these. */
  mode?: number,
): Promise<OutputFileRecord> {
  const hash = await createHash();
  const sink = await output.createFile(path, mode === undefined ? undefined : { mode });
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
