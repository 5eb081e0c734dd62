/**
 * The exported folder on the ablated side against the hook preview of the current recipe (a Store of its own):
 * once both models are loaded, the chat worker compares their first-token logits on the held-out evaluation
 * prompts and the chat panel shows the largest difference (test id chat.logit-diff). An export of the current
 * recipe should match its preview to float noise (more for float16 weights, edited and rounded); a large
 * difference means the folder holds another recipe or another model.
 */
import { useSyncExternalStore } from 'react';
import { chatClient } from '../clients/chat-client';
import { CancelledError } from '../base/errors';
import type { ChatModelsSpec, ExportComparisonResult } from '../protocol/chat-api';
import { ablatedSideSpec } from './chat-actions';
import { chatStore } from './chat-store';
import { Store } from './store';

/** Prompts taken from each held-out set (A and B): enough to cover both behaviours, quick on a large model. */
export const COMPARISON_PROMPTS_PER_SET = 8;

export interface ExportComparisonState {
  /** What was compared: base, folder and preview; a result for another key is not shown. */
  key: string;
  phase: 'idle' | 'running' | 'done' | 'failed';
  detail: string;
  result: ExportComparisonResult | null;
}

export const exportComparisonStore = new Store<ExportComparisonState>({ key: '', phase: 'idle', detail: '', result: null });

export function useExportComparison<Slice>(select: (state: ExportComparisonState) => Slice): Slice {
  return useSyncExternalStore(exportComparisonStore.subscribe, () => select(exportComparisonStore.getState()));
}

/** Typed arrays (directions) enter the key by length and sum: cheap, and a new capture changes them. */
function keyOf(value: unknown): string {
  return JSON.stringify(value, (_name, entry: unknown) => (ArrayBuffer.isView(entry) ? `${(entry as Float32Array).length}:${Array.from(entry as Float32Array).reduce((sum, x) => sum + x, 0)}` : entry));
}

let running: AbortController | null = null;

/**
 * Runs the comparison when the ablated side is an exported folder, a hook preview exists (a direction or a
 * recipe) and this combination was not compared yet. Called once the models are loaded.
 */
export async function compareExportWithPreview(models: ChatModelsSpec): Promise<void> {
  const chat = chatStore.getState();
  const folder = models.ablated;
  const preview = ablatedSideSpec({ ...chat, ablatedSource: 'hooks' }).spec;
  if (!folder || folder.kind !== 'folder' || !preview || preview.kind === 'folder') return;
  const prompts = [...chat.heldOut.harmful.prompts.slice(0, COMPARISON_PROMPTS_PER_SET), ...chat.heldOut.harmless.prompts.slice(0, COMPARISON_PROMPTS_PER_SET)];
  if (prompts.length === 0) return;
  const key = keyOf({ base: models.baseKey, backend: models.backend, folder: folder.key, preview, prompts });
  const state = exportComparisonStore.getState();
  if (state.key === key && state.phase !== 'failed') return;
  running?.abort();
  const own = new AbortController();
  running = own;
  exportComparisonStore.setState({ key, phase: 'running', detail: 'comparing with the hook preview…', result: null });
  try {
    const result = await chatClient().compareExport(
      { models: { ...models, ablated: folder }, preview, prompts },
      { signal: own.signal, onProgress: (event) => event.status === 'progress' && exportComparisonStore.getState().key === key && exportComparisonStore.setState({ detail: event.detail ?? '' }) },
    );
    if (exportComparisonStore.getState().key === key) exportComparisonStore.setState({ phase: 'done', detail: '', result });
  } catch (error) {
    // Shown in the readout, not as the page's error banner: the chat itself worked.
    if (exportComparisonStore.getState().key === key) exportComparisonStore.setState({ phase: 'failed', detail: error instanceof CancelledError ? 'cancelled' : (error as Error).message });
  } finally {
    if (running === own) running = null;
  }
}
