import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/core/random';
import { RecipeDirectionError, RecipeError, parseRecipe, recipeToJson, referenceOverlap, resolveRecipeDirections, type Recipe } from '../../src/core/recipe';

/** The acceptance bound: after protection the ablation direction's cosine with the reference. */
const PROTECTED_COSINE_BOUND = 1e-6;
const D = 48;
const INDICES = 5; // L + 1 for a 4-block model

function randomRows(count: number, seed: number, shift = 0): number[][] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, () => Array.from({ length: D }, () => random() - 0.5 + shift));
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}
const norm = (a: ArrayLike<number>) => Math.sqrt(dot(a, a));
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => dot(a, b) / (norm(a) * norm(b));

/** Directions that overlap the reference strongly, so protection has something to remove. */
function overlappingRows(reference: number[][], seed: number): number[][] {
  return randomRows(INDICES, seed).map((row, i) => row.map((value, k) => value + 3 * reference[Math.min(i, reference.length - 1)][k]));
}

const base: Recipe = { method: 'standard', direction: 2, projection: 'none', components: { embed: 1, attn: 1, mlp: 1 } };

describe('recipe protect field', () => {
  it('parses, defaults to absent (none) and round-trips', () => {
    expect(parseRecipe({ direction: 2 }).protect).toBeUndefined();
    const parsed = parseRecipe({ direction: 2, protect: 'reference' });
    expect(parsed.protect).toBe('reference');
    expect(parseRecipe(recipeToJson(parsed))).toEqual(parsed);
    expect(recipeToJson({ ...parsed, protect: 'none' })).not.toHaveProperty('protect');
    expect(() => parseRecipe({ direction: 2, protect: 'agent' })).toThrow(RecipeError);
    expect(() => parseRecipe({ direction: 2, protect: 'agent' })).toThrow(/recipe field "protect": unknown value "agent"/);
  });
});

