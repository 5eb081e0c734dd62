/**
 * Node adapters: files as ByteSources (positioned reads), ByteSinks over fs handles (each write awaits the
 * disk, so memory stays bounded by the caller's chunk size), model folders, and an output folder written as
 * `OUT.partial/` and renamed to `OUT` only on commit.
 */
import { promises as fs, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { InvalidFileError, InvalidInputError, WorkbenchError } from '../base/errors';
import type { ByteSink, ByteSource } from '../ports/bytes';
import { checkedRelativePath, decodeUtf8Text, type ModelFolder, type OutputFolder } from '../ports/folder';

/** Text files (configs, tokenizers) are read whole; anything larger is not a text file we need. */
export const MAX_TEXT_FILE_BYTES = 256 * 1024 * 1024;
/** Folders skipped when listing a model folder: version control and download caches are not model files. */
export const SKIPPED_FOLDER_NAMES: ReadonlySet<string> = new Set(['.git', '.cache']);
const MAX_FOLDER_DEPTH = 32;

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be accessed (permission denied)';
  if (code === 'EISDIR') return 'is a folder, not a file';
  if (code === 'ENOSPC') return 'could not be written: the disk is full';
  return (error as Error)?.message ?? String(error);
}

function checkRange(name: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new InvalidInputError(`${name}: invalid read range offset ${offset}, length ${length}`);
  }
}

/** Reads up to `length` bytes at `offset` (fewer only at end of file); never allocates past the file's end. */
async function readRange(handle: FileHandle, size: number, offset: number, length: number): Promise<Uint8Array> {
  const wanted = Math.max(0, Math.min(length, size - offset));
  // A buffer of its own (never Node's shared pool), not zero-filled since the read overwrites it; a plain
  // Uint8Array view, because Buffer's slice() would not copy.
  const unpooled = Buffer.allocUnsafeSlow(wanted);
  const buffer = new Uint8Array(unpooled.buffer, unpooled.byteOffset, wanted);
  let filled = 0;
  while (filled < wanted) {
    const { bytesRead } = await handle.read(buffer, filled, wanted - filled, offset + filled);
    if (bytesRead === 0) break; // the file shrank: the caller sees a short read and reports truncation
    filled += bytesRead;
  }
  return filled === wanted ? buffer : buffer.subarray(0, filled);
}

async function openForReading(path: string): Promise<{ handle: FileHandle; stats: Stats }> {
  let handle: FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    throw new InvalidInputError(`${path}: ${describeFsError(error)}`);
  }
  const stats = await handle.stat();
  if (!stats.isFile()) {
    await handle.close();
    throw new InvalidInputError(`${path}: is not a regular file`);
  }
  return { handle, stats };
}

