/**
 * A plain float64 Llama forward pass in TypeScript, independent of ONNX and onnxruntime: the yardstick the
 * capture and hook graphs are checked against. Follows HF `LlamaForCausalLM` (RMSNorm, rotate-half RoPE with
 * rope_theta, grouped-query attention with a causal mask, SiLU-gated MLP, tied or untied head) and returns
 * `hidden_states` by the docs/definitions.md convention: 0 = embedding output, l = output of block l−1, L = output of the
 * last block before the final norm.
 *
 * Runs one unpadded sequence; slow (no batching, no cache) and meant for tiny models such as toy-llama.
 */
import { readFileSync } from 'node:fs';
import { decodeToFloat32, isFloatDType } from '../../src/core/dtypes';
import { readSafetensorsHeader, readTensorBytes } from '../../src/formats/safetensors';
import { openFileSource } from '../../src/platform/node-files';

export interface LlamaReferenceConfig {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
}

export function llamaConfigFromJson(json: Record<string, unknown>): LlamaReferenceConfig {
  const number = (key: string, fallback?: number): number => {
    const value = json[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`config.json: ${key} must be a number`);
    return value;
  };
  const hiddenSize = number('hidden_size');
  const numHeads = number('num_attention_heads');
  return {
    hiddenSize,
    numLayers: number('num_hidden_layers'),
    numHeads,
    numKeyValueHeads: number('num_key_value_heads', numHeads),
    headDim: number('head_dim', hiddenSize / numHeads),
    intermediateSize: number('intermediate_size'),
    rmsNormEps: number('rms_norm_eps'),
    ropeTheta: number('rope_theta', 10000),
    vocabSize: number('vocab_size'),
    tieWordEmbeddings: json.tie_word_embeddings === true,
  };
}

/** A Llama folder's config.json and model.safetensors, read for the reference forward. */
export async function loadLlamaReference(folder: string): Promise<{ config: LlamaReferenceConfig; weights: Map<string, Float32Array> }> {
  const config = llamaConfigFromJson(JSON.parse(readFileSync(`${folder}/config.json`, 'utf8')));
  return { config, weights: await loadSafetensorsAsFloat32(`${folder}/model.safetensors`) };
}

/** Every floating-point tensor of a safetensors file as float32, read through the project's own reader. */
export async function loadSafetensorsAsFloat32(path: string): Promise<Map<string, Float32Array>> {
  const source = await openFileSource(path);
  try {
    const header = await readSafetensorsHeader(source);
    const weights = new Map<string, Float32Array>();
    for (const tensor of header.tensors) {
      if (!isFloatDType(tensor.dtype)) continue;
      weights.set(tensor.name, decodeToFloat32(await readTensorBytes(source, header, tensor.name), tensor.dtype));
    }
    return weights;
  } finally {
    await source.close();
  }
}

export interface LlamaReferenceResult {
  /** L+1 arrays, each [seq, hiddenSize] row-major. */
  hiddenStates: Float64Array[];
  /** [seq, vocab] row-major. */
  logits: Float64Array;
}

/** Additive steering: `vector` [d] is added at every position to hidden state `index` (0 = embedding output). */
export interface AddAtIndexHook {
  index: number;
  vector: ArrayLike<number>;
}

export function llamaReferenceForward(config: LlamaReferenceConfig, weights: Map<string, Float32Array>, tokenIds: number[], addAtIndex?: AddAtIndexHook): LlamaReferenceResult {
  const { hiddenSize: d, numLayers, numHeads, numKeyValueHeads, headDim, intermediateSize, vocabSize } = config;
  const seq = tokenIds.length;
  const weight = (name: string): Float32Array => {
    const value = weights.get(name);
    if (!value) throw new Error(`reference forward: missing tensor ${name}`);
    return value;
  };
  const embedding = weight('model.embed_tokens.weight'); // [vocab, d]
  let hidden: Float64Array = new Float64Array(seq * d); // [seq, d]
  tokenIds.forEach((token, position) => {
    if (!Number.isInteger(token) || token < 0 || token >= vocabSize) throw new Error(`reference forward: token id ${token} out of range`);
    for (let k = 0; k < d; k++) hidden[position * d + k] = embedding[token * d + k];
  });
  const steer = (state: Float64Array, index: number): void => {
    if (addAtIndex?.index !== index) return;
    if (addAtIndex.vector.length !== d) throw new Error(`reference forward: added vector has ${addAtIndex.vector.length} values, expected ${d}`);
    for (let position = 0; position < seq; position++) for (let k = 0; k < d; k++) state[position * d + k] += addAtIndex.vector[k];
  };
  steer(hidden, 0);
  const hiddenStates = [hidden.slice()];
  const { cos, sin } = ropeTables(seq, headDim, config.ropeTheta); // [seq, headDim] each
  for (let layer = 0; layer < numLayers; layer++) {
    const prefix = `model.layers.${layer}`;
    const normed = rmsNorm(hidden, weight(`${prefix}.input_layernorm.weight`), seq, d, config.rmsNormEps);
    const queries = linear(normed, weight(`${prefix}.self_attn.q_proj.weight`), seq, d, numHeads * headDim); // [seq, heads·headDim]
    const keys = linear(normed, weight(`${prefix}.self_attn.k_proj.weight`), seq, d, numKeyValueHeads * headDim);
    const values = linear(normed, weight(`${prefix}.self_attn.v_proj.weight`), seq, d, numKeyValueHeads * headDim);
    applyRope(queries, seq, numHeads, headDim, cos, sin);
    applyRope(keys, seq, numKeyValueHeads, headDim, cos, sin);
    const attention = causalAttention(queries, keys, values, seq, numHeads, numKeyValueHeads, headDim); // [seq, heads·headDim]
    const attentionOut = linear(attention, weight(`${prefix}.self_attn.o_proj.weight`), seq, numHeads * headDim, d);
    hidden = add(hidden, attentionOut);
    const normed2 = rmsNorm(hidden, weight(`${prefix}.post_attention_layernorm.weight`), seq, d, config.rmsNormEps);
    const gate = linear(normed2, weight(`${prefix}.mlp.gate_proj.weight`), seq, d, intermediateSize);
    const up = linear(normed2, weight(`${prefix}.mlp.up_proj.weight`), seq, d, intermediateSize);
    for (let k = 0; k < gate.length; k++) gate[k] = (gate[k] / (1 + Math.exp(-gate[k]))) * up[k];
    hidden = add(hidden, linear(gate, weight(`${prefix}.mlp.down_proj.weight`), seq, intermediateSize, d));
    steer(hidden, layer + 1);
    hiddenStates.push(hidden.slice());
  }
  const final = rmsNorm(hidden, weight('model.norm.weight'), seq, d, config.rmsNormEps);
  const head = config.tieWordEmbeddings ? embedding : weight('lm_head.weight'); // [vocab, d]
  return { hiddenStates, logits: linear(final, head, seq, d, vocabSize) };
}

