/**
 * Builds the demo model's ONNX graph (opset 17, plain ops only, fp32) from an HF Llama config and its weights
 * by HF tensor name, with the I/O transformers.js expects of a decoder with KV cache:
 *   input_ids, attention_mask, position_ids [batch, seq] int64; past_key_values.{i}.key/value
 *   [batch, kvHeads, past, headDim] → logits [batch, seq, vocab], present.{i}.key/value [batch, kvHeads, total, headDim].
 * Pure: tests rebuild the graph from edited safetensors (e.g. an orthogonalized copy) and compare.
 *
 * The residual stream is the chain embedding Gather → `/model/layers.{i}/Add` (after attention) →
 * `/model/layers.{i}/Add_1` (block output) → final norm, like a torch.onnx export, so the structural residual
 * finder handles it; the producer name marks the graph as the demo builder's.
 */
import { onnx, OnnxDataType, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../../src/formats/onnx';
import { UnsupportedModelError } from '../../src/base/errors';

export const DEMO_PRODUCER_NAME = 'abliteration-workbench demo builder';
const OPSET = 17;
const IR_VERSION = 8;
const MASKED_SCORE = -1e9; // added to attention scores of masked keys; finite so fully masked rows stay finite

/** The config.json fields the builder needs, validated. */
export interface LlamaGraphConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
}

export function llamaGraphConfig(config: Record<string, unknown>, file = 'config.json'): LlamaGraphConfig {
  const integer = (key: string, fallback?: number): number => {
    const value = config[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      throw new UnsupportedModelError(`${file}: ${key} must be a positive integer, got ${JSON.stringify(config[key])}`);
    }
    return value;
  };
  const positive = (key: string, fallback: number): number => {
    const value = config[key] ?? fallback;
    if (typeof value !== 'number' || !(value > 0)) throw new UnsupportedModelError(`${file}: ${key} must be a positive number, got ${JSON.stringify(config[key])}`);
    return value;
  };
  if (config.model_type !== 'llama') throw new UnsupportedModelError(`${file}: the demo builder makes Llama graphs, but model_type is ${JSON.stringify(config.model_type)}`);
  const hiddenSize = integer('hidden_size');
  const numHeads = integer('num_attention_heads');
  const result: LlamaGraphConfig = {
    vocabSize: integer('vocab_size'),
    hiddenSize,
    intermediateSize: integer('intermediate_size'),
    numLayers: integer('num_hidden_layers'),
    numHeads,
    numKeyValueHeads: integer('num_key_value_heads', numHeads),
    headDim: integer('head_dim', hiddenSize / numHeads),
    ropeTheta: positive('rope_theta', 10000),
    rmsNormEps: positive('rms_norm_eps', 1e-6),
    tieWordEmbeddings: config.tie_word_embeddings === true,
  };
  if (result.numHeads % result.numKeyValueHeads !== 0) throw new UnsupportedModelError(`${file}: num_attention_heads must be a multiple of num_key_value_heads`);
  if (result.headDim % 2 !== 0) throw new UnsupportedModelError(`${file}: head_dim must be even for RoPE`);
  return result;
}

/** Expected HF shape of every tensor the graph reads. */
export function llamaTensorShapes(config: LlamaGraphConfig): Map<string, number[]> {
  const { vocabSize: vocab, hiddenSize: d, intermediateSize: ffn, numHeads, numKeyValueHeads, headDim } = config;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [vocab, d]]]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    shapes.set(`${p}.input_layernorm.weight`, [d]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [numHeads * headDim, d]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [numKeyValueHeads * headDim, d]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [numKeyValueHeads * headDim, d]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [d, numHeads * headDim]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [d]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [ffn, d]);
    shapes.set(`${p}.mlp.up_proj.weight`, [ffn, d]);
    shapes.set(`${p}.mlp.down_proj.weight`, [d, ffn]);
  }
  shapes.set('model.norm.weight', [d]);
  if (!config.tieWordEmbeddings) shapes.set('lm_head.weight', [vocab, d]);
  return shapes;
}

