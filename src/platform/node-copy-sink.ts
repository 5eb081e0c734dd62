/**
 * An output file that starts as a copy of a model file, made by the kernel (fs.copyFile is copy_file_range on
 * Linux), for outputs that keep most of their input's bytes: `abliterate ablate` rewrites only the edited tensors
 * of a shard in place and copies no other byte through the process.
 *
 * Why: on the machines this was measured on, filing fresh pages of a new file from user space cost 1.4–3 s of
 * system time per GB (dd with 8 MiB blocks: 1.5 s for 0.5 GB; Node's writes alike), while copy_file_range and
 * overwriting pages already in the page cache cost 0.2–0.3 s per GB: the writes, not the edit or the hash, were
 * most of an ablation's time.
 *
 * The output's bytes are read back from the copy (`copied`), not from the source, so the hashes in the manifest
 * describe what the output holds even if the source changed meanwhile; a copy whose size is not the planned one
 * (the source changed between planning and copying) is an error naming the source.
 */
import { constants as fsConstants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { InvalidFileError, InvalidInputError, WorkbenchError } from '../base/errors';
import type { ByteSink, ByteSource } from '../ports/bytes';
import { describeFsError, readRangeInto, writeRangeAt } from './node-files';

export async function createCopySink(source: ByteSource, target: string, shown: string, mode?: number): Promise<ByteSink> {
  if (!source.filePath) throw new WorkbenchError(`${source.name}: has no path on disk to copy from`);
  let handle: FileHandle | null = null;
  const remove = async () => {
    await handle?.close().catch(() => undefined);
    await fs.rm(target, { force: true });
  };
  let size: number;
  try {
    await fs.copyFile(source.filePath, target, fsConstants.COPYFILE_EXCL);
    // copyFile gives the copy the source's bits as they are; a file written by us gets them less the umask.
    if (mode !== undefined) await fs.chmod(target, mode & ~process.umask());
    handle = await fs.open(target, 'r+');
    size = (await handle.stat()).size;
  } catch (error) {
    await remove().catch(() => undefined);
    throw new WorkbenchError(`${shown}: could not be created as a copy of ${source.name} (${describeFsError(error)})`);
  }
  if (size !== source.size) {
    await remove().catch(() => undefined);
    throw new InvalidFileError(source.name, `changed while it was being read: it was ${source.size} bytes when checked and ${size} when copied`);
  }
  const file = handle;
  let position = 0;
  let state: 'open' | 'closed' | 'aborted' = 'open';
  const checkOpen = () => {
    if (state !== 'open') throw new WorkbenchError(`${shown}: used after ${state === 'closed' ? 'close' : 'abort'}`);
  };
  const claim = (length: number) => {
    // Claimed at the call, so writes and skips issued without awaiting still land in call order.
    const start = position;
    position += length;
    if (position > size) throw new WorkbenchError(`${shown}: written past the end of the copy of ${source.name} (${size} bytes)`);
    return start;
  };
  const copied: ByteSource = {
    name: shown,
    size,
    filePath: target,
    async read(offset, length) {
      const bytes = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
      const filled = await copied.readInto!(offset, bytes);
      return bytes.subarray(0, filled);
    },
    async readInto(offset, target) {
      checkOpen();
      if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidInputError(`${shown}: invalid read offset ${offset}`);
      return readRangeInto(file, size, offset, target);
    },
  };
  return {
    name: shown,
    copied,
    async skip(length: number) {
      checkOpen();
      claim(length);
    },
    async write(chunk: Uint8Array) {
      checkOpen();
      await writeRangeAt(file, chunk, claim(chunk.byteLength), shown);
    },
    async close() {
      if (state !== 'open') return;
      state = 'closed';
      await file.close();
    },
    async abort() {
      if (state === 'aborted') return;
      state = 'aborted';
      await remove();
    },
  };
}
