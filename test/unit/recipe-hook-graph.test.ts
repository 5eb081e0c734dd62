/**
 * The recipe hook graph on the real Qwen3.5-0.8B quantized decoder (weights absent): every site hooked once,
 * each quantized out-projection (MatMulNBits) given its input-scaling input of width K, the tied lm_head's
 * logit scale, and the original interface kept ahead of the added inputs. Numerics are in
 * test/integration/recipe-hook.test.ts; baking needs values of the right shape.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeOnnxModel, encodeOnnxModel, type GraphProto } from '../../src/formats/onnx';
import { buildRecipeHookGraph, inputScaleName, RECIPE_HOOK_INPUT } from '../../src/model/recipe-hook-graph';
import { QWEN_GRAPH, expectTopologicallySorted } from '../helpers/toy-llama-session';

const NUM_LAYERS = 24;
const HIDDEN_SIZE = 1024;

describe('recipe hook graph on the Qwen3.5-0.8B decoder', () => {
  const model = decodeOnnxModel('decoder_model_merged_quantized.onnx', readFileSync(QWEN_GRAPH));

  it('adds the recipe inputs after the original ones and hooks 1 + 2·24 sites plus the tied lm_head', () => {
    const graph = buildRecipeHookGraph(model, { numLayers: NUM_LAYERS, tiedEmbeddings: true });
    const decoded = decodeOnnxModel('hooked.onnx', encodeOnnxModel(graph.model));
    expectTopologicallySorted(decoded);
    const before = ((model.graph as GraphProto).input ?? []).map((input) => input.name);
    const after = ((decoded.graph as GraphProto).input ?? []).map((input) => input.name);
    expect(after.slice(0, before.length)).toEqual(before);
    const scaleInputs = Array.from({ length: NUM_LAYERS }, (_, block) => [inputScaleName('attn', block), inputScaleName('mlp', block)]).flat();
    expect(after.slice(before.length).sort()).toEqual([...Object.values(RECIPE_HOOK_INPUT), ...scaleInputs].sort());
    expect(graph.siteCount).toBe(1 + 2 * NUM_LAYERS);
    expect(graph.dModel).toBe(HIDDEN_SIZE);
    expect(graph.sites.map((site) => site.component).filter((component) => component === 'embed' || component === 'lm_head')).toEqual(['embed', 'lm_head']);
    for (const site of graph.sites.filter((candidate) => candidate.component === 'attn' || candidate.component === 'mlp')) {
      expect(site.inputScale).toBe(inputScaleName(site.component as 'attn' | 'mlp', site.block));
      // The MLP's down_proj reads the intermediate activations (3584); attention out-projections their heads.
      expect(site.inFeatures).toBeGreaterThan(0);
      if (site.component === 'mlp') expect(site.inFeatures).toBe(3584);
    }
  });

  it('refuses values shaped for another model when baking', () => {
    const wrong = { directions: new Float32Array(3), weights: new Float32Array(1), biasCorrections: new Float32Array(3), embedNormPreserving: 0, logitScale: null, inputScales: new Map() };
    expect(() => buildRecipeHookGraph(model, { numLayers: NUM_LAYERS, bake: wrong })).toThrow(/expected 49 sites of width 1024/);
  });
});
