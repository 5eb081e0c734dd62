/**
 * Output folders in the browser (A's OutputFolder interface), for the export worker:
 * - DirectoryOutputFolder: files streamed with `createWritable` into `NAME.partial/` inside a directory handle
 *   (one the user picked with showDirectoryPicker, or the origin-private file system for downloads); commit()
 *   verifies the partial folder, then moves every file to `NAME/` — the manifest last, so a `NAME/` without
 *   abliteration.json is recognisably unfinished — and removes `NAME.partial/`. (Directory handles cannot be
 *   renamed; file handles can be moved.)
 * - ZipOutputFolder: one stored (uncompressed) ZIP64 archive (platform/zip-stream.ts: no size limit) streamed
 *   into `NAME.zip.partial` in the origin-private file system; commit() writes the central directory, re-reads
 *   the archive to verify it, and renames it `NAME.zip` for the download.
 * Nothing is ever buffered whole: sinks pass chunks straight to the browser's file writer.
 */
import { InvalidFileError, InvalidInputError } from '../base/errors';
import { BlobByteSource, type ByteSink, type ByteSource } from '../ports/bytes';
import { checkedRelativePath, type OutputFolder } from '../ports/folder';
import { readStoredZipEntries, StoredZipWriter } from './zip-stream';

/**
 * Read access to what an output folder has written, for the verification pass before commit. Its sources read
 * Blobs, so every read returns bytes in a buffer of their own, which verification may hand to a hashing worker.
 */
export interface OutputReader {
  list(): string[];
  open(path: string): Promise<ByteSource>;
}

/** A file of the output was closed; `read` opens it as written. */
export type FileClosed = (path: string, read: () => Promise<ByteSource>) => void;

/** Runs before the output becomes final; throwing keeps it partial (and the caller aborts it). */
export type VerifyOutput = (reader: OutputReader) => Promise<void>;

type MovableFileHandle = FileSystemFileHandle & { move?: (parent: FileSystemDirectoryHandle, name: string) => Promise<void> };

async function exists(parent: FileSystemDirectoryHandle, name: string): Promise<boolean> {
  for (const kind of ['directory', 'file'] as const) {
    try {
      if (kind === 'directory') await parent.getDirectoryHandle(name);
      else await parent.getFileHandle(name);
      return true;
    } catch {
      /* not this kind */
    }
  }
  return false;
}

/** `name`, or `name-2`, `name-3`… : the first that exists neither as itself nor as its partial. */
export async function freeOutputName(parent: FileSystemDirectoryHandle, name: string, suffix = ''): Promise<string> {
  for (let attempt = 1; attempt < 1000; attempt++) {
    const candidate = attempt === 1 ? name : `${name}-${attempt}`;
    if (!(await exists(parent, candidate + suffix)) && !(await exists(parent, `${candidate}${suffix}.partial`))) return candidate;
  }
  throw new InvalidInputError(`${parent.name}: no free output name like ${name}${suffix}`);
}

async function removeQuietly(parent: FileSystemDirectoryHandle, name: string): Promise<void> {
  try {
    await parent.removeEntry(name, { recursive: true });
  } catch {
    /* already gone */
  }
}

async function directoryFor(root: FileSystemDirectoryHandle, segments: string[]): Promise<FileSystemDirectoryHandle> {
  let directory = root;
  for (const segment of segments) directory = await directory.getDirectoryHandle(segment, { create: true });
  return directory;
}

export class DirectoryOutputFolder implements OutputFolder {
  private readonly written = new Map<string, FileSystemFileHandle>();
  private readonly open = new Set<FileSystemWritableFileStream>();
  private committed = false;
  private finalDirectory: FileSystemDirectoryHandle | null = null;

  private constructor(
    private readonly parent: FileSystemDirectoryHandle,
    readonly name: string,
    private readonly partial: FileSystemDirectoryHandle,
    private readonly verify: VerifyOutput | null,
    private readonly lastFile: string | null,
    private readonly onFileClosed: FileClosed | null,
  ) {}

  /**
   * Creates `NAME.partial/` under `parent`; NAME is made unique (NAME-2…) when a folder of that name exists.
   * `onFileClosed`: told of each file once it is closed, with a way to read it back (the export hashes it again
   * then, while the next file is written, instead of all at once before commit).
   */
  static async create(parent: FileSystemDirectoryHandle, name: string, options: { verify?: VerifyOutput; lastFile?: string; onFileClosed?: FileClosed } = {}): Promise<DirectoryOutputFolder> {
    checkedRelativePath(name);
    const unique = await freeOutputName(parent, name);
    const partial = await parent.getDirectoryHandle(`${unique}.partial`, { create: true });
    return new DirectoryOutputFolder(parent, unique, partial, options.verify ?? null, options.lastFile ?? null, options.onFileClosed ?? null);
  }

  async createFile(path: string): Promise<ByteSink> {
    if (this.committed) throw new InvalidInputError(`${this.name}: already committed`);
    const segments = checkedRelativePath(path);
    const directory = await directoryFor(this.partial, segments.slice(0, -1));
    const handle = await directory.getFileHandle(segments[segments.length - 1], { create: true });
    const writable = await handle.createWritable({ keepExistingData: false });
    this.open.add(writable);
    this.written.set(path, handle);
    const open = this.open;
    const closed = this.onFileClosed;
    const reader = this.reader();
    return {
      name: `${this.name}/${path}`,
      async write(chunk: Uint8Array) {
        await writable.write(chunk as Uint8Array<ArrayBuffer>);
      },
      async close() {
        await writable.close();
        open.delete(writable);
        closed?.(path, () => reader.open(path));
      },
      async abort() {
        open.delete(writable);
        await writable.abort().catch(() => undefined);
      },
    };
  }

