/**
 * Read-ahead and write-behind for one output file of the streaming ablation (src/engine/ablate.ts): each queued
 * job (read a range, maybe compute) starts at once, so reads and the backend's compute overlap the hashing and
 * writing of earlier results; results are hashed and written strictly in queue order, and their buffers then go
 * back to the ChunkBuffers for later reads.
 *
 * A result is handed to the sink as soon as it and every result before it are ready, without waiting for the
 * earlier writes to finish: the sink hashes it (on another thread where the hash has one) while the bytes before
 * it are still being written. The in-flight budget counts a job's bytes from queue() until its write is done, so
 * memory stays bounded however the stages are paced. `queue` first retires the oldest jobs until the new one fits.
 */
import type { ByteMeter, HashingSink } from './output-writer';
import type { ChunkBuffers } from './chunk-buffers';

/** What a job gives the writer: the bytes to write (null: nothing), and every buffer it may recycle after that. */
export interface JobResult {
  data: Uint8Array | null;
  done: Uint8Array[];
  /** `data` was read from the output file's own copy (HashingSink.copied) at this position: hash it, do not write it. */
  inPlace?: boolean;
  /** With `data` null: this many bytes of the copy stay as they are, hashed where they lie (HashingSink.keepRange). */
  keepBytes?: number;
}

interface QueuedJob {
  written: Promise<void>;
  bytes: number;
  work: number;
}

export class OrderedWriter {
  private readonly pending: QueuedJob[] = [];
  private queuedBytes = 0;
  /** Settles once the newest queued job's result has been handed to the sink (rejects if any job failed). */
  private handedOver: Promise<void> = Promise.resolve();

  constructor(
    private readonly sink: HashingSink,
    private readonly budgetBytes: number,
    private readonly meter: ByteMeter,
    private readonly buffers: ChunkBuffers,
  ) {}

  /** Whether ranges left as copied can be hashed without reading them here (JobResult.keepBytes). */
  get keepsRanges(): boolean {
    return this.sink.keepRange !== undefined;
  }

  /** `bytes`: the job's input held in memory; `work`: what it adds to the progress bar when written. */
  async queue(bytes: number, work: number, job: () => Promise<JobResult>): Promise<void> {
    while (this.pending.length > 0 && this.queuedBytes + bytes > this.budgetBytes) await this.retireOldest();
    const result = job();
    result.catch(() => undefined); // a failure surfaces when its turn to be written comes, not as an unhandled rejection
    // Boxed, so the chain settles when the write is issued, not when it completes.
    const issued = this.handedOver.then(() => result).then((ready) => ({ write: this.write(ready) }));
    this.handedOver = issued.then(() => undefined); // after a failure no later result is written
    this.handedOver.catch(() => undefined);
    const written = issued.then((box) => box.write);
    written.catch(() => undefined); // reported by retireOldest
    this.pending.push({ written, bytes, work });
    this.queuedBytes += bytes;
  }

  async drain(): Promise<void> {
    while (this.pending.length > 0) await this.retireOldest();
  }

  private async retireOldest(): Promise<void> {
    const { written, bytes, work } = this.pending.shift()!;
    this.queuedBytes -= bytes;
    await written;
    this.meter.advance(work, this.sink.name);
  }

  /** Hands `data` to the sink (moved, when the job gave its buffer up) and recycles the job's buffers once written. */
  private async write({ data, done, inPlace, keepBytes }: JobResult): Promise<void> {
    if (keepBytes !== undefined) await this.sink.keepRange!(keepBytes);
    if (!data) {
      for (const buffer of done) this.buffers.recycle(buffer);
      return;
    }
    if (!done.includes(data) && !inPlace) {
      await this.sink.write(data);
      for (const buffer of done) this.buffers.recycle(buffer);
      return;
    }
    const back = await (inPlace ? this.sink.keepOwned(data) : this.sink.writeOwned(data));
    this.buffers.recycle(back);
    for (const buffer of done) if (buffer !== data) this.buffers.recycle(buffer);
  }
}
