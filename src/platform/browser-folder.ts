/**
 * Model folders in the browser: a `<input webkitdirectory>` file list, a File System Access directory handle
 * (picker or drag-and-drop), or static files served next to the app (the demo model). Every file stays a Blob
 * and is read by range, so a multi-gigabyte shard is never copied into one ArrayBuffer.
 */
import { InvalidFileError, InvalidInputError } from '../base/errors';
import { BlobByteSource, type ByteSource } from '../ports/bytes';
import { decodeUtf8Text, MAX_TEXT_FILE_BYTES, type ModelFolder } from '../ports/folder';
import { type FolderDescriptor, type FolderFile } from '../ports/folder-descriptor';

/** Folders deeper than this are not model folders (and walking them would take long). */
const MAX_FOLDER_DEPTH = 6;
/** A model folder has a handful of files; thousands mean the user picked the wrong folder. */
const MAX_FOLDER_FILES = 5000;

class BlobModelFolder implements ModelFolder {
  private readonly byPath: Map<string, Blob>;
  constructor(
    readonly name: string,
    files: { path: string; blob: Blob }[],
  ) {
    this.byPath = new Map(files.map((entry) => [entry.path, entry.blob]));
  }
  list(): string[] {
    return [...this.byPath.keys()].sort();
  }
  blob(path: string): Blob {
    const blob = this.byPath.get(path);
    if (!blob) throw new InvalidFileError(`${this.name}/${path}`, 'no such file in the model folder');
    return blob;
  }
  async open(path: string): Promise<ByteSource> {
    return new BlobByteSource(`${this.name}/${path}`, this.blob(path));
  }
  async readText(path: string): Promise<string> {
    return readBlobText(`${this.name}/${path}`, this.blob(path));
  }
}

/**
 * A text file (config, tokenizer) of the folder: at most MAX_TEXT_FILE_BYTES and strict UTF-8, the same rule as
 * the CLI, so a mislabelled 3 GB shard or a binary file is an error naming it, not a tab out of memory.
 */
export async function readBlobText(file: string, blob: Blob): Promise<string> {
  if (blob.size > MAX_TEXT_FILE_BYTES) {
    throw new InvalidFileError(file, `is ${blob.size} bytes, too large for a text file (limit ${MAX_TEXT_FILE_BYTES})`);
  }
  return decodeUtf8Text(file, new Uint8Array(await blob.arrayBuffer()));
}

/** Files served over HTTP (the demo model). Fetched whole and lazily: the demo is a few megabytes. */
class UrlModelFolder implements ModelFolder {
  private readonly sizes: Map<string, number>;
  private readonly fetched = new Map<string, Promise<Blob>>();
  constructor(
    readonly name: string,
    private readonly baseUrl: string,
    files: { path: string; size: number }[],
  ) {
    this.sizes = new Map(files.map((file) => [file.path, file.size]));
  }
  list(): string[] {
    return [...this.sizes.keys()].sort();
  }
  blob(path: string): Promise<Blob> {
    if (!this.sizes.has(path)) throw new InvalidFileError(`${this.name}/${path}`, 'no such file in the model folder');
    let pending = this.fetched.get(path);
    if (!pending) {
      const url = new URL(path, new URL(this.baseUrl, self.location.href)).href;
      pending = fetch(url).then(async (response) => {
        if (!response.ok) throw new InvalidFileError(`${this.name}/${path}`, `could not be fetched (HTTP ${response.status})`);
        return response.blob();
      });
      this.fetched.set(path, pending);
    }
    return pending;
  }
  async open(path: string): Promise<ByteSource> {
    return new BlobByteSource(`${this.name}/${path}`, await this.blob(path));
  }
  async readText(path: string): Promise<string> {
    return readBlobText(`${this.name}/${path}`, await this.blob(path));
  }
}

/** Strips the picked folder's own name from `webkitRelativePath` ("toy-llama/onnx/model.onnx" → "onnx/model.onnx"). */
export function folderFilesFromInput(files: ArrayLike<File>): { name: string; files: FolderFile[] } {
  const list = Array.from(files);
  if (list.length === 0) throw new InvalidInputError('The picked folder is empty: choose a model folder with config.json inside.');
  const relativePaths = list.map((file) => (file.webkitRelativePath || file.name).split('/'));
  const root = relativePaths[0].length > 1 ? relativePaths[0][0] : 'folder';
  const allUnderRoot = relativePaths.every((parts) => parts.length > 1 && parts[0] === root);
  return {
    name: root,
    files: list.map((file, index) => ({
      path: (allUnderRoot ? relativePaths[index].slice(1) : relativePaths[index]).join('/'),
      file,
    })),
  };
}

export async function walkDirectoryHandle(handle: FileSystemDirectoryHandle): Promise<{ path: string; blob: Blob }[]> {
  const found: { path: string; blob: Blob }[] = [];
  const walk = async (directory: FileSystemDirectoryHandle, prefix: string, depth: number): Promise<void> => {
    // Said, not skipped: a model whose files sit deeper would otherwise load with files silently missing.
    if (depth > MAX_FOLDER_DEPTH) {
      throw new InvalidInputError(`${handle.name}/${prefix.slice(0, -1)}: folders nested deeper than ${MAX_FOLDER_DEPTH} levels; this does not look like a model folder.`);
    }
    // `values()` is in every browser that has the File System Access API; the DOM typings lag behind.
    for await (const entry of (directory as unknown as { values(): AsyncIterable<FileSystemHandle> }).values()) {
      if (found.length > MAX_FOLDER_FILES) {
        throw new InvalidInputError(`${handle.name}: more than ${MAX_FOLDER_FILES} files — this does not look like a model folder.`);
      }
      const path = prefix + entry.name;
      if (entry.kind === 'file') found.push({ path, blob: await (entry as FileSystemFileHandle).getFile() });
      else await walk(entry as FileSystemDirectoryHandle, path + '/', depth + 1);
    }
  };
  await walk(handle, '', 0);
  return found;
}

/** Opens a descriptor on the side that reads it (normally the worker). */
export async function openFolderDescriptor(descriptor: FolderDescriptor): Promise<ModelFolder> {
  switch (descriptor.kind) {
    case 'url':
      return new UrlModelFolder(descriptor.name, descriptor.baseUrl, descriptor.files);
    case 'files':
      return new BlobModelFolder(
        descriptor.name,
        descriptor.files.map((entry) => ({ path: entry.path, blob: entry.file })),
      );
    case 'directory-handle':
      return new BlobModelFolder(descriptor.name, await walkDirectoryHandle(descriptor.handle));
  }
}

/** A stable summary of a folder's content for cache keys: names, sizes and modification times. */
export async function describeFolderFiles(descriptor: FolderDescriptor): Promise<string> {
  switch (descriptor.kind) {
    case 'url':
      return descriptor.files.map((file) => `${file.path}:${file.size}`).join('|');
    case 'files':
      return descriptor.files.map((entry) => `${entry.path}:${entry.file.size}:${entry.file.lastModified}`).sort().join('|');
    case 'directory-handle': {
      const files = await walkDirectoryHandle(descriptor.handle);
      return files
        .map((entry) => `${entry.path}:${entry.blob.size}:${(entry.blob as File).lastModified ?? 0}`)
        .sort()
        .join('|');
    }
  }
}
