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
  /**
   * Several files may be open at once (a zip, written entry after entry, cannot). The ablation then creates each
   * shard's file while the one before it is written, which pays where creating it copies the shard (Node).
   */
  readonly concurrentFiles?: boolean;
  /**
   * A sink for a file written under the partial output (OUT.partial or equivalent). `mode`: permission bits
   * for the new file where the platform has them (a copy passes its source's, so it never widens them).
   * `copyOf`: where the platform can copy a file without reading it through the caller (Node: copy_file_range
   * in the kernel), the file starts as a copy of that source and the sink has `copied` and `skip`; elsewhere
   * the option is ignored and the file starts empty.
   */
  createFile(path: string, options?: { mode?: number; copyOf?: ByteSource }): Promise<ByteSink>;
  /** Makes the output final (OUT.partial → OUT). Every sink must be closed first. */
  commit(): Promise<void>;
  /** Removes the partial output. Safe to call after a failed commit or twice. */
  abort(): Promise<void>;
}

/**
 * Checks a folder-relative path: '/'-separated, no empty, '.' or '..' segments, not absolute, and no character
 * that is a separator, drive or stream marker, or forbidden on some file system (backslash, colon, control
 * characters). Returns its segments. Keeps every writer inside its folder whatever a hostile index names, and
 * the same names valid on every platform the output may be copied to.
 */
export function checkedRelativePath(path: string): string[] {
  const segments = typeof path === 'string' ? path.split('/') : [];
  const bad =
    segments.length === 0 ||
    // eslint-disable-next-line no-control-regex -- control characters are exactly what must be caught
    /[\\:\u0000-\u001f]/.test(path) ||
    segments.some((segment) => segment === '' || segment === '.' || segment === '..');
  if (bad) throw new InvalidInputError(`${shortName(path)} is not a plain relative path inside the folder`);
  return segments;
}

/** A path for a message: JSON-quoted, cut after 200 characters. */
function shortName(path: string): string {
  const text = JSON.stringify(path) ?? String(path);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
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

/** Text files (configs, tokenizers) are read whole; anything larger is not a text file we need. */
export const MAX_TEXT_FILE_BYTES = 256 * 1024 * 1024;

/** Strict UTF-8 (a BOM is dropped); a file that is not text is an InvalidFileError naming it. */
export function decodeUtf8Text(file: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidFileError(file, 'is not valid UTF-8 text');
  }
}
