/**
 * Small browser-side helpers of the export panel: feature detection, the folder picker, and handing the
 * worker's finished files (disk-backed Files in the origin-private file system) to the browser's downloads.
 */
import { InvalidInputError } from '../../base/errors';
import type { ExportedFile } from '../../protocol/export-api';

type DirectoryPickerWindow = Window & {
  showDirectoryPicker?: (options?: { mode?: 'read' | 'readwrite'; id?: string }) => Promise<FileSystemDirectoryHandle>;
};

export function hasDirectoryPicker(): boolean {
  return typeof window !== 'undefined' && typeof (window as DirectoryPickerWindow).showDirectoryPicker === 'function';
}

/** The folder to write the export into (File System Access); must be called from a click handler. */
export function pickOutputDirectory(): Promise<FileSystemDirectoryHandle> {
  const picker = (window as DirectoryPickerWindow).showDirectoryPicker;
  if (!picker) throw new InvalidInputError('This browser cannot write to a folder; choose downloads or zip.');
  return picker.call(window, { mode: 'readwrite', id: 'abliteration-export' });
}

/** Downloads cannot create folders: a nested path's '/' becomes '__' ("onnx/model.onnx" → "onnx__model.onnx"). */
export function downloadName(path: string): string {
  return path.split('/').join('__');
}

/** How long the object URLs stay valid after the downloads were started (the browser reads the file meanwhile). */
const OBJECT_URL_LIFETIME_MS = 10 * 60 * 1000;

/** Starts one download per file; returns a function that revokes the object URLs. */
export function deliverDownloads(files: ExportedFile[]): () => void {
  const urls: string[] = [];
  for (const entry of files) {
    if (!entry.file) continue;
    const url = URL.createObjectURL(entry.file);
    urls.push(url);
    const anchor = document.createElement('a');
    anchor.href = url;
    anchor.download = downloadName(entry.path);
    anchor.style.display = 'none';
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
  }
  let revoked = false;
  const revoke = () => {
    if (revoked) return;
    revoked = true;
    for (const url of urls) URL.revokeObjectURL(url);
  };
  setTimeout(revoke, OBJECT_URL_LIFETIME_MS);
  return revoke;
}
