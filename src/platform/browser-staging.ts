/**
 * Staging for downloads and zip exports in the origin-private file system (OPFS). Every export gets a folder of
 * its own, `abliteration-exports/export-<time>-<random>/`, held by a Web Lock of the same name for as long as
 * the page (or worker) that made it lives. Cleaning up removes only folders that are ours: the previous export
 * of this same context, and folders whose lock nobody holds any more (a closed tab's leftovers). Two tabs
 * exporting at once therefore never delete each other's files.
 */
import { InvalidInputError } from '../base/errors';

export const STAGING_ROOT = 'abliteration-exports';
const STAGING_PREFIX = 'export-';

/** The parts of the Web Locks API used here (navigator.locks). */
export interface StagingLocks {
  request(name: string, callback: () => Promise<void>): Promise<void>;
  query(): Promise<{ held?: { name?: string }[] }>;
}

export interface StagingEnvironment {
  /** The OPFS root (navigator.storage.getDirectory()). */
  root: FileSystemDirectoryHandle;
  /** navigator.locks where available; without it only this context's previous staging is cleaned up. */
  locks?: StagingLocks;
}

function lockName(folder: string): string {
  return `${STAGING_ROOT}/${folder}`;
}

/** Staging folders this context created and has not cleaned up yet (normally one: the last export's). */
const ownStaging = new Map<string, () => void>();

async function removeQuietly(parent: FileSystemDirectoryHandle, name: string): Promise<void> {
  try {
    await parent.removeEntry(name, { recursive: true });
  } catch {
    /* already gone */
  }
}

async function entryNames(folder: FileSystemDirectoryHandle): Promise<{ name: string; kind: string }[]> {
  const names: { name: string; kind: string }[] = [];
  for await (const entry of (folder as unknown as { values(): AsyncIterable<FileSystemHandle> }).values()) names.push({ name: entry.name, kind: entry.kind });
  return names;
}

function defaultEnvironment(): Promise<StagingEnvironment> | null {
  if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory) return null;
  const locks = (navigator as Navigator & { locks?: StagingLocks }).locks;
  return navigator.storage.getDirectory().then((root) => ({ root, ...(locks ? { locks } : {}) }));
}

/**
 * A fresh staging folder for one export. Removes this context's earlier staging folders (their downloads
 * have long been handed over) and abandoned ones whose owner is gone, never another live context's.
 */
export async function openExportStaging(environment?: StagingEnvironment): Promise<FileSystemDirectoryHandle> {
  const resolved = environment ?? (await defaultEnvironment());
  if (!resolved) {
    throw new InvalidInputError('This browser has no origin-private file system, which downloads and zip exports need; use the folder target.');
  }
  const { root, locks } = resolved;
  const staging = await root.getDirectoryHandle(STAGING_ROOT, { create: true });
  for (const [name, release] of ownStaging) {
    await removeQuietly(staging, name);
    release();
    ownStaging.delete(name);
  }
  if (locks) {
    const held = new Set(((await locks.query()).held ?? []).map((lock) => lock.name));
    for (const entry of await entryNames(staging)) {
      if (entry.name.startsWith(STAGING_PREFIX) && !held.has(lockName(entry.name))) await removeQuietly(staging, entry.name);
    }
  }
  const name = `${STAGING_PREFIX}${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  let release: () => void = () => undefined;
  if (locks) {
    // Held until released here (the next export of this context) or until the context ends.
    await new Promise<void>((acquired) => {
      locks
        .request(lockName(name), () => {
          acquired();
          return new Promise<void>((resolve) => (release = resolve));
        })
        .catch(() => acquired()); // no lock after all: the folder is still ours for this context
    });
  }
  ownStaging.set(name, () => release());
  return staging.getDirectoryHandle(name, { create: true });
}

/**
 * Removes a staging folder this context made, at once, and releases its lock: a cancelled or failed export
 * leaves nothing behind (a finished one keeps its files until the next export, since its downloads read them).
 */
export async function discardExportStaging(folder: FileSystemDirectoryHandle, environment?: StagingEnvironment): Promise<void> {
  const release = ownStaging.get(folder.name);
  if (!release) return;
  const resolved = environment ?? (await defaultEnvironment());
  if (resolved) await removeQuietly(await resolved.root.getDirectoryHandle(STAGING_ROOT, { create: true }), folder.name);
  release();
  ownStaging.delete(folder.name);
}
