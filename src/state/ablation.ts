/**
 * The current ablation: ONE value that chat, evaluation, the sweep and the export all read, so what is previewed
 * is what is exported. It is either a whole recipe made current (an imported recipe.json, a search trial), or
 * the old flags' shorthand — the selected layer's direction, scale α, targets, block range — which stands for
 * the standard recipe `recipeFromShorthand` describes. The direction rows come from the analysis or from the
 * one imported direction file (`importedDirection` in the workbench store), whichever the user chose last.
 * No math here: the recipe is resolved in the workers.
 */
import { InvalidInputError } from '../base/errors';
import { ABLATION_COMPONENTS, parseRecipe, recipeFromShorthand, recipeToJson, type AblationComponent, type Recipe } from '../core/recipe';
import { parseDirectionFile, type DirectionFile } from '../formats/direction-file';
import { encodeRecipeFile, parseRecipeFile, RECIPE_FILE } from '../formats/recipe-file';
import type { AblationShorthand, AblationSpec } from '../protocol/ablation-spec';
import { reportError } from './actions';
import { parseBlockRange } from './block-range';
import { ablationStore, type AblationState } from './ablation-store';
import { workbenchStore, type WorkbenchState } from './store';

export { parseBlockRange } from './block-range';

export { ablationStore, initialAblationState, useAblation, type AblationState, type DirectionChoice } from './ablation-store';

/** The current ablation, ready to send to a worker, with what the UI shows about it. */
export interface CurrentAblation {
  spec: AblationSpec;
  recipe: Recipe;
  /** The direction rows the recipe reads [rows][dModel] (a single direction is one row). */
  rows: Float32Array[];
  /** The train-split harmless means of an imported directions file, when it holds them. */
  harmlessMeans: Float32Array[] | null;
  /** Where the direction comes from, in words: the source and which row, fractional index or per-layer rows. */
  directionSource: string;
  /** L, the blocks the per-block weights run over (null when no model or analysis says). */
  numLayers: number | null;
}

// A file is parsed once per import (the bytes' identity), not on every render.
const parsedFiles = new WeakMap<Uint8Array, DirectionFile>();
function parsedImport(imported: NonNullable<WorkbenchState['importedDirection']>): DirectionFile {
  let parsed = parsedFiles.get(imported.bytes);
  if (!parsed) parsedFiles.set(imported.bytes, (parsed = parseDirectionFile(imported.file, imported.bytes)));
  return parsed;
}

function describeIndex(direction: Recipe['direction']): string {
  if (direction === 'per-layer') return 'per-layer: block b uses row b + 1, the embedding row 0';
  if (Number.isInteger(direction)) return `row ${direction}`;
  const low = Math.floor(direction);
  return `index ${direction} (between rows ${low} and ${low + 1})`;
}

function shorthandLabel(shorthand: AblationShorthand, source: string): string {
  return `${shorthand.row === null ? source : `layer ${shorthand.row}`} · α ${shorthand.scale} · ${shorthand.targets.join('+')}${shorthand.layers ? ` · blocks ${shorthand.layers[0]}–${shorthand.layers[1]}` : ''}`;
}

