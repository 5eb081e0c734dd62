/**
 * Runtime checks of the graph builders on small synthetic decoders run by onnxruntime-node, against a float64
 * re-computation in the test:
 * - genai style (SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization, inputs_embeds, final norm
 *   without output 3): confirms ORT's output 3 is input + skip and that exposing it on the final norm works;
 * - torch style in float16: the capture graph Casts to float32, the hook runs in float32 between Casts.
 * Weight-edit equivalence on real models is covered by the integration tests; here the hook is checked
 * against x − α r(r·x) applied in the float64 re-computation.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../src/core/dtypes';
import { OnnxDataType, encodeOnnxModel, float32Initializer, int64Initializer, intAttribute, onnx, tensorValueInfo } from '../../src/formats/onnx';
import type { ModelProto, NodeProto, TensorProto } from '../../src/formats/onnx';
import { buildCaptureGraph } from '../../src/model/capture-graph';
import { buildHookGraph } from '../../src/model/hook-graph';
import { findResidualPoints } from '../../src/model/residual-finder';
import { expectTopologicallySorted } from '../helpers/toy-llama-session';

const D = 8;
const HIDDEN = 12;
const VOCAB = 11;
const BLOCKS = 2;
const EPSILON = 1e-6;
const FLOAT32_TOLERANCE = 1e-5;
const FLOAT16_TOLERANCE = 2e-2;

function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648 - 0.5;
  };
}

type Matrix = { rows: number; cols: number; values: Float64Array };

interface Weights {
  embedding: Matrix; // [vocab, d]
  norms: Float64Array[]; // 2·BLOCKS + 1 gains [d]
  attentionOut: Matrix[]; // [d, d] per block (ONNX layout: x·W)
  attentionBias: Float64Array; // [d], block 0 only: a bias Add (torch) or the Skip norm's bias input (genai)
  up: Matrix[]; // [d, hidden]
  down: Matrix[]; // [hidden, d]
  head: Matrix; // [d, vocab]
}

function makeWeights(elemType: number): Weights {
  const random = seeded(42);
  // float16 graphs: round the weights first, so the float64 re-computation uses the very same values.
  const round = (value: number) => (elemType === OnnxDataType.FLOAT16 ? float16BitsToFloat32(float32ToFloat16Bits(value)) : Math.fround(value));
  const matrix = (rows: number, cols: number, scale: number): Matrix => ({ rows, cols, values: Float64Array.from({ length: rows * cols }, () => round(random() * scale)) });
  return {
    embedding: matrix(VOCAB, D, 2),
    norms: Array.from({ length: 2 * BLOCKS + 1 }, () => Float64Array.from({ length: D }, () => round(1 + random()))),
    attentionOut: Array.from({ length: BLOCKS }, () => matrix(D, D, 0.8)),
    attentionBias: Float64Array.from({ length: D }, () => round(random())),
    up: Array.from({ length: BLOCKS }, () => matrix(D, HIDDEN, 0.8)),
    down: Array.from({ length: BLOCKS }, () => matrix(HIDDEN, D, 0.8)),
    head: matrix(D, VOCAB, 1),
  };
}

function initializer(name: string, dims: number[], values: ArrayLike<number>, elemType: number): TensorProto {
  if (elemType === OnnxDataType.FLOAT) return float32Initializer(name, dims, values);
  const bits = Uint16Array.from(values, (value) => float32ToFloat16Bits(value));
  return onnx.TensorProto.create({ name, dims, dataType: OnnxDataType.FLOAT16, rawData: new Uint8Array(bits.buffer) });
}

function node(opType: string, inputs: string[], outputs: string[], attributes: NodeProto['attribute'] = [], domain = ''): NodeProto {
  return onnx.NodeProto.create({ opType, name: `${opType}_${outputs.find((output) => output) ?? ''}`, input: inputs, output: outputs, attribute: attributes, domain });
}

/** genai: inputs_embeds + Skip norms; torch: Gather embedding + Add residuals (norms stood in by a gain Mul). */
function buildGraph(style: 'genai' | 'torch', elemType: number, weights: Weights): ModelProto {
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [int64Initializer('axes_last', [1], [-1])];
  const add = (name: string, matrix: Matrix | Float64Array) => {
    initializers.push(matrix instanceof Float64Array ? initializer(name, [matrix.length], matrix, elemType) : initializer(name, [matrix.rows, matrix.cols], matrix.values, elemType));
    return name;
  };
  nodes.push(node('Cast', ['attention_mask'], ['mask_float'], [intAttribute('to', elemType)]));
  nodes.push(node('Unsqueeze', ['mask_float', 'axes_last'], ['mask'])); // [batch, seq, 1]
  let stream = 'inputs_embeds';
  if (style === 'torch') nodes.push(node('Gather', [add('embedding', weights.embedding), 'input_ids'], (stream = 'embedded', ['embedded'])));
  const epsilon = onnx.AttributeProto.create({ name: 'epsilon', type: onnx.AttributeProto.AttributeType.FLOAT, f: EPSILON });
  let normed = `norm_0`;
  if (style === 'genai') nodes.push(node('SimplifiedLayerNormalization', [stream, add('gain_0', weights.norms[0])], [normed], [epsilon]));
  else nodes.push(node('Mul', [stream, add('gain_0', weights.norms[0])], [normed]));
  for (let block = 0; block < BLOCKS; block++) {
    nodes.push(node('Mul', [normed, 'mask'], [`masked_${block}`]));
    const biased = block === 0;
    const projected = biased && style === 'torch' ? `attn_matmul_${block}` : `attn_out_${block}`;
    nodes.push(node('MatMul', [`masked_${block}`, add(`o_proj_${block}`, weights.attentionOut[block])], [projected]));
    if (biased && style === 'torch') nodes.push(node('Add', [projected, add('o_proj_bias', weights.attentionBias)], [`attn_out_${block}`]));
    const mid = `mid_${block}`;
    const skipBias = biased && style === 'genai' ? [add('o_proj_bias', weights.attentionBias)] : [];
    if (style === 'genai') nodes.push(node('SkipSimplifiedLayerNormalization', [stream, `attn_out_${block}`, add(`gain_${2 * block + 1}`, weights.norms[2 * block + 1]), ...skipBias], [`norm_${2 * block + 1}`, '', '', mid], [epsilon], 'com.microsoft'));
    else nodes.push(node('Add', [stream, `attn_out_${block}`], [mid]), node('Mul', [mid, add(`gain_${2 * block + 1}`, weights.norms[2 * block + 1])], [`norm_${2 * block + 1}`]));
    nodes.push(node('MatMul', [`norm_${2 * block + 1}`, add(`up_${block}`, weights.up[block])], [`up_out_${block}`]));
    nodes.push(node('Relu', [`up_out_${block}`], [`act_${block}`]));
    nodes.push(node('MatMul', [`act_${block}`, add(`down_${block}`, weights.down[block])], [`mlp_out_${block}`]));
    const last = block === BLOCKS - 1;
    normed = `norm_${2 * block + 2}`;
    stream = `stream_${block + 1}`;
    if (style === 'genai') nodes.push(node('SkipSimplifiedLayerNormalization', [mid, `mlp_out_${block}`, add(`gain_${2 * block + 2}`, weights.norms[2 * block + 2])], last ? [normed] : [normed, '', '', stream], [epsilon], 'com.microsoft'));
    else nodes.push(node('Add', [mid, `mlp_out_${block}`], [stream]), node('Mul', [stream, add(`gain_${2 * block + 2}`, weights.norms[2 * block + 2])], [normed]));
  }
  nodes.push(node('MatMul', [normed, add('lm_head', weights.head)], ['logits']));
  const firstInput = style === 'genai' ? tensorValueInfo('inputs_embeds', elemType, ['batch', 'sequence', D]) : tensorValueInfo('input_ids', OnnxDataType.INT64, ['batch', 'sequence']);
  return onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    producerName: 'pytorch',
    graph: { name: 'synthetic', node: nodes, initializer: initializers, input: [firstInput, tensorValueInfo('attention_mask', OnnxDataType.INT64, ['batch', 'sequence'])], output: [tensorValueInfo('logits', elemType, ['batch', 'sequence', VOCAB])] },
  });
}