describe('resolveRecipeDirections with protect "reference"', () => {
  // Reference rows share a common part (as an agent-style direction does across layers), so every target overlaps it.
  const common = randomRows(1, 3)[0];
  const reference = randomRows(INDICES, 11).map((row) => row.map((value, k) => 0.3 * value + common[k]));
  const directions = overlappingRows(reference, 5);
  const means = randomRows(INDICES, 23, 0.4);
  const recipes: Recipe[] = [
    { ...base, protect: 'reference' },
    { ...base, direction: 1.6, protect: 'reference' },
    { ...base, direction: 'per-layer', protect: 'reference' },
    { ...base, projection: 'harmless-mean', protect: 'reference' },
    { ...base, direction: 'per-layer', projection: 'biprojected', protect: 'reference' },
  ];
  for (const recipe of recipes) {
    it(`leaves cos(r, reference) ≤ ${PROTECTED_COSINE_BOUND} for every target: ${JSON.stringify(recipeToJson(recipe))}`, () => {
      const resolved = resolveRecipeDirections(recipe, directions, means, reference);
      const unprotected = resolveRecipeDirections({ ...recipe, protect: 'none' }, directions, means);
      for (let block = -1; block < INDICES - 1; block++) {
        const component = block < 0 ? 'embed' : block % 2 ? 'attn' : 'mlp';
        const r = resolved.forTarget(component, block);
        const c = reference[block + 1];
        expect(Math.abs(norm(r) - 1)).toBeLessThan(1e-12);
        expect(Math.abs(cosine(r, c))).toBeLessThanOrEqual(PROTECTED_COSINE_BOUND);
        // Before protection the overlap was large, so the check is not vacuous.
        const before = unprotected.forTarget(component, block);
        expect(Math.abs(cosine(before, c))).toBeGreaterThan(0.3);
        // The closed form: normalize(r₀ − (r₀·ĉ)ĉ), written out here.
        const cUnit = c.map((value) => value / norm(c));
        const along = dot(before, cUnit);
        const expected = Array.from(before, (value, k) => value - along * cUnit[k]);
        const expectedNorm = norm(expected);
        for (let k = 0; k < D; k++) expect(r[k]).toBeCloseTo(expected[k] / expectedNorm, 12);
      }
    });
  }

  it('with one reference row protects every target against it, and the edit keeps every column’s reference component', () => {
    const single = [reference[0]];
    const resolved = resolveRecipeDirections({ ...base, direction: 'per-layer', protect: 'reference' }, directions, undefined, single);
    const cUnit = single[0].map((value) => value / norm(single[0]));
    const columns = randomRows(6, 99);
    for (let block = 0; block < INDICES - 1; block++) {
      const r = resolved.forTarget('mlp', block);
      expect(Math.abs(cosine(r, cUnit))).toBeLessThanOrEqual(PROTECTED_COSINE_BOUND);
      // v′ = v − r(r·v): ĉ·v′ = ĉ·v, the reference component of a written vector is untouched.
      for (const v of columns) {
        const along = dot(r, v);
        const edited = v.map((value, k) => value - along * r[k]);
        expect(Math.abs(dot(edited, cUnit) - dot(v, cUnit))).toBeLessThan(1e-12);
      }
    }
  });

  it('reports the overlap before and after', () => {
    const overlap = referenceOverlap({ ...base, direction: 'per-layer' }, directions, undefined, reference);
    expect(overlap.map((entry) => entry.index)).toEqual([0, 1, 2, 3, 4]);
    overlap.forEach((entry, index) => {
      expect(entry.before).toBeCloseTo(cosine(directions[index], reference[index]), 12);
      expect(Math.abs(entry.after)).toBeLessThanOrEqual(PROTECTED_COSINE_BOUND);
    });
  });

  it('is an error without a reference, with the wrong row count or width, or when r is parallel to it', () => {
    expect(() => resolveRecipeDirections({ ...base, protect: 'reference' }, directions)).toThrow(/protect "reference" needs a reference direction/);
    expect(() => resolveRecipeDirections({ ...base, protect: 'reference' }, directions, undefined, reference.slice(0, 3))).toThrow(/reference has 3 rows; expected 1 or 5/);
    expect(() => resolveRecipeDirections({ ...base, protect: 'reference' }, directions, undefined, [reference[0].slice(1)])).toThrow(RecipeDirectionError);
    const parallel = resolveRecipeDirections({ ...base, protect: 'reference' }, directions, undefined, [directions[2].map((value) => 2 * value)]);
    expect(() => parallel.forTarget('attn', 0)).toThrow(/parallel to the reference/);
  });

  it('ignores the reference when protect is absent or none', () => {
    const plain = resolveRecipeDirections(base, directions);
    const none = resolveRecipeDirections({ ...base, protect: 'none' }, directions, undefined, reference);
    expect(Array.from(none.forTarget('attn', 1))).toEqual(Array.from(plain.forTarget('attn', 1)));
  });
});

describe('protection through resolveAblation (the one resolution the weight edit and the hook graph share)', () => {
  it('gives float32 target directions orthogonal to the reference to ≤ 1e-6', async () => {
    const { resolveAblation } = await import('../../src/engine/ablation-selection');
    const reference = randomRows(INDICES, 41);
    const directions = overlappingRows(reference, 43);
    const resolved = resolveAblation({ recipe: { ...base, direction: 'per-layer', protect: 'reference' }, directions, reference }, INDICES - 1);
    for (let block = -1; block < INDICES - 1; block++) {
      const r = resolved.directionFor(block < 0 ? 'embed' : 'mlp', block);
      expect(r).toBeInstanceOf(Float32Array);
      expect(Math.abs(cosine(r, reference[block + 1]))).toBeLessThanOrEqual(PROTECTED_COSINE_BOUND);
    }
    expect(() => resolveAblation({ recipe: { ...base, protect: 'reference' }, directions }, INDICES - 1).directionFor('attn', 0)).toThrow(/needs a reference direction/);
  });
});
