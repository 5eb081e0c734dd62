import type { ByteSource } from '../../src/ports/bytes';

/** A ByteSource that records every read it serves, so tests can check what a parser touched and how much at once. */
export class ReadRecordingSource implements ByteSource {
  /** [offset, length] of each read, in order; tests may reset it between steps. */
  reads: [number, number][] = [];
  largestRead = 0;
  constructor(private readonly inner: ByteSource) {}
  get name() {
    return this.inner.name;
  }
  get size() {
    return this.inner.size;
  }
  read(offset: number, length: number) {
    this.reads.push([offset, length]);
    this.largestRead = Math.max(this.largestRead, length);
    return this.inner.read(offset, length);
  }
}
