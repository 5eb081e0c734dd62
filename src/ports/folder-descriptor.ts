/**
 * A model folder in a form that crosses postMessage without reading the files: the UI thread hands one of
 * these to a worker, which opens it as a ModelFolder (src/platform/browser-folder.ts) and reads only the
 * ranges it needs.
 */

/** One file of a model folder handed over by the UI; `File` objects are structured-cloneable and Blob-backed. */
export interface FolderFile {
  path: string; // relative, '/'-separated, without the folder's own name
  file: File;
}

/** Where a model folder lives. */
export type FolderDescriptor =
  | { kind: 'url'; name: string; baseUrl: string; files: { path: string; size: number }[] }
  | { kind: 'files'; name: string; files: FolderFile[] }
  | { kind: 'directory-handle'; name: string; handle: FileSystemDirectoryHandle };
