/**
 * The session survives a reload: the latest snapshot is kept in IndexedDB (its own database, beside the
 * workers' activation cache) and restored before the page fills in its defaults. Saving is debounced and
 * starts only after the restore, so the empty start-up state never overwrites the saved session.
 * Storage is a convenience: a failure to read or write it leaves a note, never an error.
 */
import { createStore, del, get, set, type UseStore } from 'idb-keyval';
import { chatStore } from './chat-store';
import { applySnapshot, isSessionSnapshot, takeSnapshot } from './session';
import { workbenchStore } from './store';

const SESSION_KEY = 'latest';
const SAVE_DELAY_MS = 400;

let store: UseStore | null = null;
function sessionStore(): UseStore | null {
  if (typeof indexedDB === 'undefined') return null;
  store ??= createStore('abliteration-workbench-session', 'sessions');
  return store;
}

/** Restores the saved session, if any; true when one was applied. */
export async function restoreSession(): Promise<boolean> {
  const target = sessionStore();
  if (!target) return false;
  try {
    const saved: unknown = await get(SESSION_KEY, target);
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
    await set(SESSION_KEY, takeSnapshot(), target);
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
  if (target) await del(SESSION_KEY, target).catch(() => undefined);
}