class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private constants = 0;

  node(opType: string, name: string, inputs: string[], attributes: Record<string, number | number[]> = {}, outputs?: string[]): string {
    const outputNames = outputs ?? [`${name}_output_0`];
    const attribute = Object.entries(attributes).map(([key, value]) =>
      Array.isArray(value)
        ? { name: key, type: onnx.AttributeProto.AttributeType.INTS, ints: value }
        : Number.isInteger(value)
          ? { name: key, type: onnx.AttributeProto.AttributeType.INT, i: value }
          : { name: key, type: onnx.AttributeProto.AttributeType.FLOAT, f: value },
    );
    this.nodes.push({ opType, name, input: inputs, output: outputNames, attribute });
    return outputNames[0];
  }

  floatTensor(name: string, dims: number[], values: Float32Array): string {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    this.initializers.push({ name, dims, dataType: OnnxDataType.FLOAT, rawData: Uint8Array.from(bytes) });
    return name;
  }

  int64Constant(values: number[], scalar = false): string {
    const name = `/model/constants/int64_${this.constants++}`;
    const data = new BigInt64Array(values.map(BigInt));
    this.initializers.push({ name, dims: scalar ? [] : [values.length], dataType: OnnxDataType.INT64, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  floatConstant(value: number): string {
    const name = `/model/constants/float_${this.constants++}`;
    this.initializers.push({ name, dims: [], dataType: OnnxDataType.FLOAT, rawData: new Uint8Array(new Float32Array([value]).buffer) });
    return name;
  }
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((dim) => (typeof dim === 'number' ? { dimValue: dim } : { dimParam: dim })) } } },
  };
}

/** HF [out, in] row-major → [in, out] for MatMul(x, W). */
function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

/**
 * The demo graph for `config` (parsed config.json) and `weights` (HF names, HF layout, float32).
 * A missing tensor or a wrong element count is an UnsupportedModelError naming the tensor.
 */
