/**
 * The browser's store for the workbench session: one value in IndexedDB (idb-keyval), in a database of its own
 * beside the workers' activation cache. Implements state/session-persist's SessionStorage.
 */
import { createStore, del, get, set, type UseStore } from 'idb-keyval';

const SESSION_KEY = 'latest';

export interface BrowserSessionStorage {
  read(): Promise<unknown>;
  write(value: unknown): Promise<void>;
  clear(): Promise<void>;
}

export function indexedDbSessionStorage(): BrowserSessionStorage | null {
  if (typeof indexedDB === 'undefined') return null;
  let store: UseStore | null = null;
  const target = () => (store ??= createStore('abliteration-workbench-session', 'sessions'));
  return {
    read: () => get(SESSION_KEY, target()),
    write: (value) => set(SESSION_KEY, value, target()),
    clear: () => del(SESSION_KEY, target()),
  };
}
