/**
 * The shorthand's recipe names the directions-file row its direction is: the row must be given (a forgotten one
 * would record the embedding output), null meaning a single direction — the one row of its file.
 */
import { describe, expect, it } from 'vitest';
import { resolveAblation, type AblationSelection } from '../../src/engine/ablation-selection';

const D_MODEL = 4;
const unit = Float32Array.from({ length: D_MODEL }, () => 0.5); // [dModel], norm 1
const shorthand: AblationSelection = { direction: unit, scale: 0.75, targets: ['attn', 'mlp'] };

describe('resolveAblation with the shorthand', () => {
  it('records the given row as the recipe direction', () => {
    const resolved = resolveAblation(shorthand, 6, 3);
    expect(resolved.recipe).toEqual({ method: 'standard', direction: 3, projection: 'none', components: { attn: 0.75, mlp: 0.75 } });
    expect(resolved.shorthand).toBe(shorthand);
  });

  it('a single direction (row null) is row 0 of its one-row file', () => {
    expect(resolveAblation(shorthand, 6, null).recipe.direction).toBe(0);
  });

  it('refuses a shorthand without a row, and a row outside the model', () => {
    // The overload that takes a shorthand requires the row; a caller that bypasses the types still gets an error.
    const untyped = resolveAblation as (selection: AblationSelection, numLayers?: number) => unknown;
    expect(() => untyped(shorthand, 6)).toThrow(/needs the direction row/);
    expect(() => resolveAblation(shorthand, 6, 7)).toThrow(/direction row 7 is not a hidden-state index 0\.\.6/);
    expect(() => resolveAblation(shorthand, 6, 1.5)).toThrow(/direction row 1\.5/);
  });
});
