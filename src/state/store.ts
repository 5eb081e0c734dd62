/**
 * The workbench's one store: plain immutable state, `setState` with a partial update, and React's
 * useSyncExternalStore for subscriptions. No math here: results arrive finished from the analysis worker.
 */
import { useSyncExternalStore } from 'react';
import type { AnalysisResult, BackendChoice, BackendProbe, FolderDescriptor, ModelInspection, PromptSets, ResolvedBackend } from '../protocol/analysis-api';

export type PromptSetName = 'harmful' | 'harmless' | 'referenceA' | 'referenceB';

export interface PromptSetState {
  text: string; // one user prompt per line
  system: string; // shared system prompt, '' for none
  source: string; // where the text came from ("defaults: harmful.train.jsonl", "typed", a file name)
}

export interface ModelState {
  phase: 'none' | 'loading' | 'ready' | 'failed';
  label: string; // "demo model" or the folder's name
  inspection: ModelInspection | null;
  message: string; // progress or failure text for the status line
}

export interface CaptureState {
  phase: 'idle' | 'running' | 'done' | 'cancelled' | 'failed';
  fraction: number; // 0..1
  detail: string;
}

export interface ErrorState {
  name: string;
  message: string;
}

export interface WorkbenchState {
  backendChoice: BackendChoice;
  webGpu: BackendProbe | null;
  model: ModelState;
  /** The open folder as the workers receive it (export reads its safetensors from here). */
  modelFolder: FolderDescriptor | null;
  prompts: Record<PromptSetName, PromptSetState>;
  promptDefaultsNote: string;
  /** A/B presets from public/prompts/index.json, and the one last applied ('' once edited). */
  promptPresets: { id: string; label: string }[];
  promptPreset: string;
  /** A direction file used as the reference for the cosine plot (test id `reference.file-input`). */
  referenceDirection: { file: string; bytes: Uint8Array } | null;
  /** A direction file imported for export/chat (`direction.file-input`). */
  importedDirection: { file: string; bytes: Uint8Array } | null;
  position: number;
  heldOutFraction: number;
  seed: number;
  capture: CaptureState;
  result: AnalysisResult | null;
  /** The prompts the result was computed from (histogram bins and misclassified rows name them). */
  resultPrompts: PromptSets | null;
  /** Where the result came from when it was not captured in this page: a restored session or a loaded run card. */
  resultOrigin: string | null;
  resultBackend: ResolvedBackend | null;
  selectedLayer: number | null;
  error: ErrorState | null;
  notes: string[];
}

const emptyPromptSet: PromptSetState = { text: '', system: '', source: '' };

export const initialState: WorkbenchState = {
  backendChoice: 'auto',
  webGpu: null,
  model: { phase: 'none', label: '', inspection: null, message: 'No model loaded.' },
  modelFolder: null,
  prompts: { harmful: emptyPromptSet, harmless: emptyPromptSet, referenceA: emptyPromptSet, referenceB: emptyPromptSet },
  promptDefaultsNote: '',
  promptPresets: [],
  promptPreset: '',
  referenceDirection: null,
  importedDirection: null,
  position: -1,
  heldOutFraction: 0.25,
  seed: 0,
  capture: { phase: 'idle', fraction: 0, detail: '' },
  result: null,
  resultPrompts: null,
  resultOrigin: null,
  resultBackend: null,
  selectedLayer: null,
  error: null,
  notes: [],
};

export class Store<State> {
  private listeners = new Set<() => void>();
  constructor(private state: State) {}
  getState = (): State => this.state;
  setState = (update: Partial<State> | ((state: State) => Partial<State>)): void => {
    const partial = typeof update === 'function' ? update(this.state) : update;
    this.state = { ...this.state, ...partial };
    for (const listener of this.listeners) listener();
  };
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
}

export const workbenchStore = new Store<WorkbenchState>(initialState);

/** Subscribes a component to one slice; re-renders only when that slice changes identity. */
export function useWorkbench<Slice>(select: (state: WorkbenchState) => Slice): Slice {
  return useSyncExternalStore(workbenchStore.subscribe, () => select(workbenchStore.getState()));
}
