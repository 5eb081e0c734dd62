/**
 * `recipe.json` (docs/contracts.md "Ablation recipe"): read and written here, validated by the recipe core. Every
 * problem becomes an InvalidFileError naming the file and the offending field.
 */
import { parseRecipe, recipeToJson, RecipeError, type Recipe } from '../core/recipe';
import { InvalidFileError } from '../base/errors';
import { isJsonObject, JsonSyntaxError, parseStrictJson, toPlainJson } from './strict-json';

export const RECIPE_FILE = 'recipe.json';

/** Parses recipe.json bytes; `numLayers` (L, when known) bounds the direction index to 0..L. */
export function parseRecipeFile(file: string, bytes: Uint8Array, numLayers?: number): Recipe {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidFileError(file, 'is not UTF-8 text; a recipe is a JSON object');
  }
  let value;
  try {
    // Strict: duplicate keys would let two readers disagree about the recipe.
    value = parseStrictJson(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new InvalidFileError(file, `is not valid JSON (${error.message})`);
    throw error;
  }
  if (!isJsonObject(value)) throw new InvalidFileError(file, 'must hold a JSON object {"method", "direction", "projection", "components"}');
  try {
    return parseRecipe(toPlainJson(value), numLayers);
  } catch (error) {
    if (error instanceof RecipeError) throw new InvalidFileError(file, error.message, { field: error.field });
    throw error;
  }
}

/** The recipe.json bytes of a recipe (canonical field order, 2-space indent, trailing newline). */
export function encodeRecipeFile(recipe: Recipe): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(recipeToJson(recipe), null, 2)}\n`);
}