/** Float64 forward of the synthetic graph for one row: returns the L+1 points [seq, d] and logits [seq, vocab]. */
function reference(style: 'genai' | 'torch', weights: Weights, embeds: Float64Array[], mask: number[], hook: ((x: Float64Array) => Float64Array) | null) {
  const matmul = (x: Float64Array, m: Matrix) => Float64Array.from({ length: m.cols }, (_, c) => x.reduce((sum, value, r) => sum + value * m.values[r * m.cols + c], 0));
  const rms = (x: Float64Array, gain: Float64Array) => {
    const scale = style === 'genai' ? 1 / Math.sqrt(x.reduce((sum, value) => sum + value * value, 0) / x.length + EPSILON) : 1;
    return x.map((value, k) => value * scale * gain[k]);
  };
  const identity = (x: Float64Array) => x;
  const h = hook ?? identity;
  const points: Float64Array[][] = [];
  const logits: Float64Array[] = [];
  embeds.forEach((embedding, token) => {
    let x = h(embedding);
    const tokenPoints = [x];
    for (let block = 0; block < BLOCKS; block++) {
      const attention = h(matmul(rms(x, weights.norms[2 * block]).map((value) => value * mask[token]), weights.attentionOut[block]).map((value, k) => value + (block === 0 ? weights.attentionBias[k] : 0)));
      const mid = x.map((value, k) => value + attention[k]);
      const mlp = h(matmul(matmul(rms(mid, weights.norms[2 * block + 1]), weights.up[block]).map((value) => Math.max(0, value)), weights.down[block]));
      x = mid.map((value, k) => value + mlp[k]);
      tokenPoints.push(x);
    }
    points.push(tokenPoints);
    logits.push(matmul(rms(x, weights.norms[2 * BLOCKS]), weights.head));
  });
  return { points, logits };
}

