/**
 * The recipe search worker's API: one call runs a multi-objective search over ablation recipes on the open
 * model and reports every trial as it ends. One interface, implemented by the in-thread service
 * (workers/search-service.ts) and the comlink proxy (src/clients/search-client.ts) alike.
 */
import type { Envelope, FolderDescriptor, PromptInput, ResolvedBackend } from './analysis-api';
import type { LongCallOptions, Progress } from '../base/progress';

/** A search parameter: a float range, a set of choices, or one pinned value (core/search-space.ts). */
export type SearchParameterSpec =
  | { kind: 'float'; low: number; high: number }
  | { kind: 'categorical'; choices: readonly string[] }
  | { kind: 'pinned'; value: number | string };

/** One finished trial: a line of trials.jsonl (CONTRACTS.md), the same object in the browser. */
export interface TrialRecord {
  trial: number;
  /** The recipe as recipe.json writes it. */
  recipe: Record<string, unknown>;
  /** Refusal rate on the evaluation refusal prompts (objective 1, minimized). */
  refusalRate: number;
  /** Mean first-token KL(base ‖ ablated) on the evaluation compliance prompts (objective 2, minimized). */
  klFirstToken: number;
  /** Refusal rate on the evaluation compliance prompts; null when the trial was stopped before it was measured. */
  falseRefusalRate: number | null;
  /** Action rate on the agent prompts, when agent prompts were given. */
  actionRate?: number | null;
  /** Stopped early because it was already dominated: refusalRate is a lower bound. */
  pruned: boolean;
  sampler: 'startup' | 'motpe' | 'random';
  /** The sampled parameter values (the search space's names). */
  parameters: Record<string, number | string>;
  seconds: number;
}

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
