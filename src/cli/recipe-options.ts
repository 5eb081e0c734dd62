/**
 * `--recipe FILE` for the commands that ablate (ablate, eval): the recipe read and checked against the model
 * and the directions file, or the old flags as its shorthand. The two cannot be mixed.
 */
import { RECIPE_FIELDS } from '../core/recipe';
import { Sha256 } from '../core/sha256';
import { parseDirectionFile, selectDirection } from '../formats/direction-file';
import type { ModelConfig } from '../formats/hf-folder';
import { parseRecipeFile } from '../formats/recipe-file';
import type { AblationSelection } from '../engine/ablation-selection';
import type { DirectionProvenance } from '../engine/ablate-manifest';
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
    const direction = selectDirection(parsed, { layer, hiddenSize: config.hiddenSize });
    return { selection: { direction, scale, targets, layers }, directionSource: { file: directionPath, sha256, layer: layer ?? null } };
  }
  const mixed = SHORTHAND_FLAGS.filter((flag) => values[flag] !== undefined);
  if (mixed.length > 0) {
    throw new InvalidInputError(`--recipe replaces ${mixed.map((flag) => `--${flag}`).join(', ')}; put those settings in ${recipePath} instead`);
  }
  const recipe = parseRecipeFile(recipePath, await readInputFile(recipePath, 'recipe file'), config.numLayers);
  if (recipe.projection !== 'none' && !parsed.harmlessMeans) {
    throw new InvalidInputError(
      `${directionPath}: holds no harmless_mean, which the projection "${recipe.projection}" of ${recipePath} needs; use the directions.safetensors abliterate analyze writes`,
      { file: directionPath },
    );
  }
  if (parsed.rows[0].length !== config.hiddenSize) {
    throw new InvalidInputError(`${directionPath}: the directions have ${parsed.rows[0].length} values but ${config.file} says hidden_size ${config.hiddenSize}`, { file: directionPath });
  }
  const layer = typeof recipe.direction === 'number' && Number.isInteger(recipe.direction) && parsed.perLayer ? recipe.direction : null;
  return {
    selection: { recipe, directions: parsed.rows, harmlessMeans: parsed.harmlessMeans },
    directionSource: { file: directionPath, sha256, layer },
  };
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
