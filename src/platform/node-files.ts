/**
 * Node adapters: files as ByteSources (positioned reads), ByteSinks over fs handles (each write awaits the
 * disk, so memory stays bounded by the caller's chunk size), and model folders whose symbolic links may not
 * lead outside them. The output folder is in node-output.ts.
 */
import { promises as fs, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { InvalidFileError, InvalidInputError, WorkbenchError } from '../base/errors';
import type { ByteSink, ByteSource } from '../ports/bytes';
import { decodeUtf8Text, MAX_TEXT_FILE_BYTES, type ModelFolder } from '../ports/folder';

/** Folders skipped when listing a model folder: version control and download caches are not model files. */
export const SKIPPED_FOLDER_NAMES: ReadonlySet<string> = new Set(['.git', '.cache']);
const MAX_FOLDER_DEPTH = 32;

/** One clause for a file-system error, by its code (the raw message is the fallback). */
export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be accessed (permission denied)';
  if (code === 'EISDIR') return 'is a folder, not a file';
  if (code === 'ENOSPC') return 'could not be written: the disk is full';
  if (code === 'EROFS') return 'is on a read-only file system';
  if (code === 'ENOTDIR') return 'has a path component that is not a folder';
  if (code === 'EEXIST') return 'already exists';
  if (code === 'ELOOP') return 'has too many levels of symbolic links';
  if (code === 'EDQUOT') return 'could not be written: the disk quota is exhausted';
  return (error as Error)?.message ?? String(error);
}

/**
 * Largest length handed to one read or write call: Node's fs binding takes 32-bit lengths and aborts the
 * process (not an exception) on a larger one, so big ranges are split.
 */
export const MAX_IO_BYTES = 1 << 30;

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
  const filled = await readRangeInto(handle, size, offset, buffer);
  return filled === wanted ? buffer : buffer.subarray(0, filled);
}

/** Writes all of `chunk` at `position` (in pieces Node's binding accepts); an error names `name`. */
export async function writeRangeAt(file: FileHandle, chunk: Uint8Array, position: number, name: string): Promise<void> {
  let written = 0;
  try {
    while (written < chunk.byteLength) {
      const { bytesWritten } = await file.write(chunk, written, Math.min(MAX_IO_BYTES, chunk.byteLength - written), position + written);
      written += bytesWritten;
    }
  } catch (error) {
    throw new WorkbenchError(`${name}: ${describeFsError(error)}`);
  }
}

