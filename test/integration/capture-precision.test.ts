/**
 * Capture on the precisions users run (toy-llama's graph converted by test/helpers/onnx-precision.ts: fp16
 * weights, q8 QDQ, q4 MatMulNBits): the captured residuals equal an independent float64 forward on the weights as
 * that precision stores them (quantized and dequantized here, in the test), to float32 noise (q8: to onnxruntime's
 * int8 activation rounding, see FORWARD_TOLERANCE); and they stay within
 * the precision's named tolerance of the float32 model's residuals (the quantization's own effect).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../src/core/dtypes';
import { captureActivations, openCaptureSession, type CaptureResult } from '../../src/engine/capture';
import { createChatTokenizer, loadTokenizerFiles, type ChatTokenizer } from '../../src/engine/tokenize';
import { parsePromptFile, type PromptRecord } from '../../src/formats/prompts';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { createNodeSessionFactory } from '../../src/platform/ort-node';
import { TOY_LLAMA_DIR } from '../helpers/fixtures';
import { llamaReferenceForward, loadLlamaReference, type LlamaReferenceConfig } from '../helpers/llama-reference-forward';
import { convertGraphPrecision, Q4_BLOCK, quantizeQ4, quantizeQ8, type Precision } from '../helpers/onnx-precision';

/**
 * ONNX vs the float64 forward on the same stored weights, through 4 blocks (residual norms reach ~15): float32
 * noise for fp16 and q4. For q8, onnxruntime's CPU optimizer rewrites DequantizeLinear → MatMul as an 8-bit
 * MatMulNBits at accuracy level 4, which also rounds the activations to int8 per block of 32: an error of about
 * one activation step (|x| ≲ 1 after the norms, step ≤ 1/127) per matmul, measured 1.3e-2 at most.
 */
const FORWARD_TOLERANCE: Record<Precision, number> = { fp16: 1e-4, q8: 3e-2, q4: 1e-4 };
/**
 * Largest relative deviation ‖x_precision − x_fp32‖ / ‖x_fp32‖ of a captured residual (any prompt, any layer):
 * float16 rounds each weight by at most 2⁻¹¹ relative; int8 per tensor by half a step of max|W|/127; 4-bit blocks
 * of 16 by half a step of max|block|/7, an error of a few percent of each weight.
 */
const PRECISION_TOLERANCE: Record<Precision, number> = { fp16: 2e-3, q8: 3e-2, q4: 0.25 };
/** The comparison must see the quantization at all: each variant moves some residual by more than this. */
const MIN_DEVIATION = 1e-6;
const PROJECTIONS = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];

let workDir: string;
let tokenizer: ChatTokenizer;
let reference: { config: LlamaReferenceConfig; weights: Map<string, Float32Array> };
let prompts: PromptRecord[];
let fp32: CaptureResult;
const factory = createNodeSessionFactory({ threads: 2 });

async function capture(graphPath: string): Promise<CaptureResult> {
  const session = await openCaptureSession(factory, { bytes: readFileSync(graphPath), name: graphPath }, { numLayers: 4 });
  try {
    return await captureActivations(session, tokenizer, prompts, { batchSize: 4 });
  } finally {
    await session.release();
  }
}

/** W [out, in] (HF layout) as `precision` stores it, back in float: quantized by the converter's own rule. */
function storedWeight(weight: Float32Array, outputs: number, inputs: number, precision: Precision): Float32Array {
  if (precision === 'fp16') return weight.map((value) => float16BitsToFloat32(float32ToFloat16Bits(value)));
  const transposed = new Float32Array(inputs * outputs); // [in, out]: ONNX MatMul layout
  for (let o = 0; o < outputs; o++) for (let i = 0; i < inputs; i++) transposed[i * outputs + o] = weight[o * inputs + i]!;
  const stored = new Float32Array(outputs * inputs); // [out, in]
  if (precision === 'q8') {
    const { data, scale } = quantizeQ8(transposed);
    const values = new Int8Array(data.buffer, data.byteOffset, data.byteLength);
    for (let o = 0; o < outputs; o++) for (let i = 0; i < inputs; i++) stored[o * inputs + i] = values[i * outputs + o]! * scale;
    return stored;
  }
  const { packed, scales } = quantizeQ4(transposed, inputs, outputs);
  const blocks = Math.ceil(inputs / Q4_BLOCK);
  for (let o = 0; o < outputs; o++) {
    for (let i = 0; i < inputs; i++) {
      const block = Math.floor(i / Q4_BLOCK);
      const offset = i % Q4_BLOCK;
      const byte = packed[(o * blocks + block) * (Q4_BLOCK / 2) + (offset >> 1)]!;
      const q = offset % 2 === 0 ? byte & 0x0f : byte >> 4;
      stored[o * inputs + i] = (q - 8) * scales[o * blocks + block]!;
    }
  }
  return stored;
}

