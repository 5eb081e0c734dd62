/**
 * The session survives a reload: the latest snapshot is kept in the storage the page provides (IndexedDB, see
 * platform/session-storage.ts) and restored before the page fills in its defaults. Saving is debounced and
 * starts only after the restore, so the empty start-up state never overwrites the saved session.
 * Storage is a convenience: a failure to read or write it leaves a note, never an error.
 */
import { chatStore } from './chat-store';
import { applySnapshot, isSessionSnapshot, takeSnapshot } from './session';
import { workbenchStore } from './store';

/** Where the session is kept (the browser's IndexedDB, given by the page at start-up; none in tests). */
export interface SessionStorage {
  read(): Promise<unknown>;
  write(value: unknown): Promise<void>;
  clear(): Promise<void>;
}

const SAVE_DELAY_MS = 400;

let storage: SessionStorage | null = null;
function sessionStore(): SessionStorage | null {
  return storage;
}

export function setSessionStorage(target: SessionStorage | null): void {
  storage = target;
}

/** Restores the saved session, if any; true when one was applied. */
export async function restoreSession(): Promise<boolean> {
  const target = sessionStore();
  if (!target) return false;
  try {
    const saved: unknown = await target.read();
    if (!isSessionSnapshot(saved)) return false;
    applySnapshot(saved, 'the last session');
    return true;
  } catch (error) {
    workbenchStore.setState((state) => ({ notes: [...state.notes, `The saved session could not be read (${(error as Error).message}); starting fresh.`] }));
    return false;
  }
}

let timer: ReturnType<typeof setTimeout> | null = null;
let saving = false;
let stopSaving: (() => void) | null = null;

async function saveNow(): Promise<void> {
  const target = sessionStore();
  if (!target) return;
  try {
    await target.write(takeSnapshot());
  } catch {
    // quota exceeded or storage disabled: the session lives only in this page
  }
}

/** Saves after every change (debounced) from now on; returns a function that stops it. */
export function startSavingSession(): () => void {
  if (saving) return () => undefined;
  saving = true;
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void saveNow(), SAVE_DELAY_MS);
  };
  const unsubscribe = [workbenchStore.subscribe(schedule), chatStore.subscribe(schedule)];
  stopSaving = () => {
    saving = false;
    if (timer) clearTimeout(timer);
    for (const stop of unsubscribe) stop();
  };
  return stopSaving;
}

/** Forgets the saved session and stops saving this page's, so the next reload starts empty. */
export async function clearSavedSession(): Promise<void> {
  stopSaving?.();
  const target = sessionStore();
  if (target) await target.clear().catch(() => undefined);
}
