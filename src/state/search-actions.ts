/**
 * Recipe search actions: the default space from the analysis (core's searchSpaceForAnalysis), edits to it,
 * running and stopping the search in the search worker, and choosing a trial. Trials are appended as the
 * worker reports them, so the Pareto plot grows live; a stopped search keeps its finished trials.
 */
import { searchClient } from '../clients/search-client';
import { paretoFront } from '../core/pareto';
import { RECIPE_PROJECTIONS } from '../core/recipe';
import { DIRECTION_MODES, searchSpaceForAnalysis, type SearchSpace } from '../core/search-space';
import type { PromptInput } from '../protocol/analysis-api';
import { CancelledError, InvalidInputError } from '../base/errors';
import type { SearchParameterSpec, TrialRecord } from '../protocol/search-api';
import { reportError } from './actions';
import { currentModels } from './chat-actions';
import { chatStore } from './chat-store';
import { searchStore, type SearchState, type TrialSortKey } from './search-store';
import { workbenchStore } from './store';

/**
 * The browser search offers the standard method only: the norm-preserving factors come from the safetensors
 * weights, which a folder opened in the browser (often ONNX only) may not have. The CLI offers both.
 */
const SEARCH_METHODS = ['standard'] as const;
/** The browser analysis keeps no harmless means, so the projections that need them are not offered here. */
const PARAMETER_CHOICES: Record<string, readonly string[]> = { directionMode: DIRECTION_MODES, method: SEARCH_METHODS, projection: RECIPE_PROJECTIONS.filter((projection) => projection === 'none') };

let controller: AbortController | null = null;

function analysisKey(): string {
  const result = workbenchStore.getState().result;
  return result ? `${result.report.numLayers}:${result.reportText.length}:${result.report.bestLayer}` : '';
}

/** Builds the default space for the current analysis unless the user's space already belongs to it. */
export function ensureSearchSpace(): void {
  const result = workbenchStore.getState().result;
  const key = analysisKey();
  if (!result || searchStore.getState().spaceFor === key) return;
  try {
    const { space, notes } = searchSpaceForAnalysis(result.report.numLayers, result.report.layers, result.directions, { methods: SEARCH_METHODS, harmlessMeans: false });
    searchStore.setState({ space: space as Record<string, SearchParameterSpec>, spaceFor: key, spaceNotes: notes });
  } catch (error) {
    reportError(error);
  }
}

export function updateSearch(update: Partial<SearchState>): void {
  searchStore.setState(update);
}

export function setParameter(name: string, spec: SearchParameterSpec): void {
  searchStore.setState((state) => (state.space ? { space: { ...state.space, [name]: spec } } : {}));
}

export function sortTrials(key: TrialSortKey): void {
  searchStore.setState((state) => ({ sort: { key, descending: state.sort.key === key ? !state.sort.descending : false } }));
}

/** Every `count`-th prompt spread over the set, as the CLI's sweep samples. */
function spread(prompts: readonly PromptInput[], count: number): PromptInput[] {
  if (prompts.length <= count) return [...prompts];
  return Array.from({ length: count }, (_, index) => prompts[Math.floor((index * prompts.length) / count)]!);
}

