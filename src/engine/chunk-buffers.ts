/**
 * Recycled read buffers for the streaming writers. Reading every chunk of a multi-gigabyte model into a fresh
 * buffer costs more than the copy itself: each new buffer is fresh memory the kernel must fault in page by page,
 * and the garbage collector then frees it again. Where a source can read into a caller's buffer
 * (ByteSource.readInto), chunks are read into buffers of two fixed capacities (pieces, and whole chunks), and a
 * buffer goes back to its free list once the bytes in it are written out.
 *
 * Ownership: the engine owns every chunk it reads and every result a backend returns ("new stored bytes"), so
 * once such bytes are written their buffer can take the next read: the hash has copied what it needs, and the
 * sinks a source with readInto (a Node file) meets, Node's file sink and the in-memory sink (which copies), are
 * done with a chunk when write() resolves. A buffer comes back only when its capacity is one of the classes and
 * the bytes start at its beginning, which is what a read from here or an in-place edit of one gives.
 */
import { InvalidFileError } from '../base/errors';
import type { ByteSource } from '../ports/bytes';
import { readExactly } from '../formats/safetensors';

const SMALL_READ_FRACTION = 8;

export class ChunkBuffers {
  private readonly free = new Map<number, ArrayBuffer[]>();

  /**
   * `capacities`: the buffer sizes handed out (a read gets the smallest that holds it; a longer read gets a
   * buffer of its own); `keepBytes`: the most bytes of free buffers kept per capacity (the in-flight budget).
   */
  constructor(
    capacities: readonly number[],
    private readonly keepBytes: number,
  ) {
    for (const capacity of [...capacities].sort((a, b) => a - b)) this.free.set(capacity, []);
    this.smallest = Math.min(...capacities);
  }
  private readonly smallest: number;

  /** Exactly `length` bytes of `source` at `offset`; a truncated source is an InvalidFileError naming it. */
  async read(source: ByteSource, offset: number, length: number): Promise<Uint8Array> {
    if (!source.readInto) return readExactly(source, offset, length);
    const target = this.take(length);
    const filled = await source.readInto(offset, target);
    if (filled !== length) {
      throw new InvalidFileError(source.name, `is truncated: expected ${length} bytes at offset ${offset}, got ${filled}`);
    }
    return target;
  }

  /** Bytes the engine owns and has finished with: their buffer takes a later read, if it is one of ours. */
  recycle(bytes: Uint8Array): void {
    const buffer = bytes.buffer;
    if (bytes.byteOffset !== 0 || !(buffer instanceof ArrayBuffer)) return;
    const list = this.free.get(buffer.byteLength);
    if (list && !list.includes(buffer) && (list.length + 1) * buffer.byteLength <= this.keepBytes) list.push(buffer);
  }

  private take(length: number): Uint8Array {
    // A small read (a run of norms between two edited tensors) would tie up a whole buffer: it gets its own.
    if (length < this.smallest / SMALL_READ_FRACTION) return new Uint8Array(length);
    for (const [capacity, list] of this.free) {
      if (capacity < length) continue;
      return new Uint8Array(list.pop() ?? new ArrayBuffer(capacity), 0, length);
    }
    return new Uint8Array(length);
  }
}
