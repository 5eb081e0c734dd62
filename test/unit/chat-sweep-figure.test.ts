/** The sweep figure plots the worker's numbers as given, on a log KL axis that holds every layer and the bound. */
import { describe, expect, it } from 'vitest';
import type { SweepResult } from '../../src/protocol/chat-api';
import { sweepFigure } from '../../src/ui/evaluation/sweep-figure';

const sweep: SweepResult = {
  rows: [
    { layer: 1, refusalRate: 0.46, refusalInterval: [0.33, 0.6], klFirstToken: 0.08, withinKLBound: true },
    { layer: 2, refusalRate: 0.02, refusalInterval: [0.004, 0.1], klFirstToken: 0.012, withinKLBound: true },
    { layer: 3, refusalRate: 1, refusalInterval: [0.93, 1], klFirstToken: 7.2, withinKLBound: false },
    { layer: 4, refusalRate: 1, refusalInterval: [0.93, 1], klFirstToken: 0, withinKLBound: true },
  ],
  skipped: [{ layer: 0, reason: 'zero direction' }],
  baseRefusalRate: 1,
  baseRefusalInterval: [0.93, 1],
  klBound: 0.5,
  recommendation: { layer: 2, withinKLBound: true, reason: 'lowest refusal rate' },
  counts: { harmful: 50, harmless: 50 },
  backend: 'wasm',
  seconds: 1,
};

describe('sweep figure', () => {
  it('plots refusal rate and KL per swept layer, stars the recommendation, and spans every KL on the log axis', () => {
    const figure = sweepFigure(sweep, 3);
    const [refusal, kl, base, bound, star] = figure.data as { x: number[]; y: number[]; name: string; customdata?: number[]; error_y?: { array: number[]; arrayminus: number[] } }[];
    expect(figure.pointCount).toBe(4);
    expect(refusal!.x).toEqual([1, 2, 3, 4]);
    expect(refusal!.y).toEqual([0.46, 0.02, 1, 1]);
    expect(kl!.customdata).toEqual([0.08, 0.012, 7.2, 0]);
    expect(star!.x).toEqual([2]);
    // Error bars reach exactly the interval's ends.
    refusal!.y.forEach((rate, index) => {
      expect(rate + refusal!.error_y!.array[index]!).toBeCloseTo(sweep.rows[index]!.refusalInterval[1], 12);
      expect(rate - refusal!.error_y!.arrayminus[index]!).toBeCloseTo(sweep.rows[index]!.refusalInterval[0], 12);
    });
    // Reference lines are legend entries (no free-floating annotations to collide with tick labels).
    expect(base!.name).toBe('base refusal 100%');
    expect(bound!.name).toBe('KL bound 0.5');
    expect((figure.layout as { annotations?: unknown[] }).annotations ?? []).toHaveLength(0);
    const range = (figure.layout as { yaxis2: { range: [number, number] } }).yaxis2.range;
    for (const value of [0.012, 0.08, 7.2, sweep.klBound]) {
      expect(Math.log10(value)).toBeGreaterThan(range[0]);
      expect(Math.log10(value)).toBeLessThan(range[1]);
    }
    // A KL of 0 cannot sit on a log axis: it is drawn on the floor, and its hover shows the true 0.
    expect(kl!.y[3]).toBeCloseTo(10 ** range[0] * 1, 12);
  });
});
