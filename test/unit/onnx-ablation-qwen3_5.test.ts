/**
 * ONNX ablation planning on the real Qwen3.5-0.8B q8 export (graph only): every out-projection is a MatMulInteger
 * (q8), so every attention, linear-attention and MLP site gets a baked hook, the tied lm_head too, and the
 * embed_tokens graph (a q8 table behind DequantizeLinear) gets its output hooked under the same output name. The
 * written graphs keep every input, output and external-data reference.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeOnnxModel, encodeOnnxModel, externalInitializers, type ModelProto } from '../../src/formats/onnx';
import { planDecoderAblation, planEmbeddingGraphAblation } from '../../src/model/onnx-ablation';
import { QWEN3_5_GRAPH_DIR } from '../helpers/fixtures';
import { expectTopologicallySorted } from '../helpers/toy-llama-session';

const NUM_LAYERS = 24;
const HIDDEN_SIZE = 1024;

function unitDirection(length: number): Float32Array {
  const values = Float32Array.from({ length }, (_, k) => Math.cos(k * 0.29 + 0.5));
  const norm = Math.hypot(...values);
  return values.map((value) => value / norm);
}

function read(file: string): ModelProto {
  const path = join(QWEN3_5_GRAPH_DIR, 'onnx', file);
  return decodeOnnxModel(path, readFileSync(path));
}

function expectInterfaceKept(original: ModelProto, ablated: ModelProto): void {
  const names = (model: ModelProto, key: 'input' | 'output') => (model.graph?.[key] ?? []).map((info) => info.name);
  expect(names(ablated, 'input')).toEqual(names(original, 'input'));
  expect(names(ablated, 'output')).toEqual(names(original, 'output'));
  const references = (model: ModelProto) => externalInitializers(model).map((tensor) => `${tensor.name}:${JSON.stringify(tensor.externalData)}`);
  expect(references(ablated)).toEqual(references(original));
  const redecoded = decodeOnnxModel('re-encoded', encodeOnnxModel(ablated));
  expectTopologicallySorted(redecoded);
}

describe('abliterated ONNX plan on the real Qwen3.5-0.8B q8 export', () => {
  const direction = unitDirection(HIDDEN_SIZE);
  /** The seed recipe: one direction, weight 1 on every component and block. */
  const ablation = { directionFor: () => direction, weightFor: () => 1, components: ['embed', 'attn', 'mlp'] as const, dModel: HIDDEN_SIZE, recipe: { method: 'standard' }, shorthand: null };

  it('decoder: 48 out-projection hooks and the tied lm_head hook baked in, no weight edited', () => {
    const original = read('decoder_model_merged_quantized.onnx');
    const plan = planDecoderAblation(original, { ablation, tiedEmbeddings: true, numLayers: NUM_LAYERS });
    expect(plan.edits).toEqual([]);
    const sites = plan.baked.map((site) => `${site.target}:${site.layer}`);
    const expected = ['lm_head:-1', ...Array.from({ length: NUM_LAYERS }, (_, layer) => [`attn:${layer}`, `mlp:${layer}`]).flat()];
    expect(sites.sort()).toEqual(expected.sort());
    for (const site of plan.baked.filter((entry) => entry.target !== 'lm_head')) expect(site.reason).toMatch(/MatMulInteger|not a float MatMul|no float weight/);
    const hookNodes = (plan.model.graph?.node ?? []).filter((node) => (node.name ?? '').startsWith('abliterate/hook/'));
    expect(hookNodes.filter((node) => node.opType === 'Sub')).toHaveLength(2 * NUM_LAYERS + 1);
    expectInterfaceKept(original, plan.model);
  });

  it('embed_tokens: the q8 table cannot be edited, so inputs_embeds is hooked under its own name', () => {
    const original = read('embed_tokens_quantized.onnx');
    const plan = planEmbeddingGraphAblation(original, 'embed_tokens_quantized.onnx', ablation);
    expect(plan.edits).toEqual([]);
    expect(plan.baked.map((site) => site.target)).toEqual(['embed']);
    const nodes = plan.model.graph?.node ?? [];
    const producer = nodes.find((node) => (node.output ?? []).includes('inputs_embeds'));
    expect(producer?.opType).toBe('Sub'); // x − α r(r·x), the graph's float32 output
    const dequantize = nodes.find((node) => node.opType === 'DequantizeLinear');
    expect(producer?.input?.[0]).toBe(dequantize?.output?.[0]);
    expectInterfaceKept(original, plan.model);
  });
});
