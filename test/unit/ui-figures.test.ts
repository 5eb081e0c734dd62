/**
 * The per-layer plots draw the engine's numbers as they are: one point per layer index, the recommended layer
 * starred, degenerate layers as gaps, and the histogram of the selected layer's held-out projections.
 */
import { describe, expect, it } from 'vitest';
import type { AnalysisResult } from '../../src/protocol/analysis-api';
import { aucFigure, cosineFigure, heatmapFigure, histogramFigure } from '../../src/ui/plots/figures';

type Trace = { x?: unknown[]; y?: unknown[]; z?: unknown; name?: string; xbins?: { start: number; end: number; size: number } };

function result(): AnalysisResult {
  const layers = [
    { index: 0, auc: 0.5, aucTrain: 0.5, cosineReference: null, meanGapNorm: 0 },
    { index: 1, auc: 0.9, aucTrain: 0.95, cosineReference: 0.2, meanGapNorm: 1 },
    { index: 2, auc: 1, aucTrain: 1, cosineReference: -0.4, meanGapNorm: 3 },
  ];
  const report = { model: {}, hiddenSize: 2, numLayers: 2, position: -1, counts: { harmful: 4, harmless: 4, heldOut: 2 }, bestLayer: 2, layers };
  return {
    report,
    reportText: JSON.stringify(report),
    crossLayerCosine: [
      [0, 0, 0],
      [0, 1, 0.5],
      [0, 0.5, 1],
    ],
    projections: [
      { harmful: [0], harmless: [0] },
      { harmful: [1, 2], harmless: [-1, 0] },
      { harmful: [5, 7], harmless: [-3, -2] },
    ],
    directions: [new Float32Array(2), new Float32Array([1, 0]), new Float32Array([0, 1])],
    backend: 'wasm',
    fromCache: false,
    notes: [],
  };
}

describe('analysis figures', () => {
  it('AUC: held-out and train per layer index, the recommended layer starred', () => {
    const figure = aucFigure(result(), 1);
    const [heldOut, train, star] = figure.data as Trace[];
    expect(figure.pointCount).toBe(3);
    expect(heldOut.x).toEqual([0, 1, 2]);
    expect(heldOut.y).toEqual([0.5, 0.9, 1]);
    expect(train.y).toEqual([0.5, 0.95, 1]);
    expect(star).toMatchObject({ x: [2], y: [1], name: 'recommended' });
  });

  it('cosine: a degenerate layer is a gap; no reference gives no trace and a hint', () => {
    const figure = cosineFigure(result(), 2);
    expect((figure.data[0] as Trace).y).toEqual([null, 0.2, -0.4]);
    expect(figure.pointCount).toBe(3);
    const without = result();
    without.report.layers.forEach((layer) => (layer.cosineReference = null));
    const empty = cosineFigure(without, 2);
    expect(empty.data).toEqual([]);
    expect(JSON.stringify(empty.layout)).toContain('No reference');
  });

  it('heatmap: the cross-layer matrix over layer indices', () => {
    const trace = heatmapFigure(result(), 0).data[0] as Trace;
    expect(trace.z).toEqual(result().crossLayerCosine);
    expect(trace.x).toEqual([0, 1, 2]);
  });

  it('histogram: the selected layer\'s held-out projections, with bins covering every value', () => {
    const figure = histogramFigure(result(), 2);
    const [a, b] = figure.data as Trace[];
    expect(a.x).toEqual([5, 7]);
    expect(b.x).toEqual([-3, -2]);
    expect(figure.pointCount).toBe(4);
    for (const value of [5, 7, -3, -2]) {
      expect(value).toBeGreaterThanOrEqual(a.xbins!.start);
      expect(value).toBeLessThanOrEqual(a.xbins!.end);
    }
    expect(histogramFigure(result(), null).data).toEqual([]);
  });
});
