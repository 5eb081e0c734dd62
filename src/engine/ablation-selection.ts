/**
 * What an ablation applies, in one form: a recipe (src/core/recipe.ts) resolved against the direction rows it
 * was given. Callers pass either a recipe with the directions file's rows (and harmless means when the recipe
 * projects), or the seed shorthand — one unit direction, a scale, targets and a block range — which is the
 * standard recipe `recipeFromShorthand` describes, applied with exactly the float32 direction given.
 *
 * The edit, the hook graph and the manifest all read the per-target direction and weight from here, so what
 * is previewed is what is exported: every target uses the float32 rounding of its float64 resolved direction.
 */
import {
  ABLATION_COMPONENTS,
  componentWeight,
  recipeFromShorthand,
  RecipeDirectionError,
  resolveRecipeDirections,
  type AblationComponent,
  type Recipe,
} from '../core/recipe';
import { InvalidInputError } from '../base/errors';

/** The seed shorthand (`--direction F --layer N --scale α --targets T --layers A-B`). */
export interface ShorthandSelection {
  direction: Float32Array; // [dModel], unit
  scale: number;
  targets: AblationComponent[];
  /** Inclusive block range for attention / MLP targets. */
  layers?: [number, number];
  recipe?: undefined;
}

/** A recipe over a directions file: `directions` [L+1][d] (or one row, a single direction used as index 0). */
export interface RecipeSelection {
  recipe: Recipe;
  directions: readonly ArrayLike<number>[]; // [L+1][dModel]
  /** The train-split harmless means [L+1][dModel]; required when the recipe projects. */
  harmlessMeans?: readonly ArrayLike<number>[];
  /** The reference (agent-style) directions, [L+1][d] or [1][d]; required when the recipe protects them. */
  reference?: readonly ArrayLike<number>[];
  direction?: undefined;
}

export type AblationSelection = ShorthandSelection | RecipeSelection;

export interface ResolvedAblation {
  recipe: Recipe;
  /** The float32 unit direction a target uses: `directionFor('embed', -1)`, `directionFor('attn', b)`. */
  directionFor(component: AblationComponent, block: number): Float32Array; // [dModel]
  /** The weight w of a target (0 = untouched). */
  weightFor(component: AblationComponent, block: number): number;
  /** Components with a non-zero weight somewhere. */
  components: AblationComponent[];
  /** The shorthand this came from, when it did (the manifest keeps its legacy fields). */
  shorthand: ShorthandSelection | null;
  dModel: number;
}

export function isShorthandSelection(selection: AblationSelection): selection is ShorthandSelection {
  return selection.recipe === undefined;
}

/**
 * Resolves a selection. `numLayers` (the model's block count, when known) checks a per-layer directions file
 * against the model. A shorthand needs `directionRow`, the row of the directions file its direction is (the
 * recipe it stands for names it): a hidden-state index, or null for a single direction, which is the one row of
 * its file, so its recipe says direction 0 (`--recipe` with direction 0 over that file is the same edit). There is
 * no default: a forgotten row must not silently record the embedding output. Errors are InvalidInputError with
 * one clear sentence.
 */
