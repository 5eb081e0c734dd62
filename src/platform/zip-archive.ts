/** Whole zip archives in memory (fflate), for small bundles such as the run card: files by path ↔ zip bytes. */
import { unzipSync, zipSync } from 'fflate';
import { InvalidFileError } from '../base/errors';

export function zipFiles(files: Record<string, Uint8Array>, modified: Date): Uint8Array {
  return zipSync(files, { level: 6, mtime: modified });
}

export function unzipFiles(name: string, bytes: Uint8Array): Record<string, Uint8Array> {
  try {
    return unzipSync(bytes);
  } catch (error) {
    throw new InvalidFileError(name, `is not a zip file (${(error as Error).message})`);
  }
}
