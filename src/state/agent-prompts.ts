/**
 * The agent-prompted requests of the evaluation (test id `prompts.agent`) and the action keys: a Store of its
 * own, so the workbench and chat stores stay as they are. Defaults: the set whose role is "agent" in
 * public/prompts/index.json (shell requests inside terminal-agent system prompts, the held-out split, never
 * used by the capture). Lines are parsed like the other prompt sets (plain lines or JSONL rows).
 */
import { useSyncExternalStore } from 'react';
import { DEFAULT_ACTION_KEYS } from '../core/action';
import { InvalidInputError } from '../base/errors';
import type { PromptInput } from '../protocol/analysis-api';
import { reportError } from './actions';
import { importPromptText, promptSetToInputs } from './prompt-sets';
import { Store, type PromptSetState } from './store';

const PROMPTS_BASE_URL = `${import.meta.env.BASE_URL}prompts/`;

export interface AgentPromptsState {
  set: PromptSetState;
  /** Comma-separated, as `--action-keys`. */
  actionKeys: string;
  defaultsLoaded: boolean;
}

export const agentPromptsStore = new Store<AgentPromptsState>({ set: { text: '', system: '', source: '' }, actionKeys: DEFAULT_ACTION_KEYS.join(','), defaultsLoaded: false });

export function useAgentPrompts<Slice>(select: (state: AgentPromptsState) => Slice): Slice {
  return useSyncExternalStore(agentPromptsStore.subscribe, () => select(agentPromptsStore.getState()));
}

export function setAgentPrompts(update: Partial<PromptSetState>): void {
  agentPromptsStore.setState((state) => ({ set: { ...state.set, ...update } }));
}

export function setActionKeys(actionKeys: string): void {
  agentPromptsStore.setState({ actionKeys });
}

async function fetchText(url: string): Promise<string | null> {
  const response = await fetch(url).catch(() => null);
  // `vite preview` answers a missing file with index.html and 200: only accept non-HTML bodies.
  if (!response || !response.ok || (response.headers.get('content-type') ?? '').includes('text/html')) return null;
  return response.text();
}

/** Fills the editor with the default agent set once, unless the user typed or imported something first. */
export async function loadDefaultAgentPrompts(): Promise<void> {
  if (agentPromptsStore.getState().defaultsLoaded) return;
  agentPromptsStore.setState({ defaultsLoaded: true });
  const indexText = await fetchText(`${PROMPTS_BASE_URL}index.json`);
  if (!indexText) return;
  try {
    const index = JSON.parse(indexText) as { sets?: { role?: string; files?: { all?: string; test?: string } }[] };
    const entry = index.sets?.find((set) => set.role === 'agent');
    const file = entry?.files?.all ?? entry?.files?.test;
    if (!file) return;
    const text = await fetchText(PROMPTS_BASE_URL + file);
    if (text === null) return;
    const set = { ...importPromptText(file, text), source: `defaults: ${file}` };
    agentPromptsStore.setState((state) => (state.set.text === '' && state.set.source === '' ? { set } : {}));
  } catch (error) {
    reportError(error);
  }
}

export async function importAgentPromptFile(file: File): Promise<void> {
  try {
    setAgentPrompts(importPromptText(file.name, await file.text()));
  } catch (error) {
    reportError(error);
  }
}

/** The agent prompts and action keys for an evaluation request; an empty editor means no agent evaluation. */
export function agentEvaluationInputs(): { agent: PromptInput[]; actionKeys: string[] } | null {
  const { set, actionKeys } = agentPromptsStore.getState();
  const agent = promptSetToInputs(set, 'agent prompts');
  if (agent.length === 0) return null;
  const keys = actionKeys.split(',').map((key) => key.trim());
  if (keys.some((key) => key.length === 0)) throw new InvalidInputError(`The action keys "${actionKeys}" hold an empty key; write them comma-separated, e.g. cmd,command.`);
  return { agent, actionKeys: keys };
}
