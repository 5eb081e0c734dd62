/**
 * The recipe core: validation names each malformed field; heretic's kernel at its edges; direction choice and
 * both projections against closed forms worked out by hand on 3-dimensional vectors.
 */
import { describe, expect, it } from 'vitest';
import {
  componentWeight,
  kernelWeight,
  parseRecipe,
  RecipeDirectionError,
  RecipeError,
  recipeFromShorthand,
  recipeToJson,
  resolveRecipeDirections,
  type Recipe,
} from '../../src/core/recipe';

const EXACT = 1e-15;

function fieldOf(value: unknown, numLayers?: number): string {
  try {
    parseRecipe(value, numLayers);
  } catch (error) {
    if (error instanceof RecipeError) return error.field;
    throw error;
  }
  throw new Error('parseRecipe accepted a malformed recipe');
}

function expectVector(actual: ArrayLike<number>, expected: number[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThan(EXACT * 4);
}

describe('parseRecipe', () => {
  it('fills the documented defaults and round-trips through recipeToJson', () => {
    const recipe = parseRecipe({ direction: 14.4, components: { attn: { max: 1.2, peak: 20.5, min: 0.3, distance: 8 }, mlp: 1 } }, 28);
    expect(recipe).toEqual({ method: 'standard', direction: 14.4, projection: 'none', components: { attn: { max: 1.2, peak: 20.5, min: 0.3, distance: 8 }, mlp: 1 } });
    expect(parseRecipe(recipeToJson(recipe), 28)).toEqual(recipe);
    expect(parseRecipe({ direction: 'per-layer', method: 'norm-preserving', projection: 'biprojected' }).direction).toBe('per-layer');
  });

  it.each([
    ['a non-object', [1, 2], '(recipe)'],
    ['an unknown top-level field', { direction: 1, scale: 1 }, 'scale'],
    ['an unknown method', { direction: 1, method: 'orthogonal' }, 'method'],
    ['an unknown projection', { direction: 1, projection: 'mean' }, 'projection'],
    ['a missing direction', { method: 'standard' }, 'direction'],
    ['a direction of the wrong type', { direction: '3' }, 'direction'],
    ['a negative direction', { direction: -0.5 }, 'direction'],
    ['a direction beyond L', { direction: 28.5 }, 'direction'],
    ['components that are not an object', { direction: 1, components: [1] }, 'components'],
    ['an unknown component', { direction: 1, components: { lm_head: 1 } }, 'components.lm_head'],
    ['a kernel on the embedding', { direction: 1, components: { embed: { max: 1, peak: 0, min: 0, distance: 1 } } }, 'components.embed'],
    ['a weight that is a string', { direction: 1, components: { attn: '1' } }, 'components.attn'],
    ['a kernel with a negative distance', { direction: 1, components: { attn: { max: 1, peak: 3, min: 0, distance: -1 } } }, 'components.attn.distance'],
    ['a kernel missing max', { direction: 1, components: { mlp: { peak: 3, min: 0, distance: 1 } } }, 'components.mlp.max'],
    ['a kernel with an unknown field', { direction: 1, components: { mlp: { max: 1, peak: 3, min: 0, distance: 1, width: 2 } } }, 'components.mlp.width'],
    ['a kernel number that is not a number', { direction: 1, components: { attn: { max: 1, peak: null, min: 0, distance: 1 } } }, 'components.attn.peak'],
  ])('rejects %s, naming the field', (_title, value, field) => {
    expect(fieldOf(value, 28)).toBe(field);
  });

  it('says what is wrong in the message', () => {
    expect(() => parseRecipe({ direction: 1, method: 'orthogonal' })).toThrow(/recipe field "method": unknown value "orthogonal" \(expected "standard", "norm-preserving"\)/);
    expect(() => parseRecipe({ direction: 40 }, 28)).toThrow(/recipe field "direction": 40 is out of range \(0\.\.28\)/);
  });
});

describe("heretic's kernel", () => {
  const kernel = { max: 1.2, peak: 5, min: 0.3, distance: 4 };
  it('is max at δ = 0, min at δ = distance, linear between, 0 beyond', () => {
    expect(kernelWeight(kernel, 5)).toBe(1.2);
    expect(kernelWeight(kernel, 9)).toBeCloseTo(0.3, 15);
    expect(kernelWeight(kernel, 1)).toBeCloseTo(0.3, 15);
    expect(kernelWeight(kernel, 7)).toBeCloseTo(1.2 + 0.5 * (0.3 - 1.2), 15);
    expect(kernelWeight(kernel, 10)).toBe(0);
    expect(kernelWeight(kernel, 0)).toBe(0);
  });
  it('with distance 0 touches only a block exactly at the peak', () => {
    expect(kernelWeight({ max: 0.8, peak: 3, min: 0.1, distance: 0 }, 3)).toBe(0.8);
    expect(kernelWeight({ max: 0.8, peak: 3, min: 0.1, distance: 0 }, 4)).toBe(0);
    for (let block = 0; block < 8; block++) expect(kernelWeight({ max: 0.8, peak: 2.5, min: 0.1, distance: 0 }, block)).toBe(0);
  });
  it('componentWeight: constants, kernels, and 0 for an omitted component', () => {
    const recipe = parseRecipe({ direction: 2, components: { embed: 0.5, attn: kernel } });
    expect(componentWeight(recipe, 'embed', -1)).toBe(0.5);
    expect(componentWeight(recipe, 'attn', 5)).toBe(1.2);
    expect(componentWeight(recipe, 'mlp', 5)).toBe(0);
  });
  it('the shorthand --layers A-B is a flat kernel that is α on exactly A..B', () => {
    const recipe = recipeFromShorthand({ layer: 4, scale: 0.7, targets: ['attn', 'mlp'], layers: [2, 5] });
    expect([0, 1, 2, 3, 4, 5, 6].map((block) => componentWeight(recipe, 'attn', block))).toEqual([0, 0, 0.7, 0.7, 0.7, 0.7, 0]);
    expect(componentWeight(recipe, 'embed', -1)).toBe(0);
    expect(recipe.direction).toBe(4);
  });
});

describe('resolveRecipeDirections (closed forms on 3-vectors)', () => {
  const base = (extra: Partial<Recipe>): Recipe => ({ method: 'standard', direction: 0, projection: 'none', components: { embed: 1, attn: 1, mlp: 1 }, ...extra });
  // Rows need not be unit: they are normalized first.
  const rows = [
    [2, 0, 0],
    [0, 3, 0],
    [1, 1, 0],
  ];

  it('an integer index picks its normalized row; a fraction interpolates the normalized rows, then normalizes', () => {
    expectVector(resolveRecipeDirections(base({ direction: 1 }), rows).forTarget('attn', 0), [0, 1, 0]);
    // 0.25: 0.75·(1,0,0) + 0.25·(0,1,0) = (0.75, 0.25, 0) → (3, 1, 0)/√10
    expectVector(resolveRecipeDirections(base({ direction: 0.25 }), rows).forTarget('mlp', 1), [3 / Math.sqrt(10), 1 / Math.sqrt(10), 0]);
  });

  it("'per-layer': the embedding uses row 0, block b row b + 1", () => {
    const resolved = resolveRecipeDirections(base({ direction: 'per-layer' }), rows);
    expectVector(resolved.forTarget('embed', -1), [1, 0, 0]);
    expectVector(resolved.forTarget('attn', 0), [0, 1, 0]);
    expectVector(resolved.forTarget('mlp', 1), [Math.SQRT1_2, Math.SQRT1_2, 0]);
    expect(() => resolved.forTarget('mlp', 2)).toThrow(RecipeDirectionError);
  });

  const means = [
    [0, 0, 5],
    [1, 0, 0],
    [0, 2, 0],
  ];

  it('harmless-mean: each row loses its own layer’s mean component before the choice', () => {
    // row 2 (1,1,0) against m̂_2 = (0,1,0) → (1,0,0); row 1 (0,1,0) against (1,0,0) stays (0,1,0).
    const resolved = resolveRecipeDirections(base({ direction: 2, projection: 'harmless-mean' }), rows, means);
    expectVector(resolved.forTarget('attn', 0), [1, 0, 0]);
    // 1.5 between the projected rows (0,1,0) and (1,0,0): (0.5, 0.5, 0) → (1,1,0)/√2
    expectVector(resolveRecipeDirections(base({ direction: 1.5, projection: 'harmless-mean' }), rows, means).forTarget('embed', -1), [Math.SQRT1_2, Math.SQRT1_2, 0]);
  });

  it('biprojected: choose first, then remove the mean of the hidden state each target writes into', () => {
    const resolved = resolveRecipeDirections(base({ direction: 2, projection: 'biprojected' }), rows, means);
    // r = (1,1,0)/√2. Embedding writes into index 0, m̂_0 = (0,0,1): r unchanged.
    expectVector(resolved.forTarget('embed', -1), [Math.SQRT1_2, Math.SQRT1_2, 0]);
    // Block 0 writes into index 1, m̂_1 = (1,0,0): (0,1,0). Block 1 → index 2, m̂_2 = (0,1,0): (1,0,0).
    expectVector(resolved.forTarget('attn', 0), [0, 1, 0]);
    expectVector(resolved.forTarget('mlp', 1), [1, 0, 0]);
  });

  it('a projection without harmless means, or a direction beyond the rows, is refused with the reason', () => {
    expect(() => resolveRecipeDirections(base({ projection: 'biprojected' }), rows)).toThrow(/needs harmless_mean/);
    expect(() => resolveRecipeDirections(base({ direction: 2.5 }), rows)).toThrow(/outside 0\.\.2/);
  });
});