/** The current ablation, or why there is none yet (a sentence the UI shows as it is). */
export function currentAblation(
  workbench: Pick<WorkbenchState, 'result' | 'resultOrigin' | 'importedDirection' | 'selectedLayer' | 'model'> = workbenchStore.getState(),
  state: AblationState = ablationStore.getState(),
): { current: CurrentAblation | null; why: string } {
  const analysisRows = workbench.result?.directions ?? null;
  let file: DirectionFile | null;
  try {
    file = workbench.importedDirection ? parsedImport(workbench.importedDirection) : null;
  } catch (error) {
    return { current: null, why: (error as Error).message };
  }
  const useFile = file !== null && (state.directionChoice === 'file' || analysisRows === null);
  if (!useFile && analysisRows === null) return { current: null, why: 'No direction yet: run the capture (step 3) to get one per layer, or import a direction file.' };
  const rows = useFile ? file!.rows : analysisRows!;
  const perLayer = useFile ? file!.perLayer : true;
  const source = useFile ? workbench.importedDirection!.file : workbench.resultOrigin ? `the analysis (${workbench.resultOrigin})` : 'the analysis (capture)';
  const directions: AblationSpec['directions'] = useFile ? { kind: 'file', file: workbench.importedDirection!.file, bytes: workbench.importedDirection!.bytes } : { kind: 'analysis', rows: analysisRows! };
  const numLayers = workbench.model.inspection?.numLayers ?? workbench.result?.report.numLayers ?? (perLayer ? rows.length - 1 : null);
  const harmlessMeans = useFile ? (file!.harmlessMeans ?? null) : null;

  if (state.recipe) {
    const { recipe, label } = state.recipe;
    if (recipe.direction === 'per-layer' && !perLayer) return { current: null, why: `${label}: direction "per-layer" needs one direction per hidden state, but ${source} holds one direction.` };
    if (typeof recipe.direction === 'number' && recipe.direction > rows.length - 1) {
      return { current: null, why: `${label}: direction ${recipe.direction} is outside the rows 0..${rows.length - 1} of ${source}.` };
    }
    if (recipe.projection !== 'none' && !harmlessMeans) {
      return { current: null, why: `${label}: projection "${recipe.projection}" needs harmless means; import the directions.safetensors that abliterate analyze writes (the browser analysis keeps none).` };
    }
    const spec: AblationSpec = { recipe: recipeToJson(recipe), label, directions, shorthand: null };
    return { current: { spec, recipe, rows, harmlessMeans, directionSource: `${source}, ${describeIndex(recipe.direction)}`, numLayers }, why: '' };
  }

  if (state.targets.length === 0) return { current: null, why: 'Tick at least one ablation target (embed, attn, mlp).' };
  let layers: [number, number] | null;
  try {
    layers = parseBlockRange(state.blockRange);
  } catch (error) {
    return { current: null, why: (error as Error).message };
  }
  let row: number | null = null;
  if (perLayer) {
    if (workbench.selectedLayer === null) return { current: null, why: `Select a layer: ${source} holds one direction per layer.` };
    if (workbench.selectedLayer > rows.length - 1) return { current: null, why: `Layer ${workbench.selectedLayer} is outside the rows 0..${rows.length - 1} of ${source}.` };
    row = workbench.selectedLayer;
  }
  const shorthand: AblationShorthand = { row, scale: state.scale, targets: [...state.targets], layers };
  // A single direction is the one row of its file: its recipe says direction 0.
  const recipe = recipeFromShorthand({ layer: row ?? 0, scale: state.scale, targets: state.targets, ...(layers ? { layers } : {}) });
  const spec: AblationSpec = { recipe: recipeToJson(recipe), label: shorthandLabel(shorthand, source), directions, shorthand };
  return { current: { spec, recipe, rows, harmlessMeans, directionSource: `${source}, ${row === null ? 'its one direction' : `layer ${row}`}`, numLayers }, why: '' };
}

export function setAblation(update: Partial<Pick<AblationState, 'directionChoice' | 'scale' | 'blockRange'>>): void {
  ablationStore.setState(update);
}

export function toggleTarget(target: AblationComponent, on: boolean): void {
  ablationStore.setState((state) => ({ targets: ABLATION_COMPONENTS.filter((component) => (component === target ? on : state.targets.includes(component))) }));
}

/** Makes a whole recipe current (a search trial's, a restored session's); `value` is recipe.json's value. */
export function makeRecipeCurrent(value: Record<string, unknown>, label: string, origin: 'file' | 'search'): void {
  try {
    ablationStore.setState({ recipe: { recipe: parseRecipe(value, workbenchStore.getState().model.inspection?.numLayers), label, origin } });
  } catch (error) {
    reportError(error);
  }
}

/** Back to the shorthand (selected layer, scale, targets, blocks); with `origin`, only a recipe from there. */
export function clearRecipe(origin?: 'file' | 'search'): void {
  ablationStore.setState((state) => (origin === undefined || state.recipe?.origin === origin ? { recipe: null } : {}));
}

/** A recipe.json from disk becomes the current ablation; a malformed one is refused naming the field. */
export async function importRecipeFile(file: File): Promise<void> {
  try {
    const recipe = parseRecipeFile(file.name, new Uint8Array(await file.arrayBuffer()), workbenchStore.getState().model.inspection?.numLayers);
    ablationStore.setState({ recipe: { recipe, label: file.name, origin: 'file' } });
    workbenchStore.setState({ error: null });
  } catch (error) {
    reportError(error);
  }
}

/** A direction file becomes the rows of the current ablation (chat, evaluation and export alike). */
export async function importDirectionFile(file: File): Promise<void> {
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    parseDirectionFile(file.name, bytes); // a file that is not a direction is refused here, not at first use
    workbenchStore.setState({ importedDirection: { file: file.name, bytes } });
    ablationStore.setState({ directionChoice: 'file' });
  } catch (error) {
    reportError(error);
  }
}

/** The recipe.json bytes of the current ablation (null when there is none yet). */
export function currentRecipeBytes(): Uint8Array | null {
  const { current } = currentAblation();
  return current ? encodeRecipeFile(current.recipe) : null;
}

/** Downloads the current ablation's recipe.json (test id recipe.download). */
export function downloadRecipe(): void {
  const { current, why } = currentAblation();
  if (!current) {
    reportError(new InvalidInputError(why));
    return;
  }
  const url = URL.createObjectURL(new Blob([encodeRecipeFile(current.recipe) as BlobPart], { type: 'application/json' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = RECIPE_FILE;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Keeps the direction choice in step with the workbench: a new analysis selects the analysis' rows. */
export function followDirectionSources(): () => void {
  let result = workbenchStore.getState().result;
  return workbenchStore.subscribe(() => {
    const next = workbenchStore.getState().result;
    if (next !== result) {
      result = next;
      if (result) ablationStore.setState({ directionChoice: 'analysis' });
    }
  });
}