  reader(): OutputReader {
    return {
      list: () => [...this.written.keys()].sort(),
      open: async (path) => {
        const handle = this.written.get(path);
        if (!handle) throw new InvalidFileError(`${this.name}/${path}`, 'was not written');
        return new BlobByteSource(`${this.name}.partial/${path}`, await handle.getFile());
      },
    };
  }

  async commit(): Promise<void> {
    if (this.open.size > 0) throw new InvalidInputError(`${this.name}: ${this.open.size} file(s) still open at commit`);
    if (this.verify) await this.verify(this.reader());
    const target = await this.parent.getDirectoryHandle(this.name, { create: true });
    this.finalDirectory = target;
    const paths = [...this.written.keys()].sort((a, b) => Number(a === this.lastFile) - Number(b === this.lastFile) || a.localeCompare(b));
    for (const path of paths) {
      const segments = checkedRelativePath(path);
      const destination = await directoryFor(target, segments.slice(0, -1));
      const handle = this.written.get(path) as MovableFileHandle;
      const fileName = segments[segments.length - 1];
      if (typeof handle.move === 'function') {
        await handle.move(destination, fileName);
      } else {
        // No move(): copy through a stream (disk to disk, never whole in memory).
        const copy = await (await destination.getFileHandle(fileName, { create: true })).createWritable();
        await (await handle.getFile()).stream().pipeTo(copy);
      }
    }
    await removeQuietly(this.parent, `${this.name}.partial`);
    this.committed = true;
  }

  async abort(): Promise<void> {
    await Promise.all([...this.open].map((writable) => writable.abort().catch(() => undefined)));
    this.open.clear();
    await removeQuietly(this.parent, `${this.name}.partial`);
    // A commit that failed half-way leaves a final folder that is not complete: remove it too.
    if (this.finalDirectory && !this.committed) await removeQuietly(this.parent, this.name);
  }

  /** The committed files (disk-backed Files), for delivery as downloads. */
  async files(): Promise<{ path: string; file: File }[]> {
    if (!this.committed || !this.finalDirectory) throw new InvalidInputError(`${this.name}: not committed`);
    const result: { path: string; file: File }[] = [];
    for (const path of [...this.written.keys()].sort()) {
      const segments = checkedRelativePath(path);
      const directory = await directoryFor(this.finalDirectory, segments.slice(0, -1));
      result.push({ path, file: await (await directory.getFileHandle(segments[segments.length - 1])).getFile() });
    }
    return result;
  }
}

export { readStoredZipEntries } from './zip-stream';

export class ZipOutputFolder implements OutputFolder {
  private readonly zip: StoredZipWriter;
  private current = false;
  private committed = false;
  private readonly paths: string[] = [];

  private constructor(
    private readonly parent: FileSystemDirectoryHandle,
    readonly name: string,
    private readonly handle: FileSystemFileHandle,
    private readonly writable: FileSystemWritableFileStream,
    private readonly verify: VerifyOutput | null,
  ) {
    // Chunks go straight to the file writer: headers are fresh arrays, data chunks the caller's, not reused.
    this.zip = new StoredZipWriter((chunk) => this.writable.write(chunk as Uint8Array<ArrayBuffer>));
  }

  /** `NAME.zip.partial` in `parent` (the origin-private file system); NAME made unique. */
  static async create(parent: FileSystemDirectoryHandle, name: string, options: { verify?: VerifyOutput } = {}): Promise<ZipOutputFolder> {
    const unique = await freeOutputName(parent, name, '.zip');
    const handle = await parent.getFileHandle(`${unique}.zip.partial`, { create: true });
    const writable = await handle.createWritable({ keepExistingData: false });
    return new ZipOutputFolder(parent, `${unique}.zip`, handle, writable, options.verify ?? null);
  }

  async createFile(path: string): Promise<ByteSink> {
    checkedRelativePath(path);
    if (this.current) throw new InvalidInputError(`${this.name}: files of a zip are written one at a time`);
    await this.zip.beginEntry(path);
    this.current = true;
    this.paths.push(path);
    return {
      name: `${this.name}/${path}`,
      write: (chunk: Uint8Array) => this.zip.write(chunk),
      close: async () => {
        await this.zip.endEntry();
        this.current = false;
      },
      abort: async () => {
        this.zip.dropEntry();
        this.current = false;
      },
    };
  }

  async commit(): Promise<void> {
    if (this.current) throw new InvalidInputError(`${this.name}: a file is still open at commit`);
    await this.zip.finish();
    await this.writable.close();
    if (this.verify) {
      const archive = new BlobByteSource(`${this.name}.partial`, await this.handle.getFile());
      const entries = await readStoredZipEntries(archive);
      await this.verify({ list: () => [...entries.keys()].sort(), open: async (path) => entries.get(path) ?? Promise.reject(new InvalidFileError(`${this.name}/${path}`, 'is not in the archive')) });
    }
    const handle = this.handle as MovableFileHandle;
    if (typeof handle.move === 'function') {
      await handle.move(this.parent, this.name);
    } else {
      const copy = await (await this.parent.getFileHandle(this.name, { create: true })).createWritable();
      await (await handle.getFile()).stream().pipeTo(copy);
      await removeQuietly(this.parent, `${this.name}.partial`);
    }
    this.committed = true;
  }

  async abort(): Promise<void> {
    await this.writable.abort().catch(() => undefined);
    await removeQuietly(this.parent, `${this.name}.partial`);
    if (!this.committed) await removeQuietly(this.parent, this.name);
  }

  async file(): Promise<File> {
    if (!this.committed) throw new InvalidInputError(`${this.name}: not committed`);
    return (await this.parent.getFileHandle(this.name)).getFile();
  }

  entries(): string[] {
    return [...this.paths];
  }
}
