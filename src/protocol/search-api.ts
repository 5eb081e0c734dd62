/**
 * The recipe search worker's API: one call runs a multi-objective search over ablation recipes on the open
 * model and reports every trial as it ends. One interface, implemented by the in-thread service
 * (workers/search-service.ts) and the comlink proxy (src/clients/search-client.ts) alike.
 */
import type { FolderDescriptor, PromptInput, ResolvedBackend } from './analysis-api';
import type { Envelope } from './envelope';
import type { LongCallOptions, Progress } from '../base/progress';
import type { TrialRecord } from '../engine/recipe-search';

export type { TrialRecord } from '../engine/recipe-search';

/** A search parameter: a float range, a set of choices, or one pinned value (core/search-space.ts). */
export type SearchParameterSpec =
  | { kind: 'float'; low: number; high: number }
  | { kind: 'categorical'; choices: readonly string[] }
  | { kind: 'pinned'; value: number | string };

export interface SearchRequest {
  base: FolderDescriptor;
  /** Identifies the base folder's content. */
  baseKey: string;
  backend: ResolvedBackend;
  /** Unit directions of the analysis, one row per hidden-state index. */
  directions: Float32Array[]; // [L + 1] × [dModel]
  /** Train-split harmless means (the projections need them); null: projection stays "none". */
  harmlessMeans: Float32Array[] | null; // [L + 1] × [dModel]
  /** Evaluation prompts: refusal rate on `harmful`, first-token KL and false refusals on `harmless`. */
  harmful: PromptInput[];
  harmless: PromptInput[];
  space: Record<string, SearchParameterSpec>;
  trials: number;
  seed: number;
  maxNewTokens: number;
  markers?: string[];
  /** Finished trials to continue from. */
  previous?: TrialRecord[];
}

export interface SearchResult {
  trials: TrialRecord[];
  /** Trial numbers of the non-dominated trials, ascending refusal rate. */
  pareto: number[];
  cancelled: boolean;
  seconds: number;
}

export interface SearchCallOptions extends LongCallOptions {
  onTrial?: (trial: TrialRecord) => void;
}

export interface SearchApi {
  search(request: SearchRequest, options?: SearchCallOptions): Promise<SearchResult>;
}

export interface SearchWorkerEndpoint {
  search(callId: number, request: SearchRequest, onTrial?: (trial: TrialRecord) => void, onProgress?: (event: Progress) => void): Promise<Envelope<SearchResult>>;
  cancel(callId: number): void;
}
