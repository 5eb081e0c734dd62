/**
 * State of the recipe search panel: the settings and search space the user edits, the running search, and
 * every finished trial (as the worker reports them). No math here: trials arrive measured from the worker.
 */
import { useSyncExternalStore } from 'react';
import type { SearchParameterSpec, TrialRecord } from '../protocol/search-api';
import { Store } from './store';

export type TrialSortKey = 'trial' | 'refusalRate' | 'klFirstToken' | 'falseRefusalRate' | 'seconds';

export interface SearchState {
  trials: number;
  seed: number;
  /** Held-out prompts per set the trials are scored on (spread over the set). */
  promptsPerSet: number;
  maxNewTokens: number;
  /** The KL bound of the suggested trial (lowest refusal rate with KL ≤ bound). */
  klBound: number;
  /** The editable space; null until an analysis gives the directions. `spaceFor` names the analysis it was built for. */
  space: Record<string, SearchParameterSpec> | null;
  spaceFor: string;
  spaceNotes: string[];
  task: { phase: 'idle' | 'running' | 'done' | 'cancelled' | 'failed'; fraction: number; detail: string };
  results: TrialRecord[];
  /** The trial whose recipe was made current by a click (plot or table). */
  selectedTrial: number | null;
  sort: { key: TrialSortKey; descending: boolean };
}

export const initialSearchState: SearchState = {
  trials: 20,
  seed: 0,
  promptsPerSet: 16,
  maxNewTokens: 48,
  klBound: 0.5,
  space: null,
  spaceFor: '',
  spaceNotes: [],
  task: { phase: 'idle', fraction: 0, detail: '' },
  results: [],
  selectedTrial: null,
  sort: { key: 'trial', descending: false },
};

export const searchStore = new Store<SearchState>(initialSearchState);

export function useSearch<Slice>(select: (state: SearchState) => Slice): Slice {
  return useSyncExternalStore(searchStore.subscribe, () => select(searchStore.getState()));
}