export async function runSearch(): Promise<void> {
  if (controller) return;
  const local = new AbortController();
  controller = local;
  searchStore.setState({ task: { phase: 'running', fraction: 0, detail: 'loading the model…' }, results: [], selectedTrial: null });
  try {
    const result = workbenchStore.getState().result;
    if (!result) throw new InvalidInputError('The search needs the per-layer directions: run the capture (step 3) first.');
    ensureSearchSpace();
    const state = searchStore.getState();
    if (!state.space) throw new InvalidInputError('No search space yet: run the capture (step 3) first.');
    if (!Number.isInteger(state.trials) || state.trials < 1) throw new InvalidInputError(`The number of trials must be a whole number ≥ 1, got ${state.trials}.`);
    const models = currentModels();
    const { heldOut, markers } = chatStore.getState();
    if (heldOut.harmful.prompts.length === 0) throw new InvalidInputError('No held-out refusal prompts to score the trials on: import a file for A in the evaluation panel.');
    if (heldOut.harmless.prompts.length === 0) throw new InvalidInputError('No held-out compliance prompts (needed for the first-token KL): import a file for B in the evaluation panel.');
    const search = await searchClient().search(
      {
        base: models.base,
        baseKey: models.baseKey,
        backend: models.backend,
        directions: result.directions,
        harmlessMeans: null,
        harmful: spread(heldOut.harmful.prompts, state.promptsPerSet),
        harmless: spread(heldOut.harmless.prompts, state.promptsPerSet),
        space: state.space as SearchSpace,
        trials: state.trials,
        seed: state.seed,
        maxNewTokens: state.maxNewTokens,
        ...(markers ? { markers: markers.list } : {}),
      },
      {
        signal: local.signal,
        onTrial: (trial: TrialRecord) => searchStore.setState((current) => ({ results: [...current.results, trial] })),
        onProgress: (event) => {
          if (event.status === 'progress') searchStore.setState((current) => (current.task.phase === 'running' ? { task: { ...current.task, fraction: Math.max(current.task.fraction, event.fraction), detail: event.detail ?? current.task.detail } } : {}));
        },
      },
    );
    const finished = `${search.trials.length} trials in ${search.seconds.toFixed(1)} s, ${search.pareto.length} on the Pareto front`;
    searchStore.setState({ results: search.trials, task: { phase: search.cancelled ? 'cancelled' : 'done', fraction: 1, detail: search.cancelled ? `stopped: ${finished}` : `done: ${finished}` } });
  } catch (error) {
    const cancelled = error instanceof CancelledError || local.signal.aborted;
    searchStore.setState((state) => ({ task: { ...state.task, phase: cancelled ? 'cancelled' : 'failed', detail: cancelled ? 'stopped' : (error as Error).message } }));
    if (!cancelled) reportError(error);
  } finally {
    controller = null;
  }
}

export function cancelSearch(): void {
  controller?.abort();
}

/** Makes a trial's recipe the current one: the chat's and evaluation's ablated side use it from now on. */
export function selectTrial(trial: number): void {
  const record = searchStore.getState().results.find((entry) => entry.trial === trial);
  if (!record) return;
  searchStore.setState({ selectedTrial: trial });
  chatStore.setState({ recipe: { recipe: record.recipe, label: `recipe of search trial ${trial}` }, ablatedSource: 'hooks' });
}

/** The trial numbers on the Pareto front of the finished trials. */
export function paretoTrialNumbers(trials: readonly TrialRecord[]): Set<number> {
  return new Set(paretoFront(trials.map((trial) => [trial.refusalRate, trial.klFirstToken])).map((index) => trials[index]!.trial));
}

/** The lowest refusal rate among Pareto trials with KL ≤ bound (ties: lower KL); none within: the lowest KL. */
export function suggestedTrial(trials: readonly TrialRecord[], klBound: number): TrialRecord | null {
  const front = [...paretoTrialNumbers(trials)].map((number) => trials.find((trial) => trial.trial === number)!);
  if (front.length === 0) return null;
  const within = front.filter((trial) => trial.klFirstToken <= klBound).sort((a, b) => a.refusalRate - b.refusalRate || a.klFirstToken - b.klFirstToken);
  return within[0] ?? [...front].sort((a, b) => a.klFirstToken - b.klFirstToken)[0]!;
}

export function sortedTrials(trials: readonly TrialRecord[], sort: { key: TrialSortKey; descending: boolean }): TrialRecord[] {
  const value = (trial: TrialRecord) => trial[sort.key] ?? Infinity;
  return [...trials].sort((a, b) => (value(a) - value(b)) * (sort.descending ? -1 : 1) || a.trial - b.trial);
}

/** The allowed values of a choice parameter, or null for a number. */
export function parameterChoices(name: string): readonly string[] | null {
  return PARAMETER_CHOICES[name] ?? null;
}