function storedWeights(precision: Precision): Map<string, Float32Array> {
  const { config, weights } = reference;
  const stored = new Map(weights);
  const sizes: Record<string, [number, number]> = {
    'self_attn.q_proj': [config.numHeads * config.headDim, config.hiddenSize],
    'self_attn.k_proj': [config.numKeyValueHeads * config.headDim, config.hiddenSize],
    'self_attn.v_proj': [config.numKeyValueHeads * config.headDim, config.hiddenSize],
    'self_attn.o_proj': [config.hiddenSize, config.numHeads * config.headDim],
    'mlp.gate_proj': [config.intermediateSize, config.hiddenSize],
    'mlp.up_proj': [config.intermediateSize, config.hiddenSize],
    'mlp.down_proj': [config.hiddenSize, config.intermediateSize],
  };
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const projection of PROJECTIONS) {
      const name = `model.layers.${layer}.${projection}.weight`;
      const [outputs, inputs] = sizes[projection]!;
      stored.set(name, storedWeight(weights.get(name)!, outputs, inputs, precision));
    }
  }
  // Only the float16 variant stores the embedding table in another precision (quantizers keep Gather tables).
  if (precision === 'fp16') stored.set('model.embed_tokens.weight', storedWeight(weights.get('model.embed_tokens.weight')!, config.vocabSize, config.hiddenSize, 'fp16'));
  return stored;
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'capture-precision-'));
  tokenizer = createChatTokenizer(await loadTokenizerFiles(await openNodeModelFolder(TOY_LLAMA_DIR)));
  reference = await loadLlamaReference(TOY_LLAMA_DIR);
  const read = (name: string) => parsePromptFile(`${name}.jsonl`, readFileSync(join(TOY_LLAMA_DIR, `prompts/${name}.jsonl`), 'utf8'));
  prompts = [...read('harmful_test').slice(0, 2), ...read('shell_agent_test').slice(0, 2)];
  fp32 = await capture(join(TOY_LLAMA_DIR, 'onnx/model.onnx'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('capture on float16 and quantized graphs', () => {
  for (const precision of ['fp16', 'q8', 'q4'] as Precision[]) {
    it(`${precision}: residuals equal the float64 forward on the stored weights, within ${PRECISION_TOLERANCE[precision]} of float32's`, async () => {
      const graph = join(workDir, `${precision}.onnx`);
      cpSync(join(TOY_LLAMA_DIR, 'onnx/model.onnx'), graph);
      convertGraphPrecision(graph, precision);
      const result = await capture(graph);
      const { config } = reference;
      const d = config.hiddenSize;
      const layers = config.numLayers + 1;
      expect(result.layerCount).toBe(layers);
      const weights = storedWeights(precision);
      let forwardError = 0;
      let deviation = 0;
      prompts.forEach((prompt, index) => {
        const ids = tokenizer.encodeChat(prompt.messages);
        const forward = llamaReferenceForward(config, weights, ids);
        for (let layer = 0; layer < layers; layer++) {
          const expected = forward.hiddenStates[layer]!.subarray((ids.length - 1) * d, ids.length * d);
          const actual = result.activations!.subarray((index * layers + layer) * d, (index * layers + layer + 1) * d); // [dModel]
          const full = fp32.activations!.subarray((index * layers + layer) * d, (index * layers + layer + 1) * d); // [dModel]
          let difference = 0;
          let norm = 0;
          for (let k = 0; k < d; k++) {
            forwardError = Math.max(forwardError, Math.abs(actual[k]! - expected[k]!));
            difference += (actual[k]! - full[k]!) ** 2;
            norm += full[k]! ** 2;
          }
          deviation = Math.max(deviation, Math.sqrt(difference / norm));
        }
      });
      console.log(`capture ${precision}: max |capture − float64 forward| ${forwardError.toExponential(2)}, max relative deviation from float32 ${deviation.toExponential(2)}`);
      expect(forwardError).toBeLessThan(FORWARD_TOLERANCE[precision]);
      expect(deviation).toBeGreaterThan(MIN_DEVIATION);
      expect(deviation).toBeLessThan(PRECISION_TOLERANCE[precision]);
    }, 120_000);
  }
});
