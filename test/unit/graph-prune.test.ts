/**
 * pruneToOutputs on a small hand-built graph: a kept chain, a dropped head, a dropped branch whose weight is also
 * listed as a graph input (older IR), and an If whose branches read a kept value from the outer scope. The pruned
 * model runs in onnxruntime-node on the original feeds and returns the kept outputs bit for bit.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { OnnxDataType, encodeOnnxModel, float32Initializer, onnx, tensorValueInfo } from '../../src/formats/onnx';
import type { GraphProto, ModelProto } from '../../src/formats/onnx';
import { pruneToOutputs } from '../../src/model/graph-prune';
import { makeNode } from '../../src/model/onnx-graph-utils';
import { InvalidInputError } from '../../src/base/errors';

const ramp = (count: number, scale: number) => Array.from({ length: count }, (_, index) => (index - count / 2) * scale);

function branch(name: string, opType: string): GraphProto {
  // Reads `h` from the enclosing graph: the pruner must keep h's producer for the If.
  return onnx.GraphProto.create({ name, node: [makeNode(opType, `${name}/op`, ['h'], [`${name}/out`])], output: [tensorValueInfo(`${name}/out`, OnnxDataType.FLOAT, [2, 3])] });
}

function model(): ModelProto {
  const ifNode = makeNode('If', 'choose', ['cond'], ['chosen']);
  ifNode.attribute = [
    onnx.AttributeProto.create({ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch('then', 'Identity') }),
    onnx.AttributeProto.create({ name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch('else', 'Neg') }),
  ];
  const graph = onnx.GraphProto.create({
    name: 'prune-me',
    node: [
      makeNode('MatMul', 'first', ['x', 'W1'], ['h']),
      makeNode('Relu', 'relu', ['h'], ['r']),
      makeNode('MatMul', 'head', ['r', 'Whead'], ['logits']),
      makeNode('Add', 'side', ['h', 'Wold'], ['side']),
      ifNode,
    ],
    initializer: [float32Initializer('W1', [3, 3], ramp(9, 0.25)), float32Initializer('Whead', [3, 4], ramp(12, 0.5)), float32Initializer('Wold', [2, 3], ramp(6, 1))],
    input: [tensorValueInfo('x', OnnxDataType.FLOAT, [2, 3]), onnx.ValueInfoProto.create({ name: 'cond', type: { tensorType: { elemType: OnnxDataType.BOOL, shape: { dim: [] } } } }), tensorValueInfo('Wold', OnnxDataType.FLOAT, [2, 3])],
    output: ['r', 'logits', 'side', 'chosen'].map((name) => tensorValueInfo(name, OnnxDataType.FLOAT, [2, name === 'logits' ? 4 : 3])),
    valueInfo: [tensorValueInfo('h', OnnxDataType.FLOAT, [2, 3])],
  });
  return onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph });
}

async function run(proto: ModelProto, outputs: string[], cond: boolean): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(encodeOnnxModel(proto));
  try {
    const feeds = { x: new ort.Tensor('float32', Float32Array.from(ramp(6, 0.75)), [2, 3]), cond: new ort.Tensor('bool', new Uint8Array([cond ? 1 : 0]), []) };
    const result = await session.run(feeds, outputs);
    return Object.fromEntries(outputs.map((name) => [name, result[name].data as Float32Array]));
  } finally {
    await session.release();
  }
}

describe('pruneToOutputs', () => {
  it('keeps exactly the ancestors of the kept outputs, their initializers and every real input', () => {
    const original = model();
    const { model: pruned, removedNodes, removedInitializers } = pruneToOutputs(original, ['r', 'chosen']);
    const graph = pruned.graph!;
    expect(graph.node!.map((node) => node.name)).toEqual(['first', 'relu', 'choose']);
    expect(graph.initializer!.map((tensor) => tensor.name)).toEqual(['W1']);
    expect(graph.input!.map((info) => info.name)).toEqual(['x', 'cond']); // Wold's initializer is gone: no longer an input
    expect(graph.output!.map((info) => info.name)).toEqual(['r', 'chosen']);
    expect(graph.valueInfo!.map((info) => info.name)).toEqual(['h']);
    expect([removedNodes, removedInitializers]).toEqual([2, 2]);
    expect(original.graph!.node!.length).toBe(5); // the input model is left as it was
    expect(original.graph!.output!.length).toBe(4);
  });

  it('the pruned graph runs on the same feeds and returns the kept outputs bit for bit', async () => {
    const { model: pruned } = pruneToOutputs(model(), ['r', 'chosen']);
    for (const cond of [true, false]) {
      const full = await run(model(), ['r', 'chosen'], cond);
      const cut = await run(pruned, ['r', 'chosen'], cond);
      expect(Array.from(cut.r)).toEqual(Array.from(full.r));
      expect(Array.from(cut.chosen)).toEqual(Array.from(full.chosen));
    }
  });

  it('refuses an output the graph does not have', () => {
    expect(() => pruneToOutputs(model(), ['r', 'nope'])).toThrow(InvalidInputError);
  });
});
