/**
 * State of the chat and evaluation panels (a Store of its own beside the workbench store, which it reads but
 * never writes except through the workbench's actions). No math here: replies, rates and KL arrive finished.
 */
import { useSyncExternalStore } from 'react';
import type { AblationComponent } from '../core/recipe';
import type { PromptInput, FolderDescriptor } from '../protocol/analysis-api';
import {
  DEFAULT_CHAT_SETTINGS,
  type ChatSettings,
  type ChatSide,
  type EvaluationResult,
  type ModelsInfo,
  type RefusalCheck,
  type SweepResult,
} from '../protocol/chat-api';
import { Store } from './store';

export type ReplyState = 'waiting' | 'streaming' | 'done' | 'stopped' | 'failed';

export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
  /** Assistant turns only. */
  state?: ReplyState;
  refusal?: RefusalCheck;
  /** "34 tokens · 0.41 s · end of turn" */
  detail?: string;
}

export interface TaskState {
  phase: 'idle' | 'running' | 'done' | 'cancelled' | 'failed';
  fraction: number;
  detail: string;
}

export interface HeldOutSet {
  prompts: PromptInput[];
  /** Where they came from: "held-out: shell_nosys.test.jsonl" (a preset's test file), an imported file's name, "held-out split of A: …". */
  source: string;
  /** True once the user imported a file: presets no longer replace it. */
  imported: boolean;
  /**
   * `file`: imported into the evaluation panel; `preset`: a preset's held-out file; `split`: the held-out split
   * of the A/B prompt set (evaluation-sets.ts). Absent in sessions saved before it existed.
   */
  origin?: 'file' | 'preset' | 'split';
}

/** A preset's held-out file, with the editor source label of the set it belongs to ("defaults: x.train.jsonl"). */
export type PresetHeldOut = HeldOutSet & { forSource: string };

export interface ChatState {
  /** Greedy, or sampling with temperature/top-p/seed. */
  decoding: 'greedy' | 'sample';
  settings: ChatSettings;
  systemPrompt: string;
  /** The terminal-agent system prompt of the default prompt sets (public/prompts), when found. */
  agentPreset: string | null;
  input: string;
  sides: Record<ChatSide, ChatTurn[]>;
  generating: boolean;
  /** A short message under the input ("still generating…", "stopped"); test id chat.notice. */
  notice: string | null;
  /** Ablation of the right-hand side. */
  ablatedSource: 'hooks' | 'folder';
  directionChoice: 'analysis' | 'file';
  scale: number;
  targets: AblationComponent[];
  ablatedFolder: { descriptor: FolderDescriptor; key: string } | null;
  /** A whole recipe made current (a search trial's), used by the hooks instead of the selected layer's direction. */
  recipe: { recipe: Record<string, unknown>; label: string } | null;
  models: { phase: 'idle' | 'loading' | 'ready' | 'failed'; info: ModelsInfo | null; detail: string };
  heldOut: { harmful: HeldOutSet; harmless: HeldOutSet };
  /** The chosen preset's held-out `.test` files, used while A (B) is that preset's set (evaluation-sets.ts). */
  presetHeldOut: { harmful: PresetHeldOut | null; harmless: PresetHeldOut | null };
  /** Refusal markers from a file; null = docs/definitions.md's default list (the CLI's default). */
  markers: { list: string[]; source: string } | null;
  evalMaxNewTokens: number;
  evaluation: TaskState & { result: EvaluationResult | null };
  sweep: TaskState & { result: SweepResult | null };
}

const emptySet: HeldOutSet = { prompts: [], source: '', imported: false };
const idleTask: TaskState = { phase: 'idle', fraction: 0, detail: '' };

/** The CLI's default reply length for evaluation (abliterate eval --max-new-tokens). */
export const EVALUATION_MAX_NEW_TOKENS = 48;

export const initialChatState: ChatState = {
  decoding: 'greedy',
  settings: { ...DEFAULT_CHAT_SETTINGS },
  systemPrompt: '',
  agentPreset: null,
  input: '',
  sides: { base: [], ablated: [] },
  generating: false,
  notice: null,
  ablatedSource: 'hooks',
  directionChoice: 'analysis',
  scale: 1,
  targets: ['embed', 'attn', 'mlp'],
  ablatedFolder: null,
  recipe: null,
  models: { phase: 'idle', info: null, detail: '' },
  heldOut: { harmful: emptySet, harmless: emptySet },
  presetHeldOut: { harmful: null, harmless: null },
  markers: null,
  evalMaxNewTokens: EVALUATION_MAX_NEW_TOKENS,
  evaluation: { ...idleTask, result: null },
  sweep: { ...idleTask, result: null },
};

export const chatStore = new Store<ChatState>(initialChatState);

export function useChat<Slice>(select: (state: ChatState) => Slice): Slice {
  return useSyncExternalStore(chatStore.subscribe, () => select(chatStore.getState()));
}
