import { describe, expect, it } from 'vitest';
import { analyzeContrast, candidateLayers, layerMatrix, rankLayers, recommendLayer, type ActivationSet } from '../../src/core/analysis';
import { cosineSimilarity, dot, meanOfRows, seededRandom, seededSplit } from '../../src/core/statistics';

const hiddenSize = 16;
const layerCount = 6; // L = 5

/** Gaussian noise plus a planted offset `strength[layer]` along `planted` for set A only. */
function syntheticSet(promptCount: number, seed: number, planted: Float64Array, strength: number[]): ActivationSet {
  const random = seededRandom(seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const activations = new Float32Array(promptCount * layerCount * hiddenSize); // [prompt, layer, dModel]
  for (let prompt = 0; prompt < promptCount; prompt++) {
    for (let layer = 0; layer < layerCount; layer++) {
      for (let i = 0; i < hiddenSize; i++) {
        activations[(prompt * layerCount + layer) * hiddenSize + i] = gaussian() + 3 + strength[layer] * planted[i];
      }
    }
  }
  return { activations, promptCount };
}

function unitVector(seed: number): Float64Array {
  const random = seededRandom(seed);
  const values = Float64Array.from({ length: hiddenSize }, () => random() - 0.5);
  const norm = Math.hypot(...values);
  return values.map((value) => value / norm);
}

describe('analyzeContrast', () => {
  const planted = unitVector(11);
  // Layer 0 carries nothing; the planted offset grows with depth.
  const strengths = [0, 0.5, 2, 6, 8, 8];
  const harmful = syntheticSet(80, 1, planted, strengths);
  const harmless = syntheticSet(80, 2, planted, strengths.map(() => 0));
  const split = { harmful: seededSplit(80, 0.25, 0, 0), harmless: seededSplit(80, 0.25, 0, 1) };

  it('recovers the planted direction and separates strong layers', () => {
    const result = analyzeContrast({ layerCount, hiddenSize, harmful, harmless, split, reference: { kind: 'direction', rows: [planted] } });
    expect(result.layers).toHaveLength(layerCount);
    expect(result.layers[0].auc).toBeLessThan(0.8);
    for (const layer of [3, 4, 5]) {
      expect(result.layers[layer].auc).toBe(1);
      expect(result.layers[layer].cosineReference).toBeGreaterThan(0.95);
      expect(cosineSimilarity(result.layers[layer].direction, planted)).toBeGreaterThan(0.95);
      expect(result.layers[layer].meanGapNorm).toBeGreaterThan(strengths[layer] * 0.8);
    }
    // Held-out histograms count every held-out prompt.
    const histogramTotal = result.layers[3].histogram.harmful.reduce((a, b) => a + b, 0);
    expect(histogramTotal).toBe(split.harmful.heldOut.length);
    expect(result.cosineMatrix[3][3]).toBe(1);
    expect(result.cosineMatrix[3][4]).toBeGreaterThan(0.9);
    // Range for L = 5 is [1, 4]; layers 3 and 4 saturate; d′ prefers 4 (strength 8 > 6), never index 5 (out of range).
    expect(result.candidateLayers).toEqual([1, 2, 3, 4]);
    expect(result.recommendedLayer).toBe(4);
    expect(result.layerRanking[0]).toBe(4);
    expect([...result.layerRanking].sort()).toEqual([1, 2, 3, 4]);
  });

  it('derives a reference from a second contrast pair', () => {
    const referenceA = syntheticSet(40, 5, planted, strengths);
    const referenceB = syntheticSet(40, 6, planted, strengths.map(() => 0));
    const result = analyzeContrast({ layerCount, hiddenSize, harmful, harmless, split, reference: { kind: 'contrast', a: referenceA, b: referenceB } });
    expect(result.layers[4].cosineReference).toBeGreaterThan(0.9);
    expect(result.layers[0].cosineReference).toBeLessThan(0.9);
  });

  it('projects out the compliance mean when asked', () => {
    const result = analyzeContrast({ layerCount, hiddenSize, harmful, harmless, split, projectOutComplianceMean: true });
    const plain = analyzeContrast({ layerCount, hiddenSize, harmful, harmless, split });
    for (const layer of result.layers.slice(1)) {
      const complianceMean = meanOfRows(layerMatrix(harmless, layer.index, layerCount, hiddenSize), split.harmless.train);
      expect(Math.abs(dot(layer.direction, complianceMean))).toBeLessThan(1e-9);
      expect(Math.hypot(...layer.direction)).toBeCloseTo(1, 12);
      // Unprojected directions have a component along the (3, …, 3)-ish compliance mean.
      expect(Math.abs(dot(plain.layers[layer.index].direction, complianceMean))).toBeGreaterThan(1e-3);
    }
  });

  it('treats identical sets as degenerate: AUC ½, no direction', () => {
    const result = analyzeContrast({ layerCount, hiddenSize, harmful: harmless, harmless, split: { harmful: split.harmless, harmless: split.harmless } });
    expect(result.layers.every((layer) => layer.degenerate && layer.auc === 0.5)).toBe(true);
    expect(result.recommendedLayer).toBeNull();
    expect(result.layerRanking).toEqual([]);
    expect(() => recommendLayer(result.layers, [1])).toThrow(/no layer/);
  });

  it('uses the train split for AUC when nothing is held out', () => {
    const all = { harmful: seededSplit(80, 0, 0), harmless: seededSplit(80, 0, 0) };
    const result = analyzeContrast({ layerCount, hiddenSize, harmful, harmless, split: all });
    expect(result.heldOutIsTrain).toBe(true);
    expect(result.layers.map((layer) => layer.auc)).toEqual(result.layers.map((layer) => layer.aucTrain));
  });
});

describe('recommendLayer', () => {
  const layer = (index: number, auc: number, dPrime: number, degenerate = false) => ({ index, auc, dPrime, degenerate });
  it('breaks saturated-AUC ties by d′, not by index', () => {
    const layers = [layer(0, 0.5, 0, true), layer(1, 1, 3), layer(2, 1, 9), layer(3, 1, 4), layer(4, 0.9, 20)];
    expect(recommendLayer(layers, [1, 2, 3])).toBe(2);
    expect(recommendLayer(layers, [1, 3])).toBe(3);
    expect(rankLayers(layers, [1, 2, 3, 4])).toEqual([2, 3, 1, 4]);
    // Equal AUC and d′: the lower index first.
    expect(rankLayers([layer(3, 1, 5), layer(1, 1, 5)], [1, 3])).toEqual([1, 3]);
    expect(recommendLayer([layer(1, 0.8, 100), layer(2, 0.9, 1)], [1, 2])).toBe(2);
  });
  it('falls back to every usable layer when the range holds none', () => {
    expect(recommendLayer([layer(0, 0.5, 0, true), layer(1, 0.99, 2)], [])).toBe(1);
  });
  it('computes the default candidate range', () => {
    expect(candidateLayers(4)).toEqual([1, 2, 3]);
    expect(candidateLayers(24)).toEqual(Array.from({ length: 17 }, (_, i) => i + 5)); // ceil(4.8)=5 … floor(21.6)=21
    expect(candidateLayers(10, { lowFraction: 0, highFraction: 1 })).toHaveLength(11);
    expect(() => candidateLayers(10, { lowFraction: 0.9, highFraction: 0.2 })).toThrow(/range/);
  });
});
