/**
 * `--recipe FILE` for the commands that ablate (ablate, eval): the recipe read and checked against the model
 * and the directions file, or the old flags as its shorthand. The two cannot be mixed.
 */
import { RECIPE_FIELDS } from '../core/recipe';
import { Sha256 } from '../core/sha256';
import { parseDirectionFile } from '../formats/direction-file';
import type { ModelConfig } from '../formats/hf-folder';
import { parseRecipeFile } from '../formats/recipe-file';
import type { AblationSelection } from '../engine/ablation-selection';
import type { DirectionProvenance } from '../engine/ablate-manifest';
import { recipeFromFile, shorthandFromFile } from '../engine/selection-from-file';
import { InvalidInputError } from '../base/errors';
import { parseAblationOptions, readInputFile } from './common';

export const RECIPE_OPTION = { recipe: { type: 'string' } } as const;

const SHORTHAND_FLAGS = ['layer', 'scale', 'targets', 'layers'] as const;

export interface CommandSelection {
  selection: AblationSelection;
  directionSource: DirectionProvenance;
}

/** The selection the command's flags describe; everything is read and validated, nothing is written. */
export async function readCommandSelection(values: Record<string, unknown>, directionPath: string, config: ModelConfig): Promise<CommandSelection> {
  const directionBytes = await readInputFile(directionPath, 'direction file');
  const sha256 = new Sha256().update(directionBytes).hexDigest();
  const parsed = parseDirectionFile(directionPath, directionBytes);
  const recipePath = values.recipe as string | undefined;
  if (recipePath === undefined) {
    const { layer, scale, targets, layers } = parseAblationOptions(values);
    const { selection } = shorthandFromFile(parsed, config, { layer, scale, targets, ...(layers ? { layers } : {}) });
    return { selection, directionSource: { file: directionPath, sha256, layer: layer ?? null } };
  }
  const mixed = SHORTHAND_FLAGS.filter((flag) => values[flag] !== undefined);
  if (mixed.length > 0) {
    throw new InvalidInputError(`--recipe replaces ${mixed.map((flag) => `--${flag}`).join(', ')}; put those settings in ${recipePath} instead`);
  }
  const recipe = parseRecipeFile(recipePath, await readInputFile(recipePath, 'recipe file'), config.numLayers);
  const { selection, row } = recipeFromFile(parsed, config, recipe, recipePath);
  return { selection, directionSource: { file: directionPath, sha256, layer: row } };
}

/** `--help` text for recipes, from the one schema (RECIPE_FIELDS) the README and the UI also follow. */
export const RECIPE_HELP = [
  'Ablation recipes (recipe.json):',
  '  {"method": "norm-preserving", "direction": 14.4, "projection": "biprojected",',
  '   "components": {"embed": 0, "attn": {"max": 1.2, "peak": 20.5, "min": 0.3, "distance": 8}, "mlp": 1.0}}',
  ...Object.entries(RECIPE_FIELDS).map(([name, field]) => {
    const fallback = field.default === null ? 'required' : `default ${JSON.stringify(field.default)}`;
    return `  ${name} (${fallback}): ${field.description}`;
  }),
  '  Kernel weight in block b: δ = |b − peak|; δ > distance → 0 (untouched), else max + (δ/distance)(min − max).',
].join('\n');
