/**
 * Serves a ModelFolder's files to transformers.js, optionally with some files replaced (the hook graph in place
 * of `onnx/model.onnx`), without touching the file system or the network.
 *
 * Why a custom cache: transformers.js finds model files by id through `env.customCache.match(key)` before any
 * local or remote lookup, and a hit may be a `Response` both in Node and in a browser worker. That is the one
 * public hook that lets `from_pretrained` load bytes we hold in memory (a graph built by surgery, a folder the
 * user dropped in the browser). Each loaded folder gets a unique model id ("slot"); keys are matched on it, so
 * several models (base and ablated, side by side) can be served at once. Unknown keys fall through to whatever
 * cache was configured before, so other users of transformers.js keep working.
 */
import { env } from '@huggingface/transformers';
import type { ModelFolder } from '../ports/folder';

const SLOT_PREFIX = 'abliterate-slot-';

interface Slot {
  folder: ModelFolder;
  /** Folder-relative path → bytes that replace (or add) that file. */
  overrides: ReadonlyMap<string, Uint8Array>;
}

interface CacheLike {
  match(request: string): Promise<unknown>;
  put(request: string, response: Response, progress?: unknown): Promise<void>;
}

const slots = new Map<string, Slot>();
let nextSlot = 1;
let installed = false;

/** `…/abliterate-slot-7/onnx/model.onnx` or `https://host/abliterate-slot-7/resolve/main/onnx/model.onnx` → slot and path. */
function parseKey(key: string): { slotId: string; path: string } | null {
  const match = /(abliterate-slot-\d+)\/(?:resolve\/[^/]+\/)?(.+)$/.exec(key);
  if (!match) return null;
  return { slotId: match[1]!, path: match[2]! };
}

async function readWhole(folder: ModelFolder, path: string): Promise<Uint8Array> {
  const source = await folder.open(path);
  return source.read(0, source.size);
}

function install(): void {
  if (installed) return;
  installed = true;
  const previous = env.useCustomCache ? (env.customCache as CacheLike | null) : null;
  env.allowRemoteModels = false; // weights never leave, and never come from, the network
  env.allowLocalModels = true; // required by transformers.js when remote models are off
  env.useCustomCache = true;
  env.customCache = {
    async match(request: string) {
      const parsed = parseKey(request);
      const slot = parsed && slots.get(parsed.slotId);
      if (!parsed || !slot) return previous?.match(request);
      const override = slot.overrides.get(parsed.path);
      if (override) return new Response(override as Uint8Array<ArrayBuffer>);
      if (!slot.folder.list().includes(parsed.path)) return undefined;
      return new Response((await readWhole(slot.folder, parsed.path)) as Uint8Array<ArrayBuffer>);
    },
    async put(request: string, response: Response, progress?: unknown) {
      if (parseKey(request)) return; // our files are already in memory or on disk
      await previous?.put(request, response, progress);
    },
  } as typeof env.customCache;
}

/** Registers a folder (plus replaced files) and returns the model id to hand to `from_pretrained`. */
export function registerModelFiles(folder: ModelFolder, overrides: ReadonlyMap<string, Uint8Array> = new Map()): { modelId: string; release(): void } {
  install();
  const modelId = `${SLOT_PREFIX}${nextSlot++}`;
  slots.set(modelId, { folder, overrides });
  return { modelId, release: () => void slots.delete(modelId) };
}

export { readWhole as readWholeFile };
