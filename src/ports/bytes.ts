/**
 * Byte sources and sinks: the one abstraction over Node files, browser Blobs, File System Access handles
 * and downloads. Readers ask for ranges, so a 4 GB shard never has to sit in memory.
 */
export interface ByteSource {
  /** A human-readable name used in error messages (a path or a file name). */
  readonly name: string;
  readonly size: number;
  /** Permission bits of the file on disk, where there is one (a copy is created with no more than these). */
  readonly mode?: number;
  /** Reads exactly `length` bytes at `offset` (fewer only past the end of the source). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: reads up to `target.byteLength` bytes at `offset` into `target` and returns how many (fewer only
   * past the end of the source), so a caller streaming gigabytes can reuse its buffers.
   */
  readInto?(offset: number, target: Uint8Array): Promise<number>;
  /**
   * The whole file as the platform holds it, where it can be handed on without reading it here: the Blob of a
   * browser File (onnxruntime-web takes external data as a Blob), or the absolute path on disk (onnxruntime-node
   * reads external data from its folder).
   */
  readonly blob?: Blob;
  readonly filePath?: string;
}

export interface ByteSink {
  readonly name: string;
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Present on a sink created as a copy of a source file (OutputFolder.createFile's `copyOf`): the copied
   * bytes, to read back, and skip(), which moves past `length` bytes that stay as copied. write() then
   * overwrites the copy at the current position.
   */
  readonly copied?: ByteSource;
  skip?(length: number): Promise<void>;
  /** Flushes and finalizes; the file is complete only after this resolves. */
  close(): Promise<void>;
  /** Discards whatever was written. */
  abort(): Promise<void>;
}

/** An in-memory source, for tests and small files. */
export class MemoryByteSource implements ByteSource {
  readonly size: number;
  constructor(
    readonly name: string,
    private readonly bytes: Uint8Array,
  ) {
    this.size = bytes.byteLength;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.bytes.subarray(offset, Math.min(this.size, offset + length));
  }
}

/** A browser Blob/File as a source: `Blob.slice` reads ranges lazily. */
export class BlobByteSource implements ByteSource {
  readonly size: number;
  constructor(
    readonly name: string,
    readonly blob: Blob,
  ) {
    this.size = blob.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return new Uint8Array(await this.blob.slice(offset, Math.min(this.size, offset + length)).arrayBuffer());
  }
}

/** Collects written chunks in memory, for tests and small outputs. */
export class MemoryByteSink implements ByteSink {
  private chunks: Uint8Array[] = [];
  closed = false;
  constructor(readonly name: string) {}
  async write(chunk: Uint8Array): Promise<void> {
    this.chunks.push(chunk.slice());
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  async abort(): Promise<void> {
    this.chunks = [];
  }
  bytes(): Uint8Array {
    const total = this.chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }
}
