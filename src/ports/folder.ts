/**
 * Folders as the engine sees them: a model folder to read (Node directory, browser directory picker, the
 * bundled demo) and an output folder to write, which only becomes visible under its final name on commit(),
 * so a crash or a cancel never leaves an output that looks complete.
 */
import { MemoryByteSource, type ByteSink, type ByteSource } from './bytes';
import { InvalidFileError, InvalidInputError } from '../base/errors';

export interface ModelFolder {
  readonly name: string;
  /** Relative paths, '/'-separated, sorted. */
  list(): string[];
  open(path: string): Promise<ByteSource>;
  readText(path: string): Promise<string>;
}

export interface OutputFolder {
  readonly name: string;
  /** A sink for a file written under the partial output (OUT.partial or equivalent). */
  createFile(path: string): Promise<ByteSink>;
  /** Makes the output final (OUT.partial → OUT). Every sink must be closed first. */
  commit(): Promise<void>;
  /** Removes the partial output. Safe to call after a failed commit or twice. */
  abort(): Promise<void>;
}

/**
 * Checks a folder-relative path: '/'-separated, no empty, '.' or '..' segments, not absolute, no backslashes
 * or NUL. Returns its segments. Keeps every writer inside its folder whatever a hostile index names.
 */
export function checkedRelativePath(path: string): string[] {
  const segments = typeof path === 'string' ? path.split('/') : [];
  const bad =
    segments.length === 0 ||
    path.includes('\\') ||
    path.includes('\0') ||
    /^[A-Za-z]:/.test(path) ||
    segments.some((segment) => segment === '' || segment === '.' || segment === '..');
  if (bad) throw new InvalidInputError(`${JSON.stringify(path)} is not a plain relative path inside the folder`);
  return segments;
}

/** A ModelFolder over files already in memory (tests, small bundled models). */
export class MemoryModelFolder implements ModelFolder {
  constructor(
    readonly name: string,
    private readonly files: ReadonlyMap<string, Uint8Array>,
  ) {
    for (const path of files.keys()) checkedRelativePath(path);
  }
  list(): string[] {
    return [...this.files.keys()].sort();
  }
  async open(path: string): Promise<ByteSource> {
    return new MemoryByteSource(`${this.name}/${path}`, this.bytesOf(path));
  }
  async readText(path: string): Promise<string> {
    return decodeUtf8Text(`${this.name}/${path}`, this.bytesOf(path));
  }
  private bytesOf(path: string): Uint8Array {
    const bytes = this.files.get(path);
    if (!bytes) throw new InvalidInputError(`${this.name}: has no file ${JSON.stringify(path)}`);
    return bytes;
  }
}

/** Strict UTF-8 (a BOM is dropped); a file that is not text is an InvalidFileError naming it. */
export function decodeUtf8Text(file: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidFileError(file, 'is not valid UTF-8 text');
  }
}
