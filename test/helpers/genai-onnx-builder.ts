/**
 * ONNX graphs of the tiny genai-style Qwen3.5 model (generate-genai-model.ts), built from HF-named float32
 * weights with the node and value names of the onnxruntime-genai builder's real Qwen3.5 export:
 * - `embed_tokens.onnx`: input_ids [B, S] → Gather → inputs_embeds [B, S, d];
 * - `decoder_model_merged.onnx`: block 0's input norm is a `SimplifiedLayerNormalization` on inputs_embeds;
 *   every later norm is a com.microsoft `SkipSimplifiedLayerNormalization` whose output 3
 *   (`/model/layers.{l}/{input,post_attention}_layernorm/output_3`) is the residual stream; the final norm
 *   (`/model/layers.{L}/final_norm_layernorm/SkipLayerNorm`) names only output 0. Out-projections are
 *   `/model/layers.N/attn/o_proj/MatMul`, `/model/layers.N/gdn/out_proj/MatMul`, `/model/layers.N/mlp/down_proj/MatMul`.
 * Attention uses plain ops (no GroupQueryAttention) so the float math is easy to follow; the linear-attention
 * recurrence is computed in its parallel (masked decay matrix) form, the float64 reference in its recurrent
 * form, so the two are independent. Pure functions: tests rebuild the graphs from edited weights.
 */
import { onnx, OnnxDataType, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../../src/formats/onnx';
import { convChannels, GENAI_PREFIX, genaiTensorShapes, type GenaiConfig } from './generate-genai-model';

const OPSET = 21;
const IR_VERSION = 10;
const MASKED = -1e9; // finite, so a fully masked (padding) row stays finite
const LAST = 2 ** 62; // Slice "to the end"
const L2_EPSILON = 1e-6;
export const GENAI_PRODUCER = 'onnxruntime-genai-style test builder';

type Attribute = number | number[] | { float: number };

class Graph {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private constants = new Map<string, string>();

  node(opType: string, name: string, inputs: string[], attributes: Record<string, Attribute> = {}, outputs?: string[], domain = ''): string {
    const outputNames = outputs ?? [`${name}/output_0`];
    const attribute = Object.entries(attributes).map(([key, value]) =>
      Array.isArray(value)
        ? { name: key, type: onnx.AttributeProto.AttributeType.INTS, ints: value }
        : typeof value === 'object'
          ? { name: key, type: onnx.AttributeProto.AttributeType.FLOAT, f: value.float }
          : { name: key, type: onnx.AttributeProto.AttributeType.INT, i: value },
    );
    this.nodes.push({ opType, name, input: inputs, output: outputNames, attribute, ...(domain ? { domain } : {}) });
    return outputNames[0];
  }

  float(name: string, dims: number[], values: ArrayLike<number>): string {
    const data = Float32Array.from(values);
    this.initializers.push({ name, dims, dataType: OnnxDataType.FLOAT, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  int64(values: number[], scalar = false): string {
    const name = `/model/constants/INT64/${scalar ? values[0] : `[${values.join(', ')}]`}`;
    if (!this.constants.has(name)) {
      const data = new BigInt64Array(values.map(BigInt));
      this.initializers.push({ name, dims: scalar ? [] : [values.length], dataType: OnnxDataType.INT64, rawData: new Uint8Array(data.buffer) });
      this.constants.set(name, name);
    }
    return name;
  }

  scalar(value: number): string {
    const name = `/model/constants/FLOAT/${value}`;
    if (!this.constants.has(name)) {
      this.float(name, [], [value]);
      this.constants.set(name, name);
    }
    return name;
  }
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((dim) => (typeof dim === 'number' ? { dimValue: dim } : { dimParam: dim })) } } } };
}

function model(graph: Graph, name: string, input: ValueInfoProto[], output: ValueInfoProto[]): ModelProto {
  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }, { domain: 'com.microsoft', version: 1 }],
    producerName: GENAI_PRODUCER,
    graph: { name, node: graph.nodes, initializer: graph.initializers, input, output },
  });
}

