/**
 * Precision variants of an fp32 ONNX graph, as the exports users run in the browser store their weights:
 * - 'q4': every MatMul with a 2-D weight initializer becomes com.microsoft MatMulNBits (4 bits, blocks of
 *   Q4_BLOCK along K, symmetric, the default zero point 8), as onnxruntime's MatMulNBits quantizer writes it;
 * - 'q8': QDQ — int8 weights with a per-tensor scale, DequantizeLinear in front of each MatMul;
 * - 'fp16': weights and the embedding table stored float16 behind a Cast to float (activations stay float32, as
 *   optimum's keep_io_types exports).
 * The quantization is done here in plain float64 so the variant's numbers do not depend on the code under test.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { float32ToFloat16Bits } from '../../src/core/dtypes';
import { decodeOnnxModel, encodeOnnxModel, int64ToNumber, onnx, OnnxDataType } from '../../src/formats/onnx';
import type { NodeProto, TensorProto } from '../../src/formats/onnx';

export type Precision = 'q4' | 'q8' | 'fp16';
export const Q4_BLOCK = 16;

function floats(tensor: TensorProto): Float32Array {
  const raw = tensor.rawData as Uint8Array;
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

const node = (opType: string, name: string, input: string[], output: string[], attribute: NodeProto['attribute'] = [], domain = ''): NodeProto =>
  onnx.NodeProto.create({ opType, name, input, output, attribute, domain });
const intAttr = (name: string, i: number) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
const tensor = (name: string, dims: number[], dataType: number, rawData: Uint8Array) => onnx.TensorProto.create({ name, dims, dataType, rawData });
const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

/** MatMulNBits weight [N, K/block, block/2] and scales [N·K/block] for W [K, N]. */
export function quantizeQ4(weight: Float32Array, k: number, n: number): { packed: Uint8Array; scales: number[] } {
  const blocks = Math.ceil(k / Q4_BLOCK);
  const packed = new Uint8Array(n * blocks * (Q4_BLOCK / 2));
  const scales: number[] = [];
  for (let column = 0; column < n; column++) {
    for (let block = 0; block < blocks; block++) {
      let max = 0;
      for (let row = block * Q4_BLOCK; row < Math.min(k, (block + 1) * Q4_BLOCK); row++) max = Math.max(max, Math.abs(weight[row * n + column]));
      const scale = max / 7 || 1;
      scales.push(scale);
      for (let offset = 0; offset < Q4_BLOCK; offset++) {
        const row = block * Q4_BLOCK + offset;
        const q = row < k ? Math.min(15, Math.max(0, Math.round(weight[row * n + column] / scale) + 8)) : 8;
        const byte = (column * blocks + block) * (Q4_BLOCK / 2) + (offset >> 1);
        packed[byte] |= offset % 2 === 0 ? q : q << 4;
      }
    }
  }
  return { packed, scales };
}

export function quantizeQ8(values: Float32Array): { data: Uint8Array; scale: number } {
  const scale = values.reduce((max, value) => Math.max(max, Math.abs(value)), 0) / 127 || 1;
  return { data: new Uint8Array(Int8Array.from(values, (value) => Math.round(value / scale)).buffer), scale };
}

/** Rewrites an fp32 graph file in place as the given precision. */
export function convertGraphPrecision(path: string, precision: Precision): void {
  const model = decodeOnnxModel(path, readFileSync(path));
  const graph = model.graph!;
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const kept = new Map(initializers);
  const added: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  for (const original of graph.node ?? []) {
    const [input, weightName] = original.input ?? [];
    const weight = weightName ? initializers.get(weightName) : undefined;
    const dims = (weight?.dims ?? []).map((dim) => int64ToNumber(dim));
    const isWeightMatMul = original.opType === 'MatMul' && weight?.dataType === OnnxDataType.FLOAT && dims.length === 2;
    const isTableGather = original.opType === 'Gather' && weight === undefined && initializers.get(input ?? '')?.dataType === OnnxDataType.FLOAT && initializers.get(input ?? '')?.dims?.length === 2;
    if (isWeightMatMul && weight) {
      const [k, n] = dims;
      const values = floats(weight);
      kept.delete(weightName);
      if (precision === 'q4') {
        const { packed, scales } = quantizeQ4(values, k, n);
        added.push(tensor(`${weightName}_Q4`, [n, Math.ceil(k / Q4_BLOCK), Q4_BLOCK / 2], OnnxDataType.UINT8, packed), tensor(`${weightName}_scales`, [scales.length], OnnxDataType.FLOAT, f32(scales)));
        nodes.push(node('MatMulNBits', `${original.name}_Q4`, [input, `${weightName}_Q4`, `${weightName}_scales`], original.output ?? [], [intAttr('K', k), intAttr('N', n), intAttr('bits', 4), intAttr('block_size', Q4_BLOCK)], 'com.microsoft'));
      } else if (precision === 'q8') {
        const { data, scale } = quantizeQ8(values);
        added.push(tensor(`${weightName}_quantized`, [k, n], OnnxDataType.INT8, data), tensor(`${weightName}_scale`, [], OnnxDataType.FLOAT, f32([scale])), tensor(`${weightName}_zero_point`, [], OnnxDataType.INT8, new Uint8Array(1)));
        nodes.push(node('DequantizeLinear', `${original.name}_Dequantize`, [`${weightName}_quantized`, `${weightName}_scale`, `${weightName}_zero_point`], [`${weightName}_dequantized`]));
        nodes.push(node('MatMul', original.name ?? '', [input, `${weightName}_dequantized`], original.output ?? []));
      } else {
        added.push(tensor(`${weightName}_fp16`, [k, n], OnnxDataType.FLOAT16, new Uint8Array(Uint16Array.from(values, (value) => float32ToFloat16Bits(value)).buffer)));
        nodes.push(node('Cast', `${original.name}_CastWeight`, [`${weightName}_fp16`], [`${weightName}_float`], [intAttr('to', OnnxDataType.FLOAT)]));
        nodes.push(node('MatMul', original.name ?? '', [input, `${weightName}_float`], original.output ?? []));
      }
      continue;
    }
    if (isTableGather && precision === 'fp16') {
      const table = initializers.get(input as string)!;
      const tableDims = (table.dims ?? []).map((dim) => int64ToNumber(dim));
      const output = (original.output ?? [])[0];
      kept.delete(input as string);
      added.push(tensor(`${input}_fp16`, tableDims, OnnxDataType.FLOAT16, new Uint8Array(Uint16Array.from(floats(table), (value) => float32ToFloat16Bits(value)).buffer)));
      nodes.push(node('Gather', original.name ?? '', [`${input}_fp16`, weightName ?? ''], [`${output}_fp16`], original.attribute ?? []));
      nodes.push(node('Cast', `${original.name}_Cast`, [`${output}_fp16`], [output], [intAttr('to', OnnxDataType.FLOAT)]));
      continue;
    }
    nodes.push(original);
  }
  const opsetImport = precision === 'q4' ? [...(model.opsetImport ?? []), onnx.OperatorSetIdProto.create({ domain: 'com.microsoft', version: 1 })] : model.opsetImport;
  const newGraph = onnx.GraphProto.create({ ...graph, node: nodes, initializer: [...kept.values(), ...added] });
  writeFileSync(path, encodeOnnxModel(onnx.ModelProto.create({ ...model, opsetImport, graph: newGraph })));
}