/** x [rows, inputs] · Wᵀ with W [outputs, inputs] (PyTorch Linear layout). */
function linear(x: Float64Array, w: Float32Array, rows: number, inputs: number, outputs: number): Float64Array {
  if (w.length !== inputs * outputs) throw new Error(`reference forward: weight has ${w.length} values, expected ${outputs}×${inputs}`);
  const out = new Float64Array(rows * outputs);
  for (let row = 0; row < rows; row++) {
    for (let o = 0; o < outputs; o++) {
      let sum = 0;
      for (let i = 0; i < inputs; i++) sum += x[row * inputs + i] * w[o * inputs + i];
      out[row * outputs + o] = sum;
    }
  }
  return out;
}

function add(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let k = 0; k < a.length; k++) out[k] = a[k] + b[k];
  return out;
}

function rmsNorm(x: Float64Array, gain: Float32Array, rows: number, d: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let row = 0; row < rows; row++) {
    let squares = 0;
    for (let k = 0; k < d; k++) squares += x[row * d + k] ** 2;
    const inverse = 1 / Math.sqrt(squares / d + eps);
    for (let k = 0; k < d; k++) out[row * d + k] = x[row * d + k] * inverse * gain[k];
  }
  return out;
}

function ropeTables(seq: number, headDim: number, theta: number): { cos: Float64Array; sin: Float64Array } {
  const half = headDim / 2;
  const cos = new Float64Array(seq * headDim);
  const sin = new Float64Array(seq * headDim);
  for (let position = 0; position < seq; position++) {
    for (let j = 0; j < half; j++) {
      const angle = position / theta ** ((2 * j) / headDim);
      for (const k of [j, j + half]) {
        cos[position * headDim + k] = Math.cos(angle);
        sin[position * headDim + k] = Math.sin(angle);
      }
    }
  }
  return { cos, sin };
}

/** In place: x·cos + rotate_half(x)·sin per head, rotate_half(x) = [−x₂, x₁]. */
function applyRope(x: Float64Array, seq: number, heads: number, headDim: number, cos: Float64Array, sin: Float64Array): void {
  const half = headDim / 2;
  const rotated = new Float64Array(headDim);
  for (let position = 0; position < seq; position++) {
    for (let head = 0; head < heads; head++) {
      const base = (position * heads + head) * headDim;
      for (let k = 0; k < half; k++) {
        rotated[k] = -x[base + k + half];
        rotated[k + half] = x[base + k];
      }
      for (let k = 0; k < headDim; k++) x[base + k] = x[base + k] * cos[position * headDim + k] + rotated[k] * sin[position * headDim + k];
    }
  }
}

function causalAttention(q: Float64Array, k: Float64Array, v: Float64Array, seq: number, heads: number, kvHeads: number, headDim: number): Float64Array {
  const out = new Float64Array(seq * heads * headDim);
  const groupSize = heads / kvHeads;
  const scores = new Float64Array(seq);
  for (let head = 0; head < heads; head++) {
    const kvHead = Math.floor(head / groupSize);
    for (let query = 0; query < seq; query++) {
      let max = -Infinity;
      for (let key = 0; key <= query; key++) {
        let dot = 0;
        for (let c = 0; c < headDim; c++) dot += q[(query * heads + head) * headDim + c] * k[(key * kvHeads + kvHead) * headDim + c];
        scores[key] = dot / Math.sqrt(headDim);
        max = Math.max(max, scores[key]);
      }
      let total = 0;
      for (let key = 0; key <= query; key++) total += scores[key] = Math.exp(scores[key] - max);
      for (let c = 0; c < headDim; c++) {
        let sum = 0;
        for (let key = 0; key <= query; key++) sum += scores[key] * v[(key * kvHeads + kvHead) * headDim + c];
        out[(query * heads + head) * headDim + c] = sum / total;
      }
    }
  }
  return out;
}