async function run(model: ModelProto, feeds: Record<string, ort.Tensor>, names: string[]) {
  const session = await ort.InferenceSession.create(encodeOnnxModel(model), { intraOpNumThreads: 1 });
  try {
    return await session.run(feeds, names);
  } finally {
    await session.release();
  }
}

function toNumbers(tensor: ort.Tensor): Float64Array {
  if (tensor.type === 'float16') return Float64Array.from(tensor.data as Uint16Array, (bits) => float16BitsToFloat32(bits));
  return Float64Array.from(tensor.data as Float32Array);
}

for (const [style, elemType] of [['genai', OnnxDataType.FLOAT], ['torch', OnnxDataType.FLOAT16]] as const) {
  describe(`synthetic ${style} decoder (${elemType === OnnxDataType.FLOAT ? 'float32' : 'float16'}) on onnxruntime-node`, () => {
    const weights = makeWeights(elemType);
    const model = buildGraph(style, elemType, weights);
    const tokens = [3, 7, 1, 9]; // one row, no padding
    const mask = [1, 1, 1, 1];
    const embeds = tokens.map((token) => weights.embedding.values.slice(token * D, (token + 1) * D));
    const tolerance = elemType === OnnxDataType.FLOAT ? FLOAT32_TOLERANCE : FLOAT16_TOLERANCE;
    const feeds = (): Record<string, ort.Tensor> => {
      const first =
        style === 'genai'
          ? new ort.Tensor('float32', Float32Array.from(embeds.flatMap((row) => Array.from(row))), [1, tokens.length, D])
          : new ort.Tensor('int64', BigInt64Array.from(tokens, (token) => BigInt(token)), [1, tokens.length]);
      return { [style === 'genai' ? 'inputs_embeds' : 'input_ids']: first, attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask, BigInt), [1, tokens.length]) };
    };

    it('finds L + 1 points and captures them, as float32, equal to the float64 re-computation', async () => {
      const residual = findResidualPoints(model, { numLayers: BLOCKS });
      expect(residual.style).toBe(style);
      expect(residual.elemType).toBe(elemType);
      const positions = [-1, 0, 2];
      const capture = buildCaptureGraph(model, { positions });
      const castCount = capture.insertedNodes.filter((name) => name.endsWith('/Cast')).length;
      expect(castCount).toBe(elemType === OnnxDataType.FLOAT ? 0 : BLOCKS + 1);
      expectTopologicallySorted(capture.model);
      const outputs = await run(capture.model, feeds(), capture.outputNames);
      const expected = reference(style, weights, embeds, mask, null);
      let worst = 0;
      capture.outputNames.forEach((name, layer) => {
        expect(outputs[name].type).toBe('float32');
        expect(outputs[name].dims).toEqual([1, positions.length, D]);
        const values = toNumbers(outputs[name]);
        positions.forEach((position, slot) => {
          const token = (position + tokens.length) % tokens.length;
          for (let k = 0; k < D; k++) worst = Math.max(worst, Math.abs(values[slot * D + k] - expected.points[token][layer][k]));
        });
      });
      console.info(`synthetic ${style} capture: max |Δ| = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(tolerance);
    });

    it('hooks embedding and every out-projection with x − α r(r·x)', async () => {
      const random = seeded(5);
      const raw = Float64Array.from({ length: D }, () => random());
      const norm = Math.hypot(...raw);
      const direction = Float32Array.from(raw, (value) => value / norm);
      const scale = 1.6;
      const hook = buildHookGraph(model, { direction, scale, targets: ['embed', 'attn', 'mlp'] });
      const castCount = hook.insertedNodes.filter((name) => /Cast(ToFloat|Back)$/.test(name)).length;
      expect(castCount).toBe(elemType === OnnxDataType.FLOAT ? 0 : 2 * (2 * BLOCKS + 1));
      expectTopologicallySorted(hook.model);
      expect(hook.insertedNodes.some((name) => name.endsWith('/AddBias'))).toBe(style === 'genai');
      const outputs = await run(hook.model, feeds(), ['logits']);
      const project = (x: Float64Array) => {
        const along = x.reduce((sum, value, k) => sum + value * direction[k], 0);
        return x.map((value, k) => value - scale * direction[k] * along);
      };
      const expected = reference(style, weights, embeds, mask, project);
      const unhooked = reference(style, weights, embeds, mask, null);
      const logits = toNumbers(outputs.logits);
      let worst = 0;
      let effect = 0;
      expected.logits.forEach((row, token) =>
        row.forEach((value, k) => {
          worst = Math.max(worst, Math.abs(logits[token * VOCAB + k] - value));
          effect = Math.max(effect, Math.abs(unhooked.logits[token][k] - value));
        }),
      );
      console.info(`synthetic ${style} hook: max |Δ logits| = ${worst.toExponential(2)}, effect = ${effect.toFixed(3)}`);
      expect(effect).toBeGreaterThan(20 * tolerance);
      expect(worst).toBeLessThan(tolerance * Math.max(1, effect));
    });
  });
}
