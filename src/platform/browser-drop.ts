/**
 * Turns what the browser hands the page (a drop, the directory picker, `<input webkitdirectory>`) into a
 * FolderDescriptor the worker can open. Nothing is read here: handles and Files are passed on as they are.
 */
import { InvalidInputError } from '../base/errors';
import { folderFilesFromInput } from './browser-folder';
import { type FolderDescriptor, type FolderFile } from '../ports/folder-descriptor';

type DirectoryPickerWindow = Window & { showDirectoryPicker?: (options?: { mode?: 'read' | 'readwrite' }) => Promise<FileSystemDirectoryHandle> };

export function hasDirectoryPicker(): boolean {
  return typeof (window as DirectoryPickerWindow).showDirectoryPicker === 'function';
}

export async function pickDirectory(): Promise<FolderDescriptor> {
  const picker = (window as DirectoryPickerWindow).showDirectoryPicker;
  if (!picker) throw new InvalidInputError('This browser has no directory picker; use "Choose folder" or drop the folder here.');
  const handle = await picker.call(window, { mode: 'read' });
  return { kind: 'directory-handle', name: handle.name, handle };
}

export function descriptorFromInput(files: FileList): FolderDescriptor {
  const { name, files: entries } = folderFilesFromInput(files);
  return { kind: 'files', name, files: entries };
}

type LegacyEntry = {
  isFile: boolean;
  isDirectory: boolean;
  name: string;
  file?(success: (file: File) => void, failure: (error: unknown) => void): void;
  createReader?(): { readEntries(success: (entries: LegacyEntry[]) => void, failure: (error: unknown) => void): void };
};

async function readLegacyEntry(entry: LegacyEntry, prefix: string, out: FolderFile[]): Promise<void> {
  if (entry.isFile && entry.file) {
    const file = await new Promise<File>((resolve, reject) => entry.file!(resolve, reject));
    out.push({ path: prefix + entry.name, file });
    return;
  }
  if (!entry.isDirectory || !entry.createReader) return;
  const reader = entry.createReader();
  // readEntries returns the listing in batches until an empty one.
  for (;;) {
    const batch = await new Promise<LegacyEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const child of batch) await readLegacyEntry(child, prefix + entry.name + '/', out);
  }
}

/** A dropped folder: a File System Access handle where the browser gives one, else the legacy entry API. */
export async function descriptorFromDrop(transfer: DataTransfer): Promise<FolderDescriptor> {
  const item = Array.from(transfer.items).find((candidate) => candidate.kind === 'file');
  if (!item) throw new InvalidInputError('Nothing usable was dropped: drop a model folder.');
  const withHandle = item as DataTransferItem & { getAsFileSystemHandle?: () => Promise<FileSystemHandle | null> };
  // Both calls must start before the first await: the DataTransfer is emptied when the event handler returns.
  const handlePromise = withHandle.getAsFileSystemHandle?.();
  const entry = item.webkitGetAsEntry() as unknown as LegacyEntry | null;
  const handle = handlePromise ? await handlePromise.catch(() => null) : null;
  if (handle && handle.kind === 'directory') {
    return { kind: 'directory-handle', name: handle.name, handle: handle as FileSystemDirectoryHandle };
  }
  if (entry?.isDirectory) {
    const files: FolderFile[] = [];
    await readLegacyEntry(entry, '', files);
    const root = entry.name + '/';
    return { kind: 'files', name: entry.name, files: files.map((file) => ({ path: file.path.slice(root.length), file: file.file })) };
  }
  throw new InvalidInputError('Drop a folder (the model directory with config.json inside), not a single file.');
}
