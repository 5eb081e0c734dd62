/**
 * Captured activations kept in IndexedDB (idb-keyval, usable from a worker), keyed by everything that changes
 * the bits — model content (graph and external data), prompts, token position, backend and batch size (a batch
 * pads its prompts to a common length, which moves the last bits) — so a reload — or a second analysis of the same sets — does not recompute.
 * The cache is an optimization: any failure to read or write it is ignored, never fatal.
 */
import { createStore, del, get, keys, set, type UseStore } from 'idb-keyval';
import { sha256Hex } from '../src/core/sha256';
import type { CaptureResult } from '../src/engine/capture';
import type { PromptInput } from '../src/protocol/analysis-api';
import type { ResolvedBackend } from '../src/ports/onnx-session';

/** Oldest entries beyond this count are dropped (a 0.8B model's set is ~10 MB). */
const MAX_CACHED_SETS = 48;
const CACHE_FORMAT = 2;

let store: UseStore | null = null;
function cacheStore(): UseStore | null {
  if (typeof indexedDB === 'undefined') return null;
  store ??= createStore('abliteration-workbench', 'activations');
  return store;
}

export async function activationCacheKey(modelFingerprint: string, prompts: readonly PromptInput[], position: number, backend: ResolvedBackend, batchSize: number): Promise<string> {
  const promptHash = sha256Hex(new TextEncoder().encode(JSON.stringify(prompts.map((prompt) => prompt.messages))));
  return `v${CACHE_FORMAT}:${modelFingerprint}:${backend}:pos${position}:batch${batchSize}:${promptHash}`;
}

interface CacheEntry {
  storedAt: number;
  result: CaptureResult;
}

export async function readCachedActivations(key: string): Promise<CaptureResult | null> {
  const target = cacheStore();
  if (!target) return null;
  try {
    const entry = (await get<CacheEntry>(key, target)) ?? null;
    return entry?.result.activations ? entry.result : null;
  } catch {
    return null;
  }
}

export async function writeCachedActivations(key: string, result: CaptureResult): Promise<void> {
  const target = cacheStore();
  if (!target) return;
  try {
    await set(key, { storedAt: Date.now(), result } satisfies CacheEntry, target);
    const allKeys = (await keys(target)) as string[];
    if (allKeys.length > MAX_CACHED_SETS) {
      const entries = await Promise.all(allKeys.map(async (entryKey) => ({ entryKey, storedAt: (await get<CacheEntry>(entryKey, target))?.storedAt ?? 0 })));
      entries.sort((a, b) => a.storedAt - b.storedAt);
      for (const { entryKey } of entries.slice(0, allKeys.length - MAX_CACHED_SETS)) await del(entryKey, target);
    }
  } catch {
    // quota exceeded or storage disabled: the next run recomputes
  }
}
