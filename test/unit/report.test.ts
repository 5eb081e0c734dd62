import { describe, expect, it } from 'vitest';
import { analyzeContrast, DEFAULT_LAYER_RANGE } from '../../src/core/analysis';
import { seededRandom, seededSplit } from '../../src/core/statistics';
import { buildReport, parseReport, serializeReport, type ReportInput } from '../../src/formats/report';
import { InvalidFileError } from '../../src/base/errors';

const layerCount = 4;
const hiddenSize = 8;

function set(promptCount: number, seed: number, offset: number) {
  const random = seededRandom(seed);
  const activations = new Float32Array(promptCount * layerCount * hiddenSize); // [prompt, layer, dModel]
  for (let i = 0; i < activations.length; i++) {
    const layer = Math.floor(i / hiddenSize) % layerCount;
    // Layer 0 identical across sets (a degenerate layer); the others shifted along coordinate 0.
    activations[i] = layer === 0 ? 1 : random() + (i % hiddenSize === 0 ? offset * layer : 0);
  }
  return { activations, promptCount };
}

function reportInput(): ReportInput {
  const analysis = analyzeContrast({
    layerCount,
    hiddenSize,
    harmful: set(20, 1, 1),
    harmless: set(16, 2, 0),
    split: { harmful: seededSplit(20, 0.25, 0, 0), harmless: seededSplit(16, 0.25, 0, 1) },
  });
  return {
    model: { path: 'toy' },
    hiddenSize,
    position: -1,
    harmfulCount: 20,
    harmlessCount: 16,
    heldOutFraction: 0.25,
    seed: 0,
    analysis,
    layerRange: DEFAULT_LAYER_RANGE,
    reference: null,
    projectedOutComplianceMean: false,
  };
}

describe('report.json', () => {
  it('has every contract field, L+1 layers, and JSON-safe values', () => {
    const report = buildReport(reportInput());
    expect(report.numLayers).toBe(3);
    expect(report.hiddenSize).toBe(hiddenSize);
    expect(report.position).toBe(-1);
    expect(report.counts).toMatchObject({ harmful: 20, harmless: 16, heldOut: 5 + 4 });
    expect(report.layers.map((layer) => layer.index)).toEqual([0, 1, 2, 3]);
    for (const layer of report.layers) {
      expect(Object.keys(layer)).toEqual(expect.arrayContaining(['index', 'auc', 'aucTrain', 'cosineReference', 'meanGapNorm']));
      expect(layer.cosineReference).toBeNull();
    }
    expect(report.layers[0]).toMatchObject({ auc: 0.5, meanGapNorm: 0, degenerate: true });
    // The cosine matrix row of the degenerate layer is null (NaN is not JSON).
    expect((report.crossLayerCosine as unknown[][])[0]).toEqual([null, null, null, null]);
    const text = serializeReport(report);
    expect(text.endsWith('\n')).toBe(true);
    expect(text).not.toMatch(/NaN|Infinity/);
    expect(parseReport('report.json', text)).toEqual(JSON.parse(text));
  });

  it('carries a seeded 95 % bootstrap interval around each non-degenerate layer\'s held-out AUC', () => {
    const input = reportInput();
    const report = buildReport(input);
    expect(report.layers[0]!.aucInterval).toBeNull(); // degenerate: no direction, no interval
    for (const layer of report.layers.slice(1)) {
      const [low, high] = layer.aucInterval as [number, number];
      expect(low).toBeLessThanOrEqual(layer.auc);
      expect(high).toBeGreaterThanOrEqual(layer.auc);
      expect(low).toBeGreaterThanOrEqual(0);
      expect(high).toBeLessThanOrEqual(1);
    }
    // Same analysis and seed → the same bytes (the CLI and the browser write identical intervals).
    expect(serializeReport(buildReport(input))).toBe(serializeReport(report));
  });

  it('refuses files that miss contract fields, naming the file', () => {
    const report = JSON.parse(serializeReport(buildReport(reportInput())));
    const broken = (edit: (value: Record<string, unknown>) => void) => {
      const copy = structuredClone(report);
      edit(copy);
      return () => parseReport('out/report.json', JSON.stringify(copy));
    };
    expect(() => parseReport('out/report.json', '{')).toThrow(InvalidFileError);
    expect(broken((value) => delete value.bestLayer)).toThrow(/^out\/report\.json: is not a report\.json: "bestLayer"/);
    expect(broken((value) => (value.layers as unknown[]).pop())).toThrow(/numLayers \+ 1 = 4/);
    expect(broken((value) => ((value.layers as Record<string, unknown>[])[2].auc = 'high'))).toThrow(/layer 2 needs numeric auc/);
    expect(broken((value) => ((value.counts as Record<string, unknown>).heldOut = undefined))).toThrow(/counts/);
    expect(broken((value) => (value.bestLayer = 9))).toThrow(/outside 0\.\.3/);
  });
});
