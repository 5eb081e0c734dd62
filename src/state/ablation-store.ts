/**
 * The current ablation's settings (src/state/ablation.ts derives and acts on them): a store of its own, with no
 * actions, so sessions and run cards can read and restore it without the page's workers.
 */
import { useSyncExternalStore } from 'react';
import { ABLATION_COMPONENTS, type AblationComponent, type Recipe } from '../core/recipe';
import { Store } from './store';

export type DirectionChoice = 'analysis' | 'file';

export interface AblationState {
  /** Which rows the ablation uses when both exist: the analysis' or the imported file's. */
  directionChoice: DirectionChoice;
  /** The shorthand's numbers (`--scale`, `--targets`, `--layers A-B` as typed; '' = every block). */
  scale: number;
  targets: AblationComponent[];
  blockRange: string;
  /** A whole recipe made current (from a file or a search trial); null = the shorthand above with the selected layer. */
  recipe: { recipe: Recipe; label: string; origin: 'file' | 'search' } | null;
}

export const initialAblationState: AblationState = { directionChoice: 'analysis', scale: 1, targets: [...ABLATION_COMPONENTS], blockRange: '', recipe: null };

export const ablationStore = new Store<AblationState>(initialAblationState);

export function useAblation<Slice>(select: (state: AblationState) => Slice): Slice {
  return useSyncExternalStore(ablationStore.subscribe, () => select(ablationStore.getState()));
}

