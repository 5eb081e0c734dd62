import { describe, expect, it } from 'vitest';
import { recommendLayer, type SweepRow } from '../../src/engine/layer-sweep';

const row = (layer: number, refusalRate: number, klFirstToken: number): Omit<SweepRow, 'refusalInterval'> => ({ layer, refusalRate, klFirstToken, withinKLBound: klFirstToken <= 0.5 });

describe('recommendLayer', () => {
  it('picks the lowest refusal rate among layers within the KL bound (toy-llama reference values)', () => {
    // REFERENCE.json layer_selection_val: refusal (harmful) and KL per index; the reference chose index 2.
    const rows = [row(1, 0.46, 0.0812), row(2, 0.02, 0.0121), row(3, 1.0, 7.16), row(4, 1.0, 5.33)];
    expect(recommendLayer(rows, 0.5)).toMatchObject({ layer: 2, withinKLBound: true });
  });

  it('never picks a layer above the bound even with fewer refusals', () => {
    const rows = [row(1, 0.3, 0.1), row(2, 0.0, 0.9)];
    expect(recommendLayer(rows, 0.5)?.layer).toBe(1);
  });

  it('breaks refusal-rate ties by lower KL, then by earlier layer', () => {
    expect(recommendLayer([row(1, 0, 0.2), row(2, 0, 0.05), row(3, 0.1, 0)], 0.5)?.layer).toBe(2);
    expect(recommendLayer([row(3, 0, 0.05), row(2, 0, 0.05)], 0.5)?.layer).toBe(2);
  });

  it('falls back to the lowest KL, flagged, when no layer meets the bound', () => {
    const recommendation = recommendLayer([row(1, 0, 0.9), row(2, 0.5, 0.7)], 0.5);
    expect(recommendation).toMatchObject({ layer: 2, withinKLBound: false });
    expect(recommendation?.reason).toMatch(/no layer kept/);
  });

  it('has nothing to recommend from an empty sweep', () => {
    expect(recommendLayer([], 0.5)).toBeNull();
  });
});
