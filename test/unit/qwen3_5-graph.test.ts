/**
 * Acceptance on the real Qwen3.5-0.8B graph (onnxruntime-genai builder, q8, weights absent): all 25 residual
 * points found structurally, and the capture and hook graphs re-encode, keep every original input and output
 * and every external-data reference, and re-decode. The inserted nodes are listed and checked one by one.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeOnnxModel, encodeOnnxModel, externalInitializers, onnx } from '../../src/formats/onnx';
import type { GraphProto, ModelProto } from '../../src/formats/onnx';
import { activationName } from '../../src/model/activation-names';
import { buildCaptureGraph } from '../../src/model/capture-graph';
import { buildHookGraph } from '../../src/model/hook-graph';
import { findResidualPoints } from '../../src/model/residual-finder';
import { QWEN_GRAPH, expectTopologicallySorted } from '../helpers/toy-llama-session';

const NUM_LAYERS = 24;
const HIDDEN_SIZE = 1024;
const FULL_ATTENTION_LAYERS = new Set([3, 7, 11, 15, 19, 23]);
const FINAL_NORM = '/model/layers.24/final_norm_layernorm/SkipLayerNorm';

function json(value: unknown): string {
  return JSON.stringify(value);
}

function unitDirection(length: number): Float32Array {
  const values = Float32Array.from({ length }, (_, k) => Math.sin(k * 0.37 + 1));
  const norm = Math.hypot(...values);
  return values.map((value) => value / norm);
}

/** Every value read anywhere in the graph, subgraph bodies included. */
function allReads(graph: GraphProto, reads = new Set<string>()): Set<string> {
  for (const node of graph.node ?? []) {
    for (const input of node.input ?? []) reads.add(input);
    for (const attribute of node.attribute ?? []) for (const subgraph of [attribute.g, ...(attribute.graphs ?? [])]) if (subgraph) allReads(subgraph, reads);
  }
  return reads;
}

function expectOriginalInterfaceKept(original: ModelProto, rebuilt: ModelProto): void {
  const before = original.graph as GraphProto;
  const after = rebuilt.graph as GraphProto;
  expect(json(after.input)).toBe(json(before.input));
  expect(json((after.output ?? []).slice(0, (before.output ?? []).length))).toBe(json(before.output));
  const afterInitializers = new Map((after.initializer ?? []).map((tensor) => [tensor.name, tensor]));
  const external = externalInitializers(original);
  expect(external.length).toBeGreaterThan(200);
  for (const tensor of external) {
    const kept = afterInitializers.get(tensor.name);
    expect(kept?.dataLocation).toBe(onnx.TensorProto.DataLocation.EXTERNAL);
    expect(json(kept?.externalData)).toBe(json(tensor.externalData));
  }
  expect(after.node?.length).toBeGreaterThan((before.node ?? []).length);
}