export function resolveAblation(selection: RecipeSelection, numLayers?: number): ResolvedAblation;
export function resolveAblation(selection: AblationSelection, numLayers: number | undefined, directionRow: number | null): ResolvedAblation;
export function resolveAblation(selection: AblationSelection, numLayers?: number, directionRow?: number | null): ResolvedAblation {
  if (isShorthandSelection(selection)) {
    if (directionRow === undefined) throw new TypeError('resolveAblation: a shorthand selection needs the direction row it came from (null for a single direction)');
    if (directionRow !== null && !(Number.isInteger(directionRow) && directionRow >= 0 && (numLayers === undefined || directionRow <= numLayers))) {
      throw new InvalidInputError(`direction row ${directionRow} is not a hidden-state index 0..${numLayers ?? 'L'}`);
    }
    return resolveShorthand(selection, directionRow ?? 0);
  }
  const { recipe, directions, harmlessMeans, reference } = selection;
  if (directions.length === 0) throw new InvalidInputError('no direction rows were given');
  const dModel = directions[0].length;
  for (const [name, rows] of [['direction', directions], ['harmless_mean', harmlessMeans ?? []]] as const) {
    rows.forEach((row, index) => {
      if (row.length !== dModel) throw new InvalidInputError(`${name} row ${index} has ${row.length} values, expected ${dModel}`);
      for (let i = 0; i < row.length; i++) if (!Number.isFinite(row[i])) throw new InvalidInputError(`${name} row ${index} holds a non-finite value at ${i}`);
    });
  }
  if (numLayers !== undefined && directions.length > 1 && directions.length !== numLayers + 1) {
    throw new InvalidInputError(`the directions hold ${directions.length} rows but the model has ${numLayers} layers (${numLayers + 1} expected); were they made for another model?`);
  }
  if (recipe.direction === 'per-layer' && numLayers !== undefined && directions.length !== numLayers + 1) {
    throw new InvalidInputError(`recipe direction "per-layer" needs one direction row per hidden state (${numLayers + 1}); the directions hold ${directions.length}`);
  }
  if (typeof recipe.direction === 'number' && recipe.direction > directions.length - 1) {
    throw new InvalidInputError(`recipe direction ${recipe.direction} is out of range: the directions hold rows 0..${directions.length - 1}`);
  }
  let resolved: ReturnType<typeof resolveRecipeDirections>;
  try {
    resolved = resolveRecipeDirections(recipe, directions, harmlessMeans, reference);
  } catch (error) {
    if (error instanceof RecipeDirectionError) throw new InvalidInputError(`recipe: ${error.message}`);
    throw error;
  }
  const cache = new Map<string, Float32Array>();
  return {
    recipe,
    dModel,
    shorthand: null,
    components: activeComponents(recipe, numLayers),
    weightFor: (component, block) => componentWeight(recipe, component, block),
    directionFor(component, block) {
      const key = `${component}/${block}`;
      let direction = cache.get(key);
      if (!direction) {
        try {
          direction = Float32Array.from(resolved.forTarget(component, block));
        } catch (error) {
          if (error instanceof RecipeDirectionError) throw new InvalidInputError(`recipe: ${error.message}`);
          throw error;
        }
        cache.set(key, direction);
      }
      return direction;
    },
  };
}

function resolveShorthand(selection: ShorthandSelection, layer: number): ResolvedAblation {
  const { direction, scale, targets, layers } = selection;
  if (!Number.isFinite(scale)) throw new InvalidInputError(`scale ${scale} is not a finite number`);
  if (targets.length === 0) throw new InvalidInputError('no targets chosen: use one or more of embed, attn, mlp');
  if (layers && !(Number.isInteger(layers[0]) && Number.isInteger(layers[1]) && layers[0] >= 0 && layers[0] <= layers[1])) {
    throw new InvalidInputError(`layer range ${layers[0]}-${layers[1]} is not a valid inclusive range A-B with 0 ≤ A ≤ B`);
  }
  let squaredNorm = 0;
  for (const value of direction) {
    if (!Number.isFinite(value)) throw new InvalidInputError('the direction contains NaN or Inf values');
    squaredNorm += value * value;
  }
  // Callers normalize; a vector far from unit length means the caller skipped it and the edit would be wrong.
  if (Math.abs(Math.sqrt(squaredNorm) - 1) > 1e-4) {
    throw new InvalidInputError(`the direction must be unit length (its norm is ${Math.sqrt(squaredNorm)})`);
  }
  const recipe = recipeFromShorthand({ layer, scale, targets, layers });
  return {
    recipe,
    dModel: direction.length,
    shorthand: selection,
    // The shorthand keeps its targets even at scale 0 (the edit is then byte-identical, as before).
    components: ABLATION_COMPONENTS.filter((component) => targets.includes(component)),
    weightFor: (component, block) => componentWeight(recipe, component, block),
    directionFor: () => direction,
  };
}

/** Components whose weight is not 0 in at least one block (all blocks are considered when numLayers is unknown). */
function activeComponents(recipe: Recipe, numLayers?: number): AblationComponent[] {
  return ABLATION_COMPONENTS.filter((component) => {
    const weight = recipe.components[component];
    if (weight === undefined) return false;
    if (typeof weight === 'number') return weight !== 0;
    if (numLayers === undefined) return true;
    for (let block = 0; block < numLayers; block++) if (componentWeight(recipe, component, block) !== 0) return true;
    return false;
  });
}
