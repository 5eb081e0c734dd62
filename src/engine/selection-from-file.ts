/**
 * A directions file plus what to do with it — the old flags' shorthand or a whole recipe — as the selection the
 * weight edit and the hooks take, checked against the model. `abliterate ablate/eval` and the browser export
 * both come through here, so the same file and recipe give the same edit and the same manifest.
 */
import type { AblationComponent, Recipe } from '../core/recipe';
import { selectDirection, type DirectionFile } from '../formats/direction-file';
import type { ModelConfig } from '../formats/hf-folder';
import { InvalidInputError } from '../base/errors';
import type { AblationSelection } from './ablation-selection';

export interface ShorthandChoice {
  /** Row of a per-layer file (hidden-state index); ignored for a single direction. */
  layer: number | undefined;
  scale: number;
  targets: AblationComponent[];
  layers?: [number, number];
}

export interface FileSelection {
  selection: AblationSelection;
  /** The row of the file the edit uses, as the manifest records it: null for a single direction, a fractional or per-layer recipe. */
  row: number | null;
}

/** The shorthand over a directions file: its single direction, or row `layer` of a per-layer file. */
export function shorthandFromFile(parsed: DirectionFile, config: Pick<ModelConfig, 'hiddenSize' | 'numLayers'>, choice: ShorthandChoice): FileSelection {
  const direction = selectDirection(parsed, { ...(choice.layer === undefined ? {} : { layer: choice.layer }), hiddenSize: config.hiddenSize, numLayers: config.numLayers });
  const row = parsed.perLayer ? (choice.layer ?? null) : null;
  return { selection: { direction, scale: choice.scale, targets: choice.targets, ...(choice.layers ? { layers: choice.layers } : {}) }, row };
}

/**
 * A recipe over a directions file, checked against the model before anything runs: harmless means present when
 * the recipe projects, one row per hidden-state index for a per-layer file, rows of hidden_size values.
 * `recipeName` names the recipe in errors (its file, or "the current recipe").
 */
export function recipeFromFile(parsed: DirectionFile, config: Pick<ModelConfig, 'hiddenSize' | 'numLayers' | 'file'>, recipe: Recipe, recipeName: string): FileSelection {
  const file = parsed.file;
  if (recipe.projection !== 'none' && !parsed.harmlessMeans) {
    throw new InvalidInputError(
      `${file}: holds no harmless_mean, which the projection "${recipe.projection}" of ${recipeName} needs; use the directions.safetensors abliterate analyze writes`,
      { file },
    );
  }
  if (parsed.perLayer && parsed.rows.length !== config.numLayers + 1) {
    throw new InvalidInputError(
      `${file}: holds ${parsed.rows.length} per-layer directions but the model has ${config.numLayers} layers (${config.numLayers + 1} expected); was it made for another model?`,
      { file },
    );
  }
  if (parsed.rows[0].length !== config.hiddenSize) {
    throw new InvalidInputError(`${file}: the directions have ${parsed.rows[0].length} values but ${config.file} says hidden_size ${config.hiddenSize}`, { file });
  }
  const row = typeof recipe.direction === 'number' && Number.isInteger(recipe.direction) && parsed.perLayer ? recipe.direction : null;
  return { selection: { recipe, directions: parsed.rows, ...(parsed.harmlessMeans ? { harmlessMeans: parsed.harmlessMeans } : {}) }, row };
}