describe('Qwen3.5-0.8B onnxruntime-genai graph', () => {
  let bytes: Uint8Array;
  let model: ModelProto;

  beforeAll(() => {
    bytes = readFileSync(QWEN_GRAPH);
    model = decodeOnnxModel('decoder_model_merged_quantized.onnx', bytes);
  });

  it('has all 25 residual points: 0 = inputs_embeds, 1..23 = output 3 of the input norms, 24 = the final norm sum', () => {
    const residual = findResidualPoints(model, { numLayers: NUM_LAYERS });
    expect(residual.style).toBe('genai');
    expect(residual.inputsEmbeds).toBe(true);
    expect(residual.dModel).toBe(HIDDEN_SIZE);
    expect(residual.points).toHaveLength(NUM_LAYERS + 1);
    expect(residual.points[0]).toBe('inputs_embeds');
    for (let layer = 1; layer < NUM_LAYERS; layer++) expect(residual.points[layer]).toBe(`/model/layers.${layer}/input_layernorm/output_3`);
    const last = residual.junctions[residual.junctions.length - 1];
    expect(last.nodeName).toBe(FINAL_NORM);
    expect(last.sumPending).toBe(true);
    expect(residual.points[NUM_LAYERS]).toBe(last.sum);
    // Linear-attention layers (If/Scan inside) and full-attention layers alike are token mixers on the main-graph stream.
    residual.junctions.forEach((junction, position) => {
      expect(junction.block).toBe(Math.floor(position / 2));
      expect(junction.kind).toBe(position % 2 === 0 ? 'mixer' : 'mlp');
      const mixerName = FULL_ATTENTION_LAYERS.has(junction.block) ? 'attn/o_proj' : 'gdn/out_proj';
      expect(junction.branchInput).toBe(`/model/layers.${junction.block}/${junction.kind === 'mixer' ? mixerName : 'mlp/down_proj'}/MatMul/output_0`);
    });
  });

  it('capture graph: 25 Gathers at the requested positions, final norm given output 3, interface and external data kept', () => {
    const capture = buildCaptureGraph(model, { positions: [-1], numLayers: NUM_LAYERS });
    const reencoded = encodeOnnxModel(capture.model);
    const decoded = decodeOnnxModel('capture.onnx', reencoded);
    expectOriginalInterfaceKept(model, decoded);
    expectTopologicallySorted(decoded);
    const expectedNodes = Array.from({ length: NUM_LAYERS + 1 }, (_, layer) => `abliterate/capture/${layer}/Gather`);
    console.info(`Qwen3.5 capture graph: ${reencoded.length} bytes (original ${bytes.length}); inserted nodes: ${capture.insertedNodes.join(', ')}; modified: ${capture.modifiedNodes.join(', ')}`);
    expect(capture.insertedNodes).toEqual(expectedNodes);
    expect(capture.modifiedNodes).toEqual([FINAL_NORM]);
    const graph = decoded.graph as GraphProto;
    const outputs = (graph.output ?? []).map((info) => info.name);
    expect(outputs.slice(-(NUM_LAYERS + 1))).toEqual(capture.outputNames);
    expect(capture.outputNames).toEqual(Array.from({ length: NUM_LAYERS + 1 }, (_, layer) => activationName(layer)));
    const finalNorm = (graph.node ?? []).find((node) => node.name === FINAL_NORM);
    expect(finalNorm?.output?.[3]).toBe(capture.residual.points[NUM_LAYERS]);
    const gathers = (graph.node ?? []).filter((node) => expectedNodes.includes(node.name ?? ''));
    expect(gathers.map((node) => node.input?.[0])).toEqual(capture.residual.points);
    // Re-encoding the decoded capture graph is stable: nothing is lost on a second round trip.
    expect(encodeOnnxModel(decoded).length).toBe(reencoded.length);
  });

  it('hook graph: x − α r(r·x) on inputs_embeds, all 48 out-projections and (tied) the lm_head input; interface kept', () => {
    const direction = unitDirection(HIDDEN_SIZE);
    const hook = buildHookGraph(model, { direction, scale: 1, targets: ['embed', 'attn', 'mlp'], tiedEmbeddings: true });
    const reencoded = encodeOnnxModel(hook.model);
    const decoded = decodeOnnxModel('hook.onnx', reencoded);
    expectOriginalInterfaceKept(model, decoded);
    expectTopologicallySorted(decoded);
    const labels = ['embed', 'lm_head', ...Array.from({ length: NUM_LAYERS }, (_, layer) => [`attn/${layer}`, `mlp/${layer}`]).flat()];
    const expectedNodes = labels.flatMap((label) => ['Dot', 'Scale', 'Sub'].map((step) => `abliterate/hook/${label}/${step}`));
    console.info(`Qwen3.5 hook graph: ${reencoded.length} bytes; ${hook.insertedNodes.length} inserted nodes: ${hook.insertedNodes.join(', ')}`);
    expect([...hook.insertedNodes].sort()).toEqual([...expectedNodes].sort());
    for (const site of hook.sites) {
      if (site.target === 'attn') expect(site.projection).toBe(`/model/layers.${site.layer}/${FULL_ATTENTION_LAYERS.has(site.layer) ? 'attn/o_proj' : 'gdn/out_proj'}/MatMul_quant`);
      if (site.target === 'mlp') expect(site.projection).toBe(`/model/layers.${site.layer}/mlp/down_proj/MatMul_quant`);
    }
    expect(hook.sites.find((site) => site.target === 'lm_head')?.value).toBe('/model/layers.24/final_norm_layernorm/output_0');
    // Nothing but the hook itself still reads the un-ablated embedding, inside If/Scan bodies included.
    const graph = decoded.graph as GraphProto;
    const readers = (graph.node ?? []).filter((node) => (node.input ?? []).includes('inputs_embeds')).map((node) => node.name);
    expect(readers).toEqual(['abliterate/hook/embed/Dot', 'abliterate/hook/embed/Sub']);
    const subgraphReads = new Set<string>();
    for (const node of graph.node ?? []) for (const attribute of node.attribute ?? []) if (attribute.g) allReads(attribute.g, subgraphReads);
    expect(subgraphReads.has('inputs_embeds')).toBe(false);
    // The hooked graph still has its 25 residual points (the ablated embedding is point 0).
    expect(findResidualPoints(decoded, { numLayers: NUM_LAYERS }).points).toHaveLength(NUM_LAYERS + 1);
  });

  it('the separate embedding graph is not a decoder: a clear error, not a crash', () => {
    const embedModel = decodeOnnxModel('embed_tokens_quantized.onnx', readFileSync(QWEN_GRAPH.replace('decoder_model_merged_quantized', 'embed_tokens_quantized')));
    expect(() => findResidualPoints(embedModel, { numLayers: NUM_LAYERS })).toThrow(/residual points 0\.\.24|no chain of residual sums|no embedding output/);
  });
});
