/**
 * ONNX decoding and the graph builders on bad input: clear, named errors instead of crashes, and the
 * decode → encode round trip keeping weights without copies.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeOnnxModel, encodeOnnxModel, int64ToNumber, onnx, onnxFieldsDroppedOnReencode } from '../../src/formats/onnx';
import type { GraphProto, ModelProto } from '../../src/formats/onnx';
import { buildCaptureGraph } from '../../src/model/capture-graph';
import { buildHookGraph } from '../../src/model/hook-graph';
import type { HookOptions } from '../../src/model/hook-graph';
import { findResidualPoints } from '../../src/model/residual-finder';
import { InvalidFileError, InvalidInputError, UnsupportedModelError } from '../../src/base/errors';
import { QWEN_GRAPH, TOY_LLAMA } from '../helpers/toy-llama-session';

const TOY_ONNX = `${TOY_LLAMA}/onnx/model.onnx`;
const D = 64;

function unit(length: number): Float32Array {
  const values = new Float32Array(length);
  values[3] = 0.6;
  values[10] = -0.8;
  return values;
}

describe('ONNX decode / encode', () => {
  let bytes: Buffer;
  beforeAll(() => {
    bytes = readFileSync(TOY_ONNX);
  });

  it('refuses empty, garbage and truncated files with an InvalidFileError naming the file', () => {
    expect(() => decodeOnnxModel('empty.onnx', new Uint8Array())).toThrow(InvalidFileError);
    expect(() => decodeOnnxModel('garbage.onnx', new TextEncoder().encode('this is not a protobuf model at all'))).toThrow(/garbage\.onnx/);
    expect(() => decodeOnnxModel('truncated.onnx', bytes.subarray(0, bytes.length >> 1))).toThrow(/truncated\.onnx: .*(protobuf|graph|nodes)/);
  });

  it('decodes raw weights as views of the input (no copy) and re-encodes to an equivalent, stable model', () => {
    const input = new Uint8Array(bytes);
    const model = decodeOnnxModel('model.onnx', input);
    const graph = model.graph as GraphProto;
    const withRawData = (graph.initializer ?? []).filter((tensor) => (tensor.rawData?.length ?? 0) > 0);
    expect(withRawData.length).toBeGreaterThan(30);
    for (const tensor of withRawData) expect((tensor.rawData as Uint8Array).buffer).toBe(input.buffer);
    const once = encodeOnnxModel(model);
    const again = decodeOnnxModel('re-encoded.onnx', once);
    expect(again.graph?.node?.length).toBe(graph.node?.length);
    const originalByName = new Map((graph.initializer ?? []).map((tensor) => [tensor.name, tensor]));
    for (const tensor of again.graph?.initializer ?? []) {
      const original = originalByName.get(tensor.name);
      expect(Buffer.from(tensor.rawData ?? []).equals(Buffer.from(original?.rawData ?? []))).toBe(true);
      expect((tensor.dims ?? []).map((dim) => int64ToNumber(dim))).toEqual((original?.dims ?? []).map((dim) => int64ToNumber(dim)));
    }
    expect(Buffer.from(encodeOnnxModel(again)).equals(Buffer.from(once))).toBe(true);
  });

  it('reads int64 fields whether protobufjs gives Long objects or numbers', () => {
    expect(int64ToNumber(onnx.ModelProto.decode(bytes).irVersion)).toBe(8);
    expect(int64ToNumber(7)).toBe(7);
    expect(int64ToNumber(null)).toBe(0);
  });
});

describe('graph builders on unsupported graphs and bad options', () => {
  let model: ModelProto;
  beforeAll(() => {
    model = decodeOnnxModel('toy-llama/onnx/model.onnx', readFileSync(TOY_ONNX));
  });

  it('says which residual points are missing when the config expects more blocks than the graph has', () => {
    expect(() => findResidualPoints(model, { numLayers: 6 })).toThrow(UnsupportedModelError);
    expect(() => findResidualPoints(model, { numLayers: 6 })).toThrow(/4 residual blocks but the config says 6; residual points 5, 6 are missing/);
  });

  it('names what it looked for when a graph has no residual stream', () => {
    const lonely = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'not_a_decoder',
        node: [onnx.NodeProto.create({ opType: 'Relu', name: 'relu', input: ['x'], output: ['y'] })],
        input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }] } } } }],
      },
    });
    expect(() => findResidualPoints(lonely, { numLayers: 2 })).toThrow(/Could not find all 3 residual points \(0\.\.2\).*looked for a Gather over a \[vocab, d\] initializer/);
  });

  it('refuses empty or fractional capture positions and capturing a capture graph', () => {
    expect(() => buildCaptureGraph(model, { positions: [] })).toThrow(InvalidInputError);
    expect(() => buildCaptureGraph(model, { positions: [-1.5] })).toThrow(/not an integer/);
    const capture = buildCaptureGraph(model, { positions: [-1] });
    expect(() => buildCaptureGraph(capture.model, { positions: [-1] })).toThrow(/already has a value named `abliterate\.hidden_states\.0`/);
  });

  it('refuses hook directions and options that would not be the weight edit', () => {
    const base: HookOptions = { direction: unit(D), scale: 1, targets: ['attn'] };
    expect(() => buildHookGraph(model, { ...base, direction: unit(D - 1) })).toThrow(/63 values but the model's hidden size is 64/);
    expect(() => buildHookGraph(model, { ...base, direction: unit(D).map((value) => value * 2) })).toThrow(/unit length/);
    expect(() => buildHookGraph(model, { ...base, direction: unit(D).map((value, k) => (k === 0 ? Number.NaN : value)) })).toThrow(/non-finite/);
    expect(() => buildHookGraph(model, { ...base, scale: Number.POSITIVE_INFINITY })).toThrow(/finite/);
    expect(() => buildHookGraph(model, { ...base, targets: [] })).toThrow(/at least one hook target/);
    expect(() => buildHookGraph(model, { ...base, targets: ['lm_head' as never] })).toThrow(/Unknown hook target/);
    expect(() => buildHookGraph(model, { ...base, layers: [2, 4] })).toThrow(/within 0\.\.3/);
    expect(() => buildHookGraph(model, { ...base, layers: [3, 1] })).toThrow(InvalidInputError);
  });

  it('refuses to hook a branch that is not a linear out-projection (a ReLU after o_proj)', () => {
    const edited = decodeOnnxModel('toy-llama/onnx/model.onnx', readFileSync(TOY_ONNX));
    const nodes = edited.graph?.node ?? [];
    const projectionIndex = nodes.findIndex((node) => node.name === '/m/layers.1/self_attn/o_proj/MatMul');
    const residualAdd = nodes.find((node) => node.name === '/m/layers.1/Add');
    expect(projectionIndex).toBeGreaterThan(0);
    nodes.splice(projectionIndex + 1, 0, onnx.NodeProto.create({ opType: 'Relu', name: 'inserted_relu', input: [nodes[projectionIndex].output?.[0] ?? ''], output: ['relu_out'] }));
    (residualAdd?.input as string[])[1] = 'relu_out';
    expect(findResidualPoints(edited).points).toHaveLength(5);
    expect(() => buildHookGraph(edited, { direction: unit(D), scale: 1, targets: ['attn'] })).toThrow(/Block 1 attention: the branch `relu_out` .* does not come from a linear out-projection/);
    // The MLP branches are still plain projections.
    expect(buildHookGraph(edited, { direction: unit(D), scale: 1, targets: ['mlp'] }).sites).toHaveLength(4);
  });

  it('leaves the input model untouched', () => {
    const before = encodeOnnxModel(model);
    buildCaptureGraph(model, { positions: [-1, -2] });
    buildHookGraph(model, { direction: unit(D), scale: 1, targets: ['embed', 'attn', 'mlp'] });
    expect(Buffer.from(encodeOnnxModel(model)).equals(Buffer.from(before))).toBe(true);
  });
});

describe('fields a round trip would drop', () => {
  it('finds none in the fixtures and reports a newer field (node metadata_props, field 9)', () => {
    for (const file of [TOY_ONNX, QWEN_GRAPH]) expect(onnxFieldsDroppedOnReencode(file, readFileSync(file))).toEqual([]);
    const node = onnx.NodeProto.encode(onnx.NodeProto.create({ opType: 'Relu', input: ['x'], output: ['y'] })).finish();
    const metadata = new Uint8Array([0x4a, 0x04, 0x0a, 0x00, 0x12, 0x00]); // field 9, length 4: an empty key/value entry
    const nodeWithMetadata = new Uint8Array([...node, ...metadata]);
    const graph = new Uint8Array([0x0a, nodeWithMetadata.length, ...nodeWithMetadata, 0x12, 0x01, 0x67]); // node, name "g"
    const bytes = new Uint8Array([0x08, 0x08, 0x3a, graph.length, ...graph]); // ir_version 8, graph
    expect(onnxFieldsDroppedOnReencode('newer.onnx', bytes)).toEqual(['NodeProto.field 9']);
    expect(decodeOnnxModel('newer.onnx', bytes).graph?.node?.[0].opType).toBe('Relu'); // decodes, minus the metadata
    expect(() => onnxFieldsDroppedOnReencode('cut.onnx', bytes.subarray(0, bytes.length - 3))).toThrow(/cut\.onnx: .*truncated/);
  });
});
