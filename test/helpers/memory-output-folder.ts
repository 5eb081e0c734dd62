/**
 * An output folder in memory for engine tests: every file the engine writes, by path, and whether the write
 * ended in commit or abort (an aborted output must leave nothing behind).
 */
import { MemoryByteSink, type ByteSink } from '../../src/ports/bytes';
import type { OutputFolder } from '../../src/ports/folder';

export class MemoryOutputFolder implements OutputFolder {
  readonly name = 'memory-out';
  readonly files = new Map<string, MemoryByteSink>();
  state: 'writing' | 'committed' | 'aborted' = 'writing';

  get committed(): boolean {
    return this.state === 'committed';
  }

  async createFile(filePath: string): Promise<ByteSink> {
    const sink = new MemoryByteSink(filePath);
    this.files.set(filePath, sink);
    return sink;
  }

  async commit(): Promise<void> {
    this.state = 'committed';
  }

  async abort(): Promise<void> {
    this.state = 'aborted';
    this.files.clear();
  }
}