/** A file held open for positioned reads; call close() when done. */
export async function openFileSource(path: string): Promise<ByteSource & { close(): Promise<void> }> {
  const { handle, stats } = await openForReading(path);
  const size = stats.size;
  let closed = false;
  return {
    name: path,
    size,
    async read(offset: number, length: number) {
      checkRange(path, offset, length);
      if (closed) throw new WorkbenchError(`${path}: read after close`);
      return readRange(handle, size, offset, length);
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/**
 * A source that opens the file for each read: nothing to close, so sources handed out by a ModelFolder
 * (whose interface has no close) never leak descriptors. Reads are large (chunks of MBs), so the extra
 * open per read costs nothing measurable.
 */
function pathSource(path: string, name: string, size: number): ByteSource {
  return {
    name,
    size,
    async read(offset: number, length: number) {
      checkRange(name, offset, length);
      let handle: FileHandle;
      try {
        handle = await fs.open(path, 'r');
      } catch (error) {
        throw new InvalidFileError(name, describeFsError(error));
      }
      try {
        return await readRange(handle, size, offset, length);
      } finally {
        await handle.close();
      }
    },
  };
}

/**
 * A sink writing `path` with positioned writes. The file is created on the first write (or on close, empty).
 * abort() closes and deletes it.
 */
export function createFileSink(path: string): ByteSink {
  let handle: Promise<FileHandle> | null = null;
  let position = 0;
  let state: 'open' | 'closed' | 'aborted' = 'open';
  const opened = () =>
    (handle ??= fs.open(path, 'w').catch((error) => {
      throw new WorkbenchError(`${path}: ${describeFsError(error)}`);
    }));
  return {
    name: path,
    async write(chunk: Uint8Array) {
      if (state !== 'open') throw new WorkbenchError(`${path}: write after ${state === 'closed' ? 'close' : 'abort'}`);
      // Claim the range now, so writes issued without awaiting still land in call order.
      const start = position;
      position += chunk.byteLength;
      const file = await opened();
      let written = 0;
      try {
        while (written < chunk.byteLength) {
          const { bytesWritten } = await file.write(chunk, written, chunk.byteLength - written, start + written);
          written += bytesWritten;
        }
      } catch (error) {
        throw new WorkbenchError(`${path}: ${describeFsError(error)}`);
      }
    },
    async close() {
      if (state !== 'open') return;
      state = 'closed';
      const file = await opened();
      await file.close();
    },
    async abort() {
      if (state === 'aborted') return;
      const wasOpen = handle;
      state = 'aborted';
      if (wasOpen) await (await wasOpen.catch(() => null))?.close().catch(() => undefined);
      await fs.rm(path, { force: true });
    },
  };
}

interface ListedFile {
  absolute: string;
  size: number;
}

async function listFolder(root: string): Promise<Map<string, ListedFile>> {
  const files = new Map<string, ListedFile>();
  const visited = new Set<string>();
  const walk = async (absolute: string, relative: string, depth: number): Promise<void> => {
    if (depth > MAX_FOLDER_DEPTH) throw new InvalidInputError(`${root}: folders nested deeper than ${MAX_FOLDER_DEPTH} levels`);
    const real = await fs.realpath(absolute);
    if (visited.has(real)) return; // a symlink loop
    visited.add(real);
    const entries = await fs.readdir(absolute);
    for (const entry of entries) {
      const childAbsolute = nodePath.join(absolute, entry);
      const childRelative = relative ? `${relative}/${entry}` : entry;
      let stats: Stats;
      try {
        stats = await fs.stat(childAbsolute); // follows symlinks: HF cache snapshots are symlinks to blobs
      } catch {
        continue; // a dangling symlink is not a file of the model
      }
      if (stats.isDirectory()) {
        if (!SKIPPED_FOLDER_NAMES.has(entry)) await walk(childAbsolute, childRelative, depth + 1);
      } else if (stats.isFile()) {
        files.set(childRelative, { absolute: childAbsolute, size: stats.size });
      }
    }
  };
  await walk(root, '', 0);
  return files;
}

export async function openNodeModelFolder(dir: string): Promise<ModelFolder> {
  const root = nodePath.resolve(dir);
  let stats: Stats;
  try {
    stats = await fs.stat(root);
  } catch (error) {
    throw new InvalidInputError(`${dir}: ${describeFsError(error)}`);
  }
  if (!stats.isDirectory()) throw new InvalidInputError(`${dir}: is not a folder`);
  const files = await listFolder(root);
  const paths = [...files.keys()].sort();
  const lookup = (path: string): ListedFile => {
    const file = files.get(path);
    if (!file) throw new InvalidInputError(`${dir}: has no file ${JSON.stringify(path)}`);
    return file;
  };
  const displayName = (path: string) => nodePath.join(dir, path);
  return {
    name: dir,
    list: () => [...paths],
    async open(path: string) {
      const file = lookup(path);
      let size: number;
      try {
        size = (await fs.stat(file.absolute)).size;
      } catch (error) {
        throw new InvalidFileError(displayName(path), describeFsError(error));
      }
      return pathSource(file.absolute, displayName(path), size);
    },
    async readText(path: string) {
      const file = lookup(path);
      const { handle, stats: fileStats } = await openForReading(file.absolute);
      try {
        if (fileStats.size > MAX_TEXT_FILE_BYTES) {
          throw new InvalidFileError(displayName(path), `is ${fileStats.size} bytes, too large for a text file (limit ${MAX_TEXT_FILE_BYTES})`);
        }
        return decodeUtf8Text(displayName(path), await readRange(handle, fileStats.size, 0, fileStats.size));
      } finally {
        await handle.close();
      }
    },
  };
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await fs.stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new InvalidInputError(`${path}: ${describeFsError(error)}`);
  }
}

/** Throws unless `path` is absent or an empty folder. */
async function checkOutputAvailable(path: string, shownAs: string): Promise<void> {
  const stats = await statOrNull(path);
  if (!stats) return;
  if (!stats.isDirectory()) throw new InvalidInputError(`${shownAs}: already exists and is not a folder; choose another --out`);
  if ((await fs.readdir(path)).length > 0) {
    throw new InvalidInputError(`${shownAs}: already exists and is not empty; choose another --out or remove it first`);
  }
}

export async function createNodeOutputFolder(outDir: string): Promise<OutputFolder> {
  const finalPath = nodePath.resolve(outDir);
  const partialPath = `${finalPath}.partial`;
  await checkOutputAvailable(finalPath, outDir);
  // A leftover OUT.partial is the remains of a crashed run: never a complete output, safe to replace.
  await fs.rm(partialPath, { recursive: true, force: true });
  await fs.mkdir(partialPath, { recursive: true });
  const openSinks = new Map<string, ByteSink>();
  const created = new Set<string>();
  let state: 'writing' | 'committed' | 'aborted' = 'writing';

  return {
    name: outDir,
    async createFile(path: string) {
      if (state !== 'writing') throw new WorkbenchError(`${outDir}: output already ${state}`);
      const segments = checkedRelativePath(path);
      const key = segments.join('/');
      if (created.has(key)) throw new InvalidInputError(`${outDir}: file ${JSON.stringify(key)} written twice`);
      created.add(key);
      const target = nodePath.join(partialPath, ...segments);
      await fs.mkdir(nodePath.dirname(target), { recursive: true });
      const sink = createFileSink(target);
      openSinks.set(key, sink);
      return {
        name: nodePath.join(outDir, ...segments),
        write: (chunk: Uint8Array) => sink.write(chunk),
        async close() {
          await sink.close();
          openSinks.delete(key);
        },
        async abort() {
          await sink.abort();
          openSinks.delete(key);
        },
      };
    },
    async commit() {
      if (state !== 'writing') throw new WorkbenchError(`${outDir}: output already ${state}`);
      if (openSinks.size > 0) {
        throw new WorkbenchError(`${outDir}: cannot finish while files are still open: ${[...openSinks.keys()].join(', ')}`);
      }
      await checkOutputAvailable(finalPath, outDir);
      if (await statOrNull(finalPath)) await fs.rmdir(finalPath); // an empty folder the user made for us
      await fs.rename(partialPath, finalPath);
      state = 'committed';
    },
    async abort() {
      if (state === 'committed') return;
      state = 'aborted';
      for (const sink of openSinks.values()) await sink.abort().catch(() => undefined);
      openSinks.clear();
      await fs.rm(partialPath, { recursive: true, force: true });
    },
  };
}