/** Reads up to `target.byteLength` bytes at `offset` into `target`; returns the count (fewer only at end of file). */
export async function readRangeInto(handle: FileHandle, size: number, offset: number, target: Uint8Array): Promise<number> {
  const wanted = Math.max(0, Math.min(target.byteLength, size - offset));
  let filled = 0;
  while (filled < wanted) {
    const { bytesRead } = await handle.read(target, filled, Math.min(MAX_IO_BYTES, wanted - filled), offset + filled);
    if (bytesRead === 0) break; // the file shrank: the caller sees a short read and reports truncation
    filled += bytesRead;
  }
  return filled;
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
    async readInto(offset: number, target: Uint8Array) {
      checkRange(path, offset, target.byteLength);
      if (closed) throw new WorkbenchError(`${path}: read after close`);
      return readRangeInto(handle, size, offset, target);
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
function pathSource(path: string, name: string, size: number, mode?: number): ByteSource {
  return {
    name,
    size,
    filePath: path,
    ...(mode !== undefined ? { mode } : {}),
    async read(offset: number, length: number) {
      checkRange(name, offset, length);
      return withHandle(path, name, (handle) => readRange(handle, size, offset, length));
    },
    async readInto(offset: number, target: Uint8Array) {
      checkRange(name, offset, target.byteLength);
      return withHandle(path, name, (handle) => readRangeInto(handle, size, offset, target));
    },
  };
}

async function withHandle<T>(path: string, name: string, body: (handle: FileHandle) => Promise<T>): Promise<T> {
  let handle: FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    throw new InvalidFileError(name, describeFsError(error));
  }
  try {
    return await body(handle);
  } finally {
    await handle.close();
  }
}

/**
 * A sink writing `path` with positioned writes. The file is created on the first write (or on close, empty),
 * with permission bits `mode` (less the umask) when given. abort() closes and deletes it.
 */
export function createFileSink(path: string, mode?: number): ByteSink {
  let handle: Promise<FileHandle> | null = null;
  let position = 0;
  let state: 'open' | 'closed' | 'aborted' = 'open';
  const opened = () =>
    (handle ??= fs.open(path, 'w', mode ?? 0o666).catch((error) => {
      throw new WorkbenchError(`${path}: ${describeFsError(error)}`);
    }));
  return {
    name: path,
    async write(chunk: Uint8Array) {
      if (state !== 'open') throw new WorkbenchError(`${path}: write after ${state === 'closed' ? 'close' : 'abort'}`);
      // Claim the range now, so writes issued without awaiting still land in call order.
      const start = position;
      position += chunk.byteLength;
      await writeRangeAt(await opened(), chunk, start, path);
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
  /** Permission bits, so copies never grant more than the original. */
  mode: number;
}

/**
 * Where a symbolic link inside a model folder may lead: into the folder itself, or, for a folder inside the
 * Hugging Face cache (`…/models--org--name/snapshots/<revision>/…`), into the `blobs/` of that same
 * repository, where the cache keeps the bytes its snapshot links point to. Real paths.
 */
export function allowedLinkTargets(realRoot: string): string[] {
  const allowed = [realRoot];
  const parts = realRoot.split(nodePath.sep);
  for (let index = parts.length - 2; index >= 0; index--) {
    if (parts[index].startsWith('models--') && parts[index + 1] === 'snapshots') {
      allowed.push(nodePath.join(parts.slice(0, index + 1).join(nodePath.sep) || nodePath.sep, 'blobs'));
      break;
    }
  }
  return allowed;
}

function isInside(path: string, folder: string): boolean {
  const relative = nodePath.relative(folder, path);
  return relative === '' || (!relative.startsWith('..') && !nodePath.isAbsolute(relative));
}

/**
 * Lists a model folder. Symbolic links are followed only where allowedLinkTargets says; any other link (a
 * hostile repository's `notes.txt → ~/.ssh/id_rsa` or `etc → /etc`) is refused with the link named, before any
 * work starts, so nothing from outside the folder can be read, copied into an output or hashed into a manifest.
 */
async function listFolder(root: string, shownRoot: string): Promise<Map<string, ListedFile>> {
  const files = new Map<string, ListedFile>();
  const visited = new Set<string>();
  const realRoot = await fs.realpath(root);
  const allowed = allowedLinkTargets(realRoot);
  const refuse = (relative: string, target: string): never => {
    throw new InvalidInputError(
      `${nodePath.join(shownRoot, relative)}: is a symbolic link to ${target}, outside the model folder; refusing to follow it ` +
        '(links may only point inside the folder, or to the Hugging Face cache blobs of the same repository)',
    );
  };
  const walk = async (absolute: string, relative: string, depth: number): Promise<void> => {
    if (depth > MAX_FOLDER_DEPTH) throw new InvalidInputError(`${shownRoot}: folders nested deeper than ${MAX_FOLDER_DEPTH} levels`);
    const real = await fs.realpath(absolute);
    if (visited.has(real)) return; // a symlink loop inside the folder
    visited.add(real);
    const entries = await fs.readdir(absolute);
    for (const entry of entries) {
      const childAbsolute = nodePath.join(absolute, entry);
      const childRelative = relative ? `${relative}/${entry}` : entry;
      let stats: Stats = await fs.lstat(childAbsolute);
      if (stats.isSymbolicLink()) {
        const link = await fs.readlink(childAbsolute);
        let target: string;
        try {
          target = await fs.realpath(childAbsolute);
        } catch {
          // A dangling link is not a file of the model, unless it names a place outside the folder.
          const lexical = nodePath.resolve(nodePath.dirname(nodePath.join(realRoot, childRelative)), link);
          if (!allowed.some((folder) => isInside(lexical, folder))) refuse(childRelative, link);
          continue;
        }
        if (!allowed.some((folder) => isInside(target, folder))) refuse(childRelative, target);
        stats = await fs.stat(childAbsolute);
      }
      if (stats.isDirectory()) {
        if (!SKIPPED_FOLDER_NAMES.has(entry)) await walk(childAbsolute, childRelative, depth + 1);
      } else if (stats.isFile()) {
        files.set(childRelative, { absolute: childAbsolute, size: stats.size, mode: stats.mode & 0o777 });
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
  const files = await listFolder(root, dir);
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
      return pathSource(file.absolute, displayName(path), size, file.mode);
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