function checkedWeights(config: GenaiConfig, weights: ReadonlyMap<string, Float32Array>): (name: string) => Float32Array {
  const shapes = genaiTensorShapes(config);
  return (name: string) => {
    const full = `${GENAI_PREFIX}${name}`;
    const values = weights.get(full);
    const shape = shapes.get(full);
    if (!values || !shape) throw new Error(`genai builder: weight ${full} is missing`);
    if (values.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`genai builder: ${full} has ${values.length} values, expected [${shape.join(', ')}]`);
    return values;
  };
}

/** HF [out, in] row-major → [in, out] for MatMul(x, W). */
function transposed(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

export function buildGenaiEmbedding(config: GenaiConfig, weights: ReadonlyMap<string, Float32Array>): ModelProto {
  const weight = checkedWeights(config, weights);
  const g = new Graph();
  const table = g.float('model.embed_tokens.weight', [config.vocabSize, config.hiddenSize], weight('embed_tokens.weight'));
  g.node('Gather', '/model/embed_tokens/Gather', [table, 'input_ids'], { axis: 0 }, ['inputs_embeds']);
  return model(g, 'embed_tokens', [valueInfo('input_ids', OnnxDataType.INT64, ['batch_size', 'sequence_length'])], [valueInfo('inputs_embeds', OnnxDataType.FLOAT, ['batch_size', 'sequence_length', config.hiddenSize])]);
}

/** Which mRoPE axis drives rotary frequency j (Qwen3-VL interleaving: T H W T H W …, then T for the rest). */
export function mropeAxis(config: GenaiConfig, frequency: number): number {
  const [, height, width] = config.mropeSection;
  if (frequency % 3 === 1 && frequency < 3 * height) return 1;
  if (frequency % 3 === 2 && frequency < 3 * width) return 2;
  return 0;
}

export interface GenaiDecoderOptions {
  /**
   * 'plain': attention from MatMul/Softmax with the mask as a bias; 'group-query': com.microsoft
   * GroupQueryAttention wired as the real export wires it (seqlens_k = T − 1 for every row, padding masked by an
   * attention_bias of (1 − mask)·(−FLT_MAX)), so its left-padding behaviour is exercised too.
   */
  attention?: 'plain' | 'group-query';
}

export function buildGenaiDecoder(config: GenaiConfig, weights: ReadonlyMap<string, Float32Array>, options: GenaiDecoderOptions = {}): ModelProto {
  const weight = checkedWeights(config, weights);
  const { hiddenSize: d, numHeads, numKeyValueHeads, headDim, rotaryDim, linearHeads, linearKeyHeadDim: dk, linearValueHeadDim: dv, convKernel } = config;
  const numLayers = config.layerTypes.length;
  const g = new Graph();
  const epsilon = { float: config.rmsNormEps };
  const linear = (name: string, input: string, scope: string) => {
    const values = weight(name);
    const rows = values.length / (genaiTensorShapes(config).get(`${GENAI_PREFIX}${name}`) as number[]).slice(1).reduce((a, b) => a * b, 1);
    const cols = values.length / rows;
    return g.node('MatMul', `${scope}/MatMul`, [input, g.float(`${name.replace(/\.weight$/, '')}.MatMul.weight`, [cols, rows], transposed(values, rows, cols))]);
  };
  const onePlus = (name: string) => Float32Array.from(weight(name), (w) => 1 + w); // Qwen3.5 norms scale by 1 + w
  const silu = (input: string, scope: string) => g.node('Mul', `${scope}/Mul`, [input, g.node('Sigmoid', `${scope}/Sigmoid`, [input])]);

  // Lengths, the current tokens' mask [B, S, 1] and the attention bias [B, 1, S, T] (causal and padding).
  const sequenceLength = g.node('Gather', '/model/get_seq_len/Gather', [g.node('Shape', '/model/get_seq_len/Shape', ['inputs_embeds']), g.int64([1], true)], { axis: 0 });
  const totalLength = g.node('Gather', '/model/get_total_len/Gather', [g.node('Shape', '/model/get_total_len/Shape', ['attention_mask']), g.int64([1], true)], { axis: 0 });
  const minusSequence = g.node('Neg', '/model/current_mask/Neg', [g.node('Unsqueeze', '/model/current_mask/Unsqueeze_len', [sequenceLength, g.int64([0])])]);
  const currentMask = g.node('Slice', '/model/current_mask/Slice', ['attention_mask', minusSequence, g.int64([LAST]), g.int64([1])]); // [B, S]
  const tokenMask = g.node('Unsqueeze', '/model/current_mask/Unsqueeze', [g.node('Cast', '/model/current_mask/Cast', [currentMask], { to: OnnxDataType.FLOAT }), g.int64([2])]);
  const zero = g.int64([0], true);
  const one = g.int64([1], true);
  const keyPositions = g.node('Range', '/model/attn_mask/Range_keys', [zero, totalLength, one]); // [T]
  const queryPositions = g.node('Unsqueeze', '/model/attn_mask/Unsqueeze_queries', [g.node('Range', '/model/attn_mask/Range_queries', [g.node('Sub', '/model/attn_mask/Sub', [totalLength, sequenceLength]), totalLength, one]), g.int64([1])]); // [S, 1]
  const notPadding = g.node('Unsqueeze', '/model/attn_mask/Unsqueeze_mask', [g.node('Cast', '/model/attn_mask/Cast', ['attention_mask'], { to: OnnxDataType.BOOL }), g.int64([1, 2])]); // [B, 1, 1, T]
  const allowed = g.node('And', '/model/attn_mask/And', [g.node('LessOrEqual', '/model/attn_mask/LessOrEqual', [keyPositions, queryPositions]), notPadding]);
  const attentionBias = g.node('Where', '/model/attn_mask/Where', [allowed, g.scalar(0), g.scalar(MASKED)]); // [B, 1, S, T]
  // Within the current chunk, token s feeds token t when s ≤ t: [S(t), S(s)].
  // GroupQueryAttention's inputs, as the genai builder makes them from attention_mask.
  const batchSize = g.node('Unsqueeze', '/model/attn_mask_reformat/BatchSize/Unsqueeze', [g.node('Gather', '/model/attn_mask_reformat/Gather_batch', [g.node('Shape', '/model/attn_mask_reformat/Shape', ['attention_mask']), zero], { axis: 0 }), g.int64([0])]);
  const seqlensK = g.node('Cast', '/model/attn_mask_reformat/attn_mask_subgraph/Expand/Cast', [g.node('Expand', '/model/attn_mask_reformat/attn_mask_subgraph/Expand', [g.node('Unsqueeze', '/model/attn_mask_reformat/attn_mask_subgraph/Sub/Unsqueeze', [g.node('Sub', '/model/attn_mask_reformat/attn_mask_subgraph/Sub', [totalLength, one]), g.int64([0])]), batchSize])], { to: OnnxDataType.INT32 });
  const totalLength32 = g.node('Cast', '/model/attn_mask_reformat/attn_mask_subgraph/Gather/Cast', [totalLength], { to: OnnxDataType.INT32 });
  const paddingBias = g.node('Mul', '/model/gqa_attention_bias/Mul', [g.node('Sub', '/model/gqa_attention_bias/Sub', [g.scalar(1), g.node('Cast', '/model/gqa_attention_bias/Cast', ['attention_mask'], { to: OnnxDataType.FLOAT })]), g.scalar(-3.4028234663852886e38)]);
  const biasShape = g.node('Concat', '/model/gqa_attention_bias/Target4D', [batchSize, g.int64([1]), g.node('Unsqueeze', '/model/gqa_attention_bias/Unsqueeze_S', [sequenceLength, g.int64([0])]), g.node('Unsqueeze', '/model/gqa_attention_bias/Unsqueeze_T', [totalLength, g.int64([0])])], { axis: 0 });
  const groupQueryBias = g.node('Expand', '/model/gqa_attention_bias/Expand', [g.node('Unsqueeze', '/model/gqa_attention_bias/Unsqueeze', [paddingBias, g.int64([1, 2])]), biasShape]); // [B, 1, S, T]
  const chunkPositions = g.node('Range', '/model/chunk_causal/Range', [zero, sequenceLength, one]);
  const chunkCausal = g.node('LessOrEqual', '/model/chunk_causal/LessOrEqual', [g.node('Unsqueeze', '/model/chunk_causal/Unsqueeze_s', [chunkPositions, g.int64([0])]), g.node('Unsqueeze', '/model/chunk_causal/Unsqueeze_t', [chunkPositions, g.int64([1])])]);

  // mRoPE angles [B, S, rot/2]: each frequency reads its own axis of position_ids [3, B, S].
  const half = rotaryDim / 2;
  const axisFrequencies = new Float32Array(3 * half); // [3, 1, 1, half]
  for (let j = 0; j < half; j++) axisFrequencies[mropeAxis(config, j) * half + j] = 1 / config.ropeTheta ** ((2 * j) / rotaryDim);
  const positions = g.node('Unsqueeze', '/model/mrope/Unsqueeze', [g.node('Cast', '/model/mrope/Cast', ['position_ids'], { to: OnnxDataType.FLOAT }), g.int64([-1])]); // [3, B, S, 1]
  const angles = g.node('ReduceSum', '/model/mrope/ReduceSum', [g.node('Mul', '/model/mrope/Mul', [positions, g.float('/model/mrope/axis_inv_freq', [3, 1, 1, half], axisFrequencies)]), g.int64([0])], { keepdims: 0 });
  const bothHalves = g.node('Concat', '/model/mrope/Concat', [angles, angles], { axis: -1 }); // [B, S, rot]
  const cos = g.node('Unsqueeze', '/model/mrope/Unsqueeze_cos', [g.node('Cos', '/model/mrope/Cos', [bothHalves]), g.int64([2])]); // [B, S, 1, rot]
  const sin = g.node('Unsqueeze', '/model/mrope/Unsqueeze_sin', [g.node('Sin', '/model/mrope/Sin', [bothHalves]), g.int64([2])]);
  const slice = (input: string, scope: string, start: number, end: number, axis: number) => g.node('Slice', scope, [input, g.int64([start]), g.int64([end]), g.int64([axis])]);
  const rope = (input: string, scope: string) => {
    // [B, S, heads, headDim]: rotate_half on the first rot dims, the rest unrotated (partial rotary).
    const rotary = slice(input, `${scope}/Slice_rot`, 0, rotaryDim, 3);
    const rotated = g.node('Concat', `${scope}/Concat_half`, [g.node('Neg', `${scope}/Neg`, [slice(rotary, `${scope}/Slice_x2`, half, rotaryDim, 3)]), slice(rotary, `${scope}/Slice_x1`, 0, half, 3)], { axis: 3 });
    const turned = g.node('Add', `${scope}/Add`, [g.node('Mul', `${scope}/Mul_cos`, [rotary, cos]), g.node('Mul', `${scope}/Mul_sin`, [rotated, sin])]);
    return g.node('Concat', `${scope}/Concat`, [turned, slice(input, `${scope}/Slice_pass`, rotaryDim, headDim, 3)], { axis: 3 });
  };
  const headsFirst = [0, 2, 1, 3];

  const fullAttention = (layer: number, normed: string): string => {
    const scope = `/model/layers.${layer}/attn`;
    const w = `layers.${layer}.self_attn.`;
    const queryAndGate = g.node('Reshape', `${scope}/q_proj/Reshape_PreSplit`, [linear(`${w}q_proj.weight`, normed, `${scope}/q_proj`), g.int64([0, 0, numHeads, 2 * headDim])]);
    const [queryRaw, gateRaw] = [`${scope}/q_proj/Split/output_0`, `${scope}/q_proj/Split/output_1`];
    g.node('Split', `${scope}/q_proj/Split`, [queryAndGate, g.int64([headDim, headDim])], { axis: -1 }, [queryRaw, gateRaw]);
    const gate = g.node('Sigmoid', `${scope}/q_proj/GateSigmoid`, [g.node('Reshape', `${scope}/q_proj/Reshape_Gate`, [gateRaw, g.int64([0, 0, numHeads * headDim])])]);
    const headNorm = (input: string, kind: 'q' | 'k') =>
      g.node('SimplifiedLayerNormalization', `${scope}/${kind}_norm/SimplifiedLayerNormalization`, [input, g.float(`model.layers.${layer}.attn.${kind}_norm.layernorm.weight`, [headDim], onePlus(`${w}${kind}_norm.weight`))], { axis: -1, epsilon, stash_type: 1 });
    const rotatedQuery = rope(headNorm(queryRaw, 'q'), `${scope}/q_rotary`); // [B, S, H, hd]
    const keyRaw = g.node('Reshape', `${scope}/k_proj/Reshape`, [linear(`${w}k_proj.weight`, normed, `${scope}/k_proj`), g.int64([0, 0, numKeyValueHeads, headDim])]);
    const rotatedKey = rope(headNorm(keyRaw, 'k'), `${scope}/k_rotary`); // [B, S, KV, hd]
    if (options.attention === 'group-query') {
      const flat = (input: string, kind: string, heads: number) => g.node('Reshape', `${scope}/${kind}_rotary/Reshape_flat`, [input, g.int64([0, 0, heads * headDim])]);
      const attended = `${scope}/GroupQueryAttention/output_0`;
      g.node(
        'GroupQueryAttention',
        `${scope}/GroupQueryAttention`,
        [flat(rotatedQuery, 'q', numHeads), flat(rotatedKey, 'k', numKeyValueHeads), linear(`${w}v_proj.weight`, normed, `${scope}/v_proj`), `past_key_values.${layer}.key`, `past_key_values.${layer}.value`, seqlensK, totalLength32, '', '', '', groupQueryBias],
        { num_heads: numHeads, kv_num_heads: numKeyValueHeads },
        [attended, `present.${layer}.key`, `present.${layer}.value`],
        'com.microsoft',
      );
      return linear(`${w}o_proj.weight`, g.node('Mul', `${scope}/GateMul`, [attended, gate]), `${scope}/o_proj`);
    }
    const query = g.node('Transpose', `${scope}/q_rotary/Transpose`, [rotatedQuery], { perm: headsFirst }); // [B, H, S, hd]
    const key = g.node('Transpose', `${scope}/k_rotary/Transpose`, [rotatedKey], { perm: headsFirst }); // [B, KV, S, hd]
    const value = g.node('Transpose', `${scope}/v_proj/Transpose`, [g.node('Reshape', `${scope}/v_proj/Reshape`, [linear(`${w}v_proj.weight`, normed, `${scope}/v_proj`), g.int64([0, 0, numKeyValueHeads, headDim])])], { perm: headsFirst });
    const keys = g.node('Concat', `${scope}/Concat_key`, [`past_key_values.${layer}.key`, key], { axis: 2 }, [`present.${layer}.key`]); // [B, KV, T, hd]
    const values = g.node('Concat', `${scope}/Concat_value`, [`past_key_values.${layer}.value`, value], { axis: 2 }, [`present.${layer}.value`]);
    const repeat = (input: string, kind: string) =>
      g.node('Reshape', `${scope}/repeat_kv/Reshape_${kind}`, [g.node('Expand', `${scope}/repeat_kv/Expand_${kind}`, [g.node('Unsqueeze', `${scope}/repeat_kv/Unsqueeze_${kind}`, [input, g.int64([2])]), g.int64([1, 1, numHeads / numKeyValueHeads, 1, 1])]), g.int64([0, numHeads, -1, headDim])]);
    const scores = g.node('Add', `${scope}/Add_mask`, [g.node('Mul', `${scope}/Mul_scale`, [g.node('MatMul', `${scope}/MatMul_scores`, [query, g.node('Transpose', `${scope}/Transpose_keys`, [repeat(keys, 'key')], { perm: [0, 1, 3, 2] })]), g.scalar(1 / Math.sqrt(headDim))]), attentionBias]);
    const context = g.node('MatMul', `${scope}/MatMul_context`, [g.node('Softmax', `${scope}/Softmax`, [scores], { axis: -1 }), repeat(values, 'value')]); // [B, H, S, hd]
    const merged = g.node('Reshape', `${scope}/Reshape_merge`, [g.node('Transpose', `${scope}/Transpose_merge`, [context], { perm: headsFirst }), g.int64([0, 0, numHeads * headDim])]);
    return linear(`${w}o_proj.weight`, g.node('Mul', `${scope}/GateMul`, [merged, gate]), `${scope}/o_proj`);
  };

  const linearAttention = (layer: number, normed: string): string => {
    const scope = `/model/layers.${layer}/gdn`;
    const w = `layers.${layer}.linear_attn.`;
    const channels = convChannels(config);
    const masked = g.node('Mul', `${scope}/mask_padding/Mul`, [normed, tokenMask]); // padding tokens feed nothing forward
    // Causal depthwise conv over [conv state (K columns) | this chunk], state = the last K columns.
    const chunk = g.node('Transpose', `${scope}/conv/Transpose_in`, [linear(`${w}in_proj_qkv.weight`, masked, `${scope}/in_proj_qkv`)], { perm: [0, 2, 1] }); // [B, C, S]
    const history = g.node('Concat', `${scope}/conv/Concat`, [`past_conv.${layer}`, chunk], { axis: 2 }); // [B, C, K + S]
    g.node('Slice', `${scope}/conv/Slice_state`, [history, g.int64([-convKernel]), g.int64([LAST]), g.int64([2])], {}, [`present_conv.${layer}`]);
    const convolved = g.node('Conv', `${scope}/conv/Conv`, [history, g.float(`model.layers.${layer}.gdn.conv1d.weight`, [channels, 1, convKernel], weight(`${w}conv1d.weight`))], { group: channels }); // [B, C, S + 1]
    const activated = silu(g.node('Transpose', `${scope}/conv/Transpose_out`, [slice(convolved, `${scope}/conv/Slice_out`, 1, LAST, 2)], { perm: [0, 2, 1] }), `${scope}/conv/act`); // [B, S, C]
    const keyWidth = linearHeads * dk;
    const l2 = (input: string, kind: string) => {
      const norm = g.node('Sqrt', `${scope}/${kind}_l2norm/Sqrt`, [g.node('Add', `${scope}/${kind}_l2norm/Add`, [g.node('ReduceSum', `${scope}/${kind}_l2norm/ReduceSum`, [g.node('Mul', `${scope}/${kind}_l2norm/Square`, [input, input]), g.int64([-1])], { keepdims: 1 }), g.scalar(L2_EPSILON)])]);
      return g.node('Div', `${scope}/${kind}_l2norm/Div`, [input, norm]);
    };
    const heads = (input: string, kind: string, width: number) => g.node('Reshape', `${scope}/${kind}/Reshape`, [input, g.int64([0, 0, linearHeads, width])]);
    const query = g.node('Transpose', `${scope}/q/Transpose`, [g.node('Mul', `${scope}/q/Scale`, [l2(heads(slice(activated, `${scope}/q/Slice`, 0, keyWidth, 2), 'q', dk), 'q'), g.scalar(1 / Math.sqrt(dk))])], { perm: headsFirst }); // [B, H, S, dk]
    const key = g.node('Transpose', `${scope}/k/Transpose`, [l2(heads(slice(activated, `${scope}/k/Slice`, keyWidth, 2 * keyWidth, 2), 'k', dk), 'k')], { perm: headsFirst }); // [B, H, S, dk]
    const value = g.node('Transpose', `${scope}/v/Transpose`, [heads(slice(activated, `${scope}/v/Slice`, 2 * keyWidth, channels, 2), 'v', dv)], { perm: headsFirst }); // [B, H, S, dv]
    const beta = g.node('Transpose', `${scope}/beta/Transpose`, [g.node('Sigmoid', `${scope}/beta/Sigmoid`, [linear(`${w}in_proj_b.weight`, masked, `${scope}/in_proj_b`)])], { perm: [0, 2, 1] }); // [B, H, S]
    const minusRate = Float32Array.from(weight(`${w}A_log`), (value) => -Math.exp(value));
    const softplus = g.node('Softplus', `${scope}/decay/Softplus`, [g.node('Add', `${scope}/decay/Add`, [linear(`${w}in_proj_a.weight`, masked, `${scope}/in_proj_a`), g.float(`model.layers.${layer}.gdn.dt_bias`, [linearHeads], weight(`${w}dt_bias`))])]);
    const logDecay = g.node('Transpose', `${scope}/decay/Transpose`, [g.node('Mul', `${scope}/decay/Mul`, [softplus, g.float(`model.layers.${layer}.gdn.minus_exp_A_log`, [linearHeads], minusRate)])], { perm: [0, 2, 1] }); // [B, H, S], ≤ 0
    const cumulative = g.node('CumSum', `${scope}/decay/CumSum`, [logDecay, g.int64([2], true)]); // G_t
    const pairDecay = g.node('Sub', `${scope}/decay/Sub_pairs`, [g.node('Unsqueeze', `${scope}/decay/Unsqueeze_t`, [cumulative, g.int64([3])]), g.node('Unsqueeze', `${scope}/decay/Unsqueeze_s`, [cumulative, g.int64([2])])]); // [B, H, S(t), S(s)]: G_t − G_s
    const decay = g.node('Exp', `${scope}/decay/Exp_pairs`, [g.node('Where', `${scope}/decay/Where_causal`, [chunkCausal, pairDecay, g.scalar(MASKED)])]);
    const scores = g.node('Mul', `${scope}/recurrence/Mul_beta`, [g.node('Mul', `${scope}/recurrence/Mul_decay`, [g.node('MatMul', `${scope}/recurrence/MatMul_qk`, [query, g.node('Transpose', `${scope}/recurrence/Transpose_k`, [key], { perm: [0, 1, 3, 2] })]), decay]), g.node('Unsqueeze', `${scope}/recurrence/Unsqueeze_beta`, [beta, g.int64([2])])]);
    const state = `past_recurrent.${layer}`; // [B, H, dk, dv]
    const fromState = g.node('Mul', `${scope}/recurrence/Mul_state_decay`, [g.node('MatMul', `${scope}/recurrence/MatMul_state`, [query, state]), g.node('Unsqueeze', `${scope}/recurrence/Unsqueeze_G`, [g.node('Exp', `${scope}/recurrence/Exp_G`, [cumulative]), g.int64([3])])]);
    const output = g.node('Transpose', `${scope}/recurrence/Transpose_out`, [g.node('Add', `${scope}/recurrence/Add`, [g.node('MatMul', `${scope}/recurrence/MatMul_v`, [scores, value]), fromState])], { perm: headsFirst }); // [B, S, H, dv]
    // New state: e^{G_T} S_0 + Σ_s e^{G_T − G_s} β_s k_s v_sᵀ.
    const lastCumulative = slice(cumulative, `${scope}/state/Slice_last`, -1, LAST, 2); // [B, H, 1]
    const weightsOfTokens = g.node('Mul', `${scope}/state/Mul_beta`, [g.node('Exp', `${scope}/state/Exp`, [g.node('Sub', `${scope}/state/Sub`, [lastCumulative, cumulative])]), beta]);
    const update = g.node('MatMul', `${scope}/state/MatMul`, [g.node('Transpose', `${scope}/state/Transpose_k`, [g.node('Mul', `${scope}/state/Mul_k`, [key, g.node('Unsqueeze', `${scope}/state/Unsqueeze_w`, [weightsOfTokens, g.int64([3])])])], { perm: [0, 1, 3, 2] }), value]);
    const carried = g.node('Mul', `${scope}/state/Mul_carry`, [state, g.node('Unsqueeze', `${scope}/state/Unsqueeze_last`, [g.node('Exp', `${scope}/state/Exp_last`, [lastCumulative]), g.int64([3])])]);
    g.node('Add', `${scope}/state/Add`, [carried, update], {}, [`present_recurrent.${layer}`]);
    const normedOutput = g.node('SimplifiedLayerNormalization', `${scope}/norm/SimplifiedLayerNormalization`, [output, g.float(`model.layers.${layer}.gdn.norm.weight`, [dv], weight(`${w}norm.weight`))], { axis: -1, epsilon, stash_type: 1 });
    const z = heads(linear(`${w}in_proj_z.weight`, masked, `${scope}/in_proj_z`), 'z', dv);
    const gated = g.node('Reshape', `${scope}/Reshape_out`, [g.node('Mul', `${scope}/GateMul`, [normedOutput, silu(z, `${scope}/z_act`)]), g.int64([0, 0, linearHeads * dv])]);
    return linear(`${w}out_proj.weight`, gated, `${scope}/out_proj`);
  };

  const mlp = (layer: number, normed: string): string => {
    const scope = `/model/layers.${layer}/mlp`;
    const w = `layers.${layer}.mlp.`;
    const hidden = g.node('Mul', `${scope}/Mul`, [silu(linear(`${w}gate_proj.weight`, normed, `${scope}/gate_proj`), `${scope}/act_fn`), linear(`${w}up_proj.weight`, normed, `${scope}/up_proj`)]);
    return linear(`${w}down_proj.weight`, hidden, `${scope}/down_proj`);
  };

  const skipNorm = (scope: string, stream: string, branch: string, gammaName: string, gamma: Float32Array, withSum: boolean) => {
    const outputs = withSum ? [`${scope}/output_0`, '', '', `${scope}/output_3`] : [`${scope}/output_0`];
    g.node('SkipSimplifiedLayerNormalization', `${scope}/SkipLayerNorm`, [stream, branch, g.float(gammaName, [d], gamma)], { epsilon }, outputs, 'com.microsoft');
    return { normed: outputs[0], sum: outputs[outputs.length - 1] };
  };

  const pastInputs: ValueInfoProto[] = [];
  const presentOutputs: ValueInfoProto[] = [];
  let stream = 'inputs_embeds';
  let pendingBranch = '';
  config.layerTypes.forEach((type, layer) => {
    const inputNormScope = `/model/layers.${layer}/input_layernorm`;
    const inputGamma = onePlus(`layers.${layer}.input_layernorm.weight`);
    let normed: string;
    if (layer === 0) {
      normed = g.node('SimplifiedLayerNormalization', `${inputNormScope}/LayerNorm`, [stream, g.float('model.layers.0.input_layernorm.weight', [d], inputGamma)], { axis: -1, epsilon, stash_type: 1 }, [`${inputNormScope}/output_0`]);
    } else {
      const joined = skipNorm(inputNormScope, stream, pendingBranch, `model.layers.${layer}.input_layernorm.weight`, inputGamma, true);
      normed = joined.normed;
      stream = joined.sum;
    }
    if (type === 'linear_attention') {
      const channels = convChannels(config);
      pastInputs.push(valueInfo(`past_conv.${layer}`, OnnxDataType.FLOAT, ['batch_size', channels, convKernel]), valueInfo(`past_recurrent.${layer}`, OnnxDataType.FLOAT, ['batch_size', linearHeads, dk, dv]));
      presentOutputs.push(valueInfo(`present_conv.${layer}`, OnnxDataType.FLOAT, ['batch_size', channels, convKernel]), valueInfo(`present_recurrent.${layer}`, OnnxDataType.FLOAT, ['batch_size', linearHeads, dk, dv]));
    } else {
      for (const kind of ['key', 'value']) {
        pastInputs.push(valueInfo(`past_key_values.${layer}.${kind}`, OnnxDataType.FLOAT, ['batch_size', numKeyValueHeads, 'past_sequence_length', headDim]));
        presentOutputs.push(valueInfo(`present.${layer}.${kind}`, OnnxDataType.FLOAT, ['batch_size', numKeyValueHeads, 'total_sequence_length', headDim]));
      }
    }
    const mixed = type === 'linear_attention' ? linearAttention(layer, normed) : fullAttention(layer, normed);
    const afterMixer = skipNorm(`/model/layers.${layer}/post_attention_layernorm`, stream, mixed, `model.layers.${layer}.post_attention_layernorm.weight`, onePlus(`layers.${layer}.post_attention_layernorm.weight`), true);
    stream = afterMixer.sum;
    pendingBranch = mlp(layer, afterMixer.normed);
  });
  const final = skipNorm(`/model/layers.${numLayers}/final_norm_layernorm`, stream, pendingBranch, 'model.norm.weight', onePlus('norm.weight'), false);
  const table = weight('embed_tokens.weight'); // tied: the lm_head is the embedding
  g.node('MatMul', '/lm_head/MatMul', [final.normed, g.float('lm_head.MatMul.weight', [d, config.vocabSize], transposed(table, config.vocabSize, d))], {}, ['logits']);
  return model(
    g,
    'decoder_model_merged',
    [
      valueInfo('inputs_embeds', OnnxDataType.FLOAT, ['batch_size', 'sequence_length', d]),
      valueInfo('attention_mask', OnnxDataType.INT64, ['batch_size', 'total_sequence_length']),
      valueInfo('position_ids', OnnxDataType.INT64, [3, 'batch_size', 'sequence_length']),
      ...pastInputs,
    ],
    [valueInfo('logits', OnnxDataType.FLOAT, ['batch_size', 'sequence_length', config.vocabSize]), ...presentOutputs],
  );
}
