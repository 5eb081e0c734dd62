/**
 * A session: everything a researcher would lose on reload — the model's identity, the prompt sets, the capture
 * settings and result (directions, projections, report), the ablation settings, the evaluation and the sweep —
 * as one structured-cloneable value. IndexedDB keeps the latest one (session-persist.ts) and the run card
 * carries it in a zip (run-card.ts). Restoring one never needs the model: plots and tables come back as data.
 */
import type { AnalysisResult, PromptSets } from '../protocol/analysis-api';
import { parseRecipe, recipeToJson, type AblationComponent } from '../core/recipe';
import type { EvaluationResult, SweepResult } from '../protocol/chat-api';
import { ablationStore, type AblationState } from './ablation-store';
import { chatStore, type HeldOutSet } from './chat-store';
import { workbenchStore, type PromptSetName, type PromptSetState } from './store';

export const SESSION_FORMAT = 'abliteration-workbench-session';
export const SESSION_VERSION = 1;

export interface SessionSnapshot {
  format: typeof SESSION_FORMAT;
  version: number;
  savedAt: string; // ISO time
  model: { label: string; name: string; fingerprint: string; modelType: string; numLayers: number; hiddenSize: number } | null;
  prompts: Record<PromptSetName, PromptSetState>;
  promptPreset: string;
  settings: { position: number; heldOutFraction: number; seed: number };
  result: AnalysisResult | null;
  resultPrompts: PromptSets | null;
  selectedLayer: number | null;
  /** The current ablation: the shorthand's numbers, and a whole recipe when one is current (recipe.json's value). */
  ablation: { scale: number; targets: AblationComponent[]; blockRange?: string; recipe?: { recipe: Record<string, unknown>; label: string; origin: 'file' | 'search' } | null };
  heldOut: { harmful: HeldOutSet; harmless: HeldOutSet };
  evaluation: EvaluationResult | null;
  sweep: SweepResult | null;
}

export function takeSnapshot(): SessionSnapshot {
  const state = workbenchStore.getState();
  const chat = chatStore.getState();
  const ablation = ablationStore.getState();
  const inspection = state.model.phase === 'ready' ? state.model.inspection : null;
  return {
    format: SESSION_FORMAT,
    version: SESSION_VERSION,
    savedAt: new Date().toISOString(),
    model: inspection
      ? { label: state.model.label, name: inspection.name, fingerprint: inspection.fingerprint, modelType: inspection.modelType, numLayers: inspection.numLayers, hiddenSize: inspection.hiddenSize }
      : null,
    prompts: state.prompts,
    promptPreset: state.promptPreset,
    settings: { position: state.position, heldOutFraction: state.heldOutFraction, seed: state.seed },
    result: state.result,
    resultPrompts: state.resultPrompts,
    selectedLayer: state.selectedLayer,
    ablation: {
      scale: ablation.scale,
      targets: [...ablation.targets],
      blockRange: ablation.blockRange,
      recipe: ablation.recipe ? { recipe: recipeToJson(ablation.recipe.recipe), label: ablation.recipe.label, origin: ablation.recipe.origin } : null,
    },
    heldOut: chat.heldOut,
    evaluation: chat.evaluation.result,
    sweep: chat.sweep.result,
  };
}

/** A snapshot's shape, checked before any of it reaches the stores (a run card is a user-supplied file). */
export function isSessionSnapshot(value: unknown): value is SessionSnapshot {
  if (typeof value !== 'object' || value === null) return false;
  const snapshot = value as Partial<SessionSnapshot>;
  return snapshot.format === SESSION_FORMAT && typeof snapshot.version === 'number' && snapshot.version <= SESSION_VERSION && typeof snapshot.prompts === 'object' && snapshot.prompts !== null && typeof snapshot.settings === 'object';
}

/** Puts a snapshot into the stores; `origin` says where it came from ("the last session", "run card x.zip"). */
export function applySnapshot(snapshot: SessionSnapshot, origin: string): void {
  const hasResult = snapshot.result !== null;
  workbenchStore.setState({
    prompts: snapshot.prompts,
    promptPreset: snapshot.promptPreset,
    position: snapshot.settings.position,
    heldOutFraction: snapshot.settings.heldOutFraction,
    seed: snapshot.settings.seed,
    result: snapshot.result,
    resultPrompts: snapshot.resultPrompts,
    resultOrigin: hasResult ? `${origin}${snapshot.model ? ` (${snapshot.model.label}, saved ${snapshot.savedAt.replace('T', ' ').slice(0, 16)} UTC)` : ''}` : null,
    resultBackend: snapshot.result?.backend ?? null,
    selectedLayer: snapshot.selectedLayer,
    capture: hasResult ? { phase: 'done', fraction: 1, detail: `Restored from ${origin}` } : { phase: 'idle', fraction: 0, detail: '' },
  });
  ablationStore.setState({ scale: snapshot.ablation.scale, targets: snapshot.ablation.targets, blockRange: snapshot.ablation.blockRange ?? '', recipe: restoredRecipe(snapshot.ablation.recipe) });
  chatStore.setState((chat) => ({
    heldOut: snapshot.heldOut,
    evaluation: snapshot.evaluation ? { phase: 'done', fraction: 1, detail: `restored from ${origin}`, result: snapshot.evaluation } : chat.evaluation,
    sweep: snapshot.sweep ? { phase: 'done', fraction: 1, detail: `restored from ${origin}`, result: snapshot.sweep } : chat.sweep,
  }));
}

/** The snapshot's current recipe, checked as recipe.json is; one that does not parse is not restored (the shorthand is). */
function restoredRecipe(saved: SessionSnapshot['ablation']['recipe']): AblationState['recipe'] {
  if (!saved) return null;
  try {
    return { recipe: parseRecipe(saved.recipe), label: saved.label, origin: saved.origin === 'search' ? 'search' : 'file' };
  } catch {
    return null;
  }
}