export function buildDemoOnnx(config: Record<string, unknown>, weights: ReadonlyMap<string, Float32Array>): ModelProto {
  const c = llamaGraphConfig(config);
  const shapes = llamaTensorShapes(c);
  for (const [name, shape] of shapes) {
    const tensor = weights.get(name);
    if (!tensor) throw new UnsupportedModelError(`demo graph: weight ${name} is missing`);
    const expected = shape.reduce((a, b) => a * b, 1);
    if (tensor.length !== expected) throw new UnsupportedModelError(`demo graph: weight ${name} has ${tensor.length} values, expected ${expected} (shape [${shape.join(', ')}])`);
  }
  const g = new GraphBuilder();
  const weight = (name: string) => g.floatTensor(name, shapes.get(name)!, weights.get(name)!);
  const linear = (name: string, input: string, scope: string) => {
    const [rows, cols] = shapes.get(name)!;
    const transposed = g.floatTensor(`${name}.T`, [cols, rows], transpose(weights.get(name)!, rows, cols));
    return g.node('MatMul', `${scope}/MatMul`, [input, transposed]);
  };
  const epsilon = g.floatConstant(c.rmsNormEps);
  const two = g.floatConstant(2);
  const rmsNorm = (input: string, scope: string, weightName: string) => {
    const squared = g.node('Pow', `${scope}/Pow`, [input, two]);
    const meanSquare = g.node('ReduceMean', `${scope}/ReduceMean`, [squared], { axes: [-1], keepdims: 1 });
    const shifted = g.node('Add', `${scope}/Add`, [meanSquare, epsilon]);
    const rms = g.node('Sqrt', `${scope}/Sqrt`, [shifted]);
    const normalized = g.node('Div', `${scope}/Div`, [input, rms]);
    return g.node('Mul', `${scope}/Mul`, [normalized, weight(weightName)]);
  };

  // Sizes and the attention mask [batch, 1, seq, total]: causal over absolute positions, and padding.
  const axis1 = g.int64Constant([1]);
  const sequenceLength = g.node('Gather', '/model/Gather_seq', [g.node('Shape', '/model/Shape_ids', ['input_ids']), g.int64Constant([1], true)], { axis: 0 });
  const totalLength = g.node('Gather', '/model/Gather_total', [g.node('Shape', '/model/Shape_mask', ['attention_mask']), g.int64Constant([1], true)], { axis: 0 });
  const zero = g.int64Constant([0], true);
  const one = g.int64Constant([1], true);
  const keyPositions = g.node('Range', '/model/Range_keys', [zero, totalLength, one]); // [total]
  const queryStart = g.node('Sub', '/model/Sub_past', [totalLength, sequenceLength]);
  const queryPositions = g.node('Unsqueeze', '/model/Unsqueeze_queries', [g.node('Range', '/model/Range_queries', [queryStart, totalLength, one]), axis1]); // [seq, 1]
  const causal = g.node('LessOrEqual', '/model/LessOrEqual_causal', [keyPositions, queryPositions]); // [seq, total]
  const notPadding = g.node('Unsqueeze', '/model/Unsqueeze_mask', [g.node('Cast', '/model/Cast_mask', ['attention_mask'], { to: OnnxDataType.BOOL }), g.int64Constant([1, 2])]); // [batch, 1, 1, total]
  const allowed = g.node('And', '/model/And_mask', [causal, notPadding]); // [batch, 1, seq, total]
  const attentionBias = g.node('Where', '/model/Where_mask', [allowed, g.floatConstant(0), g.floatConstant(MASKED_SCORE)]);

  // RoPE tables [batch, 1, seq, headDim] (HF rotate_half convention: frequencies repeated over both halves).
  const half = c.headDim / 2;
  const inverseFrequencies = Float32Array.from({ length: half }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / c.headDim));
  const positions = g.node('Unsqueeze', '/model/rotary/Unsqueeze', [g.node('Cast', '/model/rotary/Cast', ['position_ids'], { to: OnnxDataType.FLOAT }), g.int64Constant([-1])]);
  const angles = g.node('Mul', '/model/rotary/Mul', [positions, g.floatTensor('/model/rotary/inv_freq', [half], inverseFrequencies)]); // [batch, seq, half]
  const bothHalves = g.node('Concat', '/model/rotary/Concat', [angles, angles], { axis: -1 });
  const cos = g.node('Unsqueeze', '/model/rotary/Unsqueeze_cos', [g.node('Cos', '/model/rotary/Cos', [bothHalves]), axis1]);
  const sin = g.node('Unsqueeze', '/model/rotary/Unsqueeze_sin', [g.node('Sin', '/model/rotary/Sin', [bothHalves]), axis1]);
  const firstHalf = [g.int64Constant([0]), g.int64Constant([half]), g.int64Constant([3])];
  const secondHalf = [g.int64Constant([half]), g.int64Constant([c.headDim]), g.int64Constant([3])];
  const rope = (input: string, scope: string) => {
    const x1 = g.node('Slice', `${scope}/Slice`, [input, ...firstHalf]);
    const x2 = g.node('Slice', `${scope}/Slice_1`, [input, ...secondHalf]);
    const rotated = g.node('Concat', `${scope}/Concat`, [g.node('Neg', `${scope}/Neg`, [x2]), x1], { axis: 3 });
    return g.node('Add', `${scope}/Add`, [g.node('Mul', `${scope}/Mul`, [input, cos]), g.node('Mul', `${scope}/Mul_1`, [rotated, sin])]);
  };
  const headsFirst = [0, 2, 1, 3];
  const splitShape = (heads: number) => g.int64Constant([0, 0, heads, c.headDim]);
  const groups = c.numHeads / c.numKeyValueHeads;
  const repeatShape = g.int64Constant([1, 1, groups, 1, 1]);
  const axis2 = g.int64Constant([2]);
  const mergedShape = g.int64Constant([0, c.numHeads, -1, c.headDim]);
  const flatShape = g.int64Constant([0, 0, c.numHeads * c.headDim]);
  const scale = g.floatConstant(1 / Math.sqrt(c.headDim));

  let stream = g.node('Gather', '/model/embed_tokens/Gather', [weight('model.embed_tokens.weight'), 'input_ids'], { axis: 0 }); // [batch, seq, d]
  const pastInputs: ValueInfoProto[] = [];
  const presentOutputs: ValueInfoProto[] = [];
  for (let layer = 0; layer < c.numLayers; layer++) {
    const p = `model.layers.${layer}`;
    const scope = `/model/layers.${layer}`;
    const normed = rmsNorm(stream, `${scope}/input_layernorm`, `${p}.input_layernorm.weight`);
    const project = (kind: 'q' | 'k' | 'v', heads: number) =>
      g.node('Transpose', `${scope}/self_attn/Transpose_${kind}`, [g.node('Reshape', `${scope}/self_attn/Reshape_${kind}`, [linear(`${p}.self_attn.${kind}_proj.weight`, normed, `${scope}/self_attn/${kind}_proj`), splitShape(heads)])], { perm: headsFirst });
    const query = rope(project('q', c.numHeads), `${scope}/self_attn/rotary_q`); // [batch, heads, seq, headDim]
    const key = rope(project('k', c.numKeyValueHeads), `${scope}/self_attn/rotary_k`); // [batch, kvHeads, seq, headDim]
    const value = project('v', c.numKeyValueHeads);
    const names = { pastKey: `past_key_values.${layer}.key`, pastValue: `past_key_values.${layer}.value`, presentKey: `present.${layer}.key`, presentValue: `present.${layer}.value` };
    g.node('Concat', `${scope}/self_attn/Concat_key`, [names.pastKey, key], { axis: 2 }, [names.presentKey]);
    g.node('Concat', `${scope}/self_attn/Concat_value`, [names.pastValue, value], { axis: 2 }, [names.presentValue]);
    for (const [input, output] of [[names.pastKey, names.presentKey], [names.pastValue, names.presentValue]]) {
      pastInputs.push(valueInfo(input, OnnxDataType.FLOAT, ['batch_size', c.numKeyValueHeads, 'past_sequence_length', c.headDim]));
      presentOutputs.push(valueInfo(output, OnnxDataType.FLOAT, ['batch_size', c.numKeyValueHeads, 'total_sequence_length', c.headDim]));
    }
    // Grouped-query attention: repeat each KV head for its query heads → [batch, heads, total, headDim].
    const repeat = (input: string, kind: string) =>
      g.node('Reshape', `${scope}/self_attn/Reshape_repeat_${kind}`, [g.node('Expand', `${scope}/self_attn/Expand_${kind}`, [g.node('Unsqueeze', `${scope}/self_attn/Unsqueeze_${kind}`, [input, axis2]), repeatShape]), mergedShape]);
    const keys = g.node('Transpose', `${scope}/self_attn/Transpose_keys`, [repeat(names.presentKey, 'key')], { perm: [0, 1, 3, 2] });
    const scores = g.node('Add', `${scope}/self_attn/Add_mask`, [g.node('Mul', `${scope}/self_attn/Mul_scale`, [g.node('MatMul', `${scope}/self_attn/MatMul_scores`, [query, keys]), scale]), attentionBias]);
    const weightsOfKeys = g.node('Softmax', `${scope}/self_attn/Softmax`, [scores], { axis: -1 });
    const context = g.node('MatMul', `${scope}/self_attn/MatMul_context`, [weightsOfKeys, repeat(names.presentValue, 'value')]); // [batch, heads, seq, headDim]
    const merged = g.node('Reshape', `${scope}/self_attn/Reshape_merge`, [g.node('Transpose', `${scope}/self_attn/Transpose_merge`, [context], { perm: headsFirst }), flatShape]);
    const attentionOut = linear(`${p}.self_attn.o_proj.weight`, merged, `${scope}/self_attn/o_proj`);
    stream = g.node('Add', `${scope}/Add`, [stream, attentionOut]);
    const mlpIn = rmsNorm(stream, `${scope}/post_attention_layernorm`, `${p}.post_attention_layernorm.weight`);
    const gate = linear(`${p}.mlp.gate_proj.weight`, mlpIn, `${scope}/mlp/gate_proj`);
    const activated = g.node('Mul', `${scope}/mlp/act_fn/Mul`, [gate, g.node('Sigmoid', `${scope}/mlp/act_fn/Sigmoid`, [gate])]);
    const hidden = g.node('Mul', `${scope}/mlp/Mul`, [activated, linear(`${p}.mlp.up_proj.weight`, mlpIn, `${scope}/mlp/up_proj`)]);
    stream = g.node('Add', `${scope}/Add_1`, [stream, linear(`${p}.mlp.down_proj.weight`, hidden, `${scope}/mlp/down_proj`)]);
  }
  const finalNormed = rmsNorm(stream, '/model/norm', 'model.norm.weight');
  const headName = c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const [headRows, headCols] = shapes.get(headName)!;
  const headTransposed = g.floatTensor(`${headName}.T`, [headCols, headRows], transpose(weights.get(headName)!, headRows, headCols));
  g.node('MatMul', '/lm_head/MatMul', [finalNormed, headTransposed], {}, ['logits']);

  const graph = {
    name: 'demo_llama',
    node: g.nodes,
    initializer: g.initializers,
    input: [
      valueInfo('input_ids', OnnxDataType.INT64, ['batch_size', 'sequence_length']),
      valueInfo('attention_mask', OnnxDataType.INT64, ['batch_size', 'total_sequence_length']),
      valueInfo('position_ids', OnnxDataType.INT64, ['batch_size', 'sequence_length']),
      ...pastInputs,
    ],
    output: [valueInfo('logits', OnnxDataType.FLOAT, ['batch_size', 'sequence_length', c.vocabSize]), ...presentOutputs],
  };
  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: DEMO_PRODUCER_NAME,
    producerVersion: '1',
    graph,
  });
}
