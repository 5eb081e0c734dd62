/**
 * The preflight before a capture (a Store of its own): the current A and B prompts and token position sent to
 * the chat worker, which holds the base model; the report arrives finished.
 */
import { useSyncExternalStore } from 'react';
import { chatClient } from '../clients/chat-client';
import { CancelledError } from '../base/errors';
import type { PreflightResult } from '../protocol/chat-api';
import { reportError } from './actions';
import { agentPromptsStore } from './agent-prompts';
import { chatStore } from './chat-store';
import { currentModels } from './chat-actions';
import { promptSetToInputs } from './prompt-sets';
import { Store, workbenchStore } from './store';

export interface PreflightState {
  phase: 'idle' | 'running' | 'done' | 'failed';
  detail: string;
  result: PreflightResult | null;
}

export const preflightStore = new Store<PreflightState>({ phase: 'idle', detail: '', result: null });

export function usePreflight<Slice>(select: (state: PreflightState) => Slice): Slice {
  return useSyncExternalStore(preflightStore.subscribe, () => select(preflightStore.getState()));
}

let controller: AbortController | null = null;

export async function runPreflightCheck(): Promise<void> {
  if (controller) return;
  const own = new AbortController();
  controller = own;
  preflightStore.setState({ phase: 'running', detail: 'loading the base model…', result: null });
  try {
    const { ablated: _ablated, ...models } = currentModels();
    const workbench = workbenchStore.getState();
    const markers = chatStore.getState().markers;
    const actionKeys = agentPromptsStore.getState().actionKeys.split(',').map((key) => key.trim()).filter((key) => key.length > 0);
    const result = await chatClient().preflight(
      {
        models,
        harmful: promptSetToInputs(workbench.prompts.harmful, 'A (refusal prompts)'),
        harmless: promptSetToInputs(workbench.prompts.harmless, 'B (compliance prompts)'),
        position: workbench.position,
        ...(markers ? { markers: markers.list } : {}),
        ...(actionKeys.length ? { actionKeys } : {}),
      },
      { signal: own.signal, onProgress: (event) => event.status === 'progress' && preflightStore.setState({ detail: event.detail ?? '' }) },
    );
    preflightStore.setState({ phase: 'done', detail: '', result });
  } catch (error) {
    preflightStore.setState({ phase: 'failed', detail: error instanceof CancelledError ? 'Cancelled' : (error as Error).message });
    if (!(error instanceof CancelledError)) reportError(error);
  } finally {
    controller = null;
  }
}
