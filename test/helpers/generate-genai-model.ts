/**
 * A tiny, deterministic model folder shaped like a Qwen3.5 transformers.js export made with the
 * onnxruntime-genai builder conventions, so the inputs_embeds path of capture, hooks, ablation and
 * generation runs end to end on real numbers:
 * - `config.json`: model_type qwen3_5 with a nested text_config (layer_types mixing linear_attention and
 *   full_attention, mRoPE sections, partial rotary, tied embeddings), as in the real export;
 * - the toy-llama fixture's word-level tokenizer and chat template;
 * - `model.safetensors` in F32 with Qwen3.5's HF names (`model.language_model.` prefix, `linear_attn.*`,
 *   `self_attn.*` with the query+gate q_proj, q_norm/k_norm, F32 A_log), so `abliterate ablate` runs on it;
 * - `onnx/embed_tokens.onnx` and `onnx/decoder_model_merged.onnx` (genai-onnx-builder.ts) with the real
 *   export's I/O names, dtypes and shapes (inputs_embeds, attention_mask, position_ids [3, B, S],
 *   past_conv.{i} / past_recurrent.{i}, past_key_values.{i}.key/value → logits, present_conv.{i}, …).
 *
 * The linear-attention layers are NOT Qwen3.5's gated delta rule: they are a causal depthwise conv with a conv
 * state followed by a gated linear recurrence S_t = g_t S_{t−1} + β_t k_t v_tᵀ, o_t = S_tᵀ q_t with a recurrent
 * state — causal and stateful with the same tensors and state shapes, which is all the tools rely on.
 * The float64 twin of this architecture is genai-reference-forward.ts.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeOnnxModel } from '../../src/formats/onnx';
import { encodeSafetensors } from '../../src/formats/safetensors';
import { buildGenaiDecoder, buildGenaiEmbedding, type GenaiDecoderOptions } from './genai-onnx-builder';
import { TOY_LLAMA_DIR } from './fixtures';
import { mulberry32 } from '../../src/core/random';

export const TOY_TOKENIZER_DIR = TOY_LLAMA_DIR;
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];
export const GENAI_PREFIX = 'model.language_model.';

export type GenaiLayerType = 'linear_attention' | 'full_attention';

/** The architecture, read from (or written to) config.json's text_config. */
export interface GenaiConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  layerTypes: GenaiLayerType[];
  numHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  /** Rotary dims per head = headDim · partial_rotary_factor; the rest pass through unrotated. */
  rotaryDim: number;
  /** Frequencies per mRoPE axis (temporal, height, width), interleaved as Qwen3-VL/Qwen3.5; sums to rotaryDim / 2. */
  mropeSection: [number, number, number];
  ropeTheta: number;
  rmsNormEps: number;
  linearHeads: number; // key heads = value heads here
  linearKeyHeadDim: number;
  linearValueHeadDim: number;
  convKernel: number;
  eosTokenId: number;
  padTokenId: number;
  maxPositionEmbeddings: number;
}

export const TINY_GENAI_CONFIG: GenaiConfig = {
  vocabSize: 471, // the toy-llama tokenizer's
  hiddenSize: 32,
  intermediateSize: 48,
  layerTypes: ['linear_attention', 'full_attention', 'linear_attention', 'full_attention'],
  numHeads: 4,
  numKeyValueHeads: 2,
  headDim: 16,
  rotaryDim: 8,
  mropeSection: [2, 1, 1],
  ropeTheta: 10000,
  rmsNormEps: 1e-6,
  linearHeads: 2,
  linearKeyHeadDim: 8,
  linearValueHeadDim: 8,
  convKernel: 4,
  eosTokenId: 2,
  padTokenId: 0,
  maxPositionEmbeddings: 256,
};

export function numLayersOf(config: GenaiConfig): number {
  return config.layerTypes.length;
}

/** Channels of the conv (and of in_proj_qkv): queries and keys, then values. */
export function convChannels(config: GenaiConfig): number {
  return config.linearHeads * (2 * config.linearKeyHeadDim + config.linearValueHeadDim);
}

/** HF name → HF shape of every tensor of the model ([out, in] for linear layers). */
export function genaiTensorShapes(config: GenaiConfig): Map<string, number[]> {
  const { vocabSize: vocab, hiddenSize: d, intermediateSize: ffn, numHeads, numKeyValueHeads, headDim, linearHeads } = config;
  const p = GENAI_PREFIX;
  const shapes = new Map<string, number[]>([[`${p}embed_tokens.weight`, [vocab, d]]]);
  config.layerTypes.forEach((type, i) => {
    const l = `${p}layers.${i}.`;
    shapes.set(`${l}input_layernorm.weight`, [d]);
    if (type === 'linear_attention') {
      const valueDim = linearHeads * config.linearValueHeadDim;
      shapes.set(`${l}linear_attn.in_proj_qkv.weight`, [convChannels(config), d]);
      shapes.set(`${l}linear_attn.in_proj_z.weight`, [valueDim, d]);
      shapes.set(`${l}linear_attn.in_proj_b.weight`, [linearHeads, d]);
      shapes.set(`${l}linear_attn.in_proj_a.weight`, [linearHeads, d]);
      shapes.set(`${l}linear_attn.conv1d.weight`, [convChannels(config), 1, config.convKernel]);
      shapes.set(`${l}linear_attn.dt_bias`, [linearHeads]);
      shapes.set(`${l}linear_attn.A_log`, [linearHeads]);
      shapes.set(`${l}linear_attn.norm.weight`, [config.linearValueHeadDim]);
      shapes.set(`${l}linear_attn.out_proj.weight`, [d, valueDim]);
    } else {
      shapes.set(`${l}self_attn.q_proj.weight`, [2 * numHeads * headDim, d]); // per head: query then output gate
      shapes.set(`${l}self_attn.k_proj.weight`, [numKeyValueHeads * headDim, d]);
      shapes.set(`${l}self_attn.v_proj.weight`, [numKeyValueHeads * headDim, d]);
      shapes.set(`${l}self_attn.q_norm.weight`, [headDim]);
      shapes.set(`${l}self_attn.k_norm.weight`, [headDim]);
      shapes.set(`${l}self_attn.o_proj.weight`, [d, numHeads * headDim]);
    }
    shapes.set(`${l}post_attention_layernorm.weight`, [d]);
    shapes.set(`${l}mlp.gate_proj.weight`, [ffn, d]);
    shapes.set(`${l}mlp.up_proj.weight`, [ffn, d]);
    shapes.set(`${l}mlp.down_proj.weight`, [d, ffn]);
  });
  shapes.set(`${p}norm.weight`, [d]);
  return shapes;
}

/**
 * Seeded float32 weights by HF name. Linear layers are uniform with variance ≈ 1/fan-in so activations stay
 * O(1) (float32 graph vs float64 reference then agree to ~1e-6); norm weights are small offsets (Qwen3.5 norms
 * scale by 1 + w); decays exp(−e^{A_log}·softplus(·)) stay between about 0.6 and 0.95 per token.
 */
export function generateGenaiWeights(config: GenaiConfig, seed = 1): Map<string, Float32Array> {
  const random = mulberry32(seed);
  const uniform = (count: number, halfWidth: number, center = 0) => Float32Array.from({ length: count }, () => center + (2 * random() - 1) * halfWidth);
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of genaiTensorShapes(config)) {
    const count = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length >= 2 ? shape[shape.length - 1] : 1;
    let values: Float32Array;
    if (name.endsWith('embed_tokens.weight')) values = uniform(count, 1);
    else if (name.endsWith('conv1d.weight')) values = uniform(count, 0.8);
    else if (name.endsWith('A_log')) values = uniform(count, 0.5, Math.log(0.15));
    else if (name.endsWith('dt_bias')) values = uniform(count, 0.5);
    else if (name.endsWith('linear_attn.norm.weight')) values = uniform(count, 0.2, 1); // gated norm: plain weight
    else if (shape.length === 1) values = uniform(count, 0.2); // (1 + w) norms
    else values = uniform(count, Math.sqrt(3 / fanIn) * 1.2);
    weights.set(name, values);
  }
  return weights;
}

/** config.json as the real export ships it (outer qwen3_5 with text_config), for this architecture. */
export function genaiConfigJson(config: GenaiConfig): Record<string, unknown> {
  const text = {
    model_type: 'qwen3_5_text',
    attention_bias: false,
    attn_output_gate: true,
    bos_token_id: null,
    eos_token_id: config.eosTokenId,
    pad_token_id: config.padTokenId,
    full_attention_interval: 2,
    head_dim: config.headDim,
    hidden_act: 'silu',
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    layer_types: config.layerTypes,
    linear_conv_kernel_dim: config.convKernel,
    linear_key_head_dim: config.linearKeyHeadDim,
    linear_num_key_heads: config.linearHeads,
    linear_num_value_heads: config.linearHeads,
    linear_value_head_dim: config.linearValueHeadDim,
    max_position_embeddings: config.maxPositionEmbeddings,
    num_attention_heads: config.numHeads,
    num_hidden_layers: config.layerTypes.length,
    num_key_value_heads: config.numKeyValueHeads,
    partial_rotary_factor: config.rotaryDim / config.headDim,
    rms_norm_eps: config.rmsNormEps,
    rope_parameters: { mrope_interleaved: true, mrope_section: config.mropeSection, partial_rotary_factor: config.rotaryDim / config.headDim, rope_theta: config.ropeTheta, rope_type: 'default' },
    tie_word_embeddings: true,
    use_cache: true,
    vocab_size: config.vocabSize,
    dtype: 'float32',
  };
  return {
    architectures: ['Qwen3_5ForConditionalGeneration'],
    model_type: 'qwen3_5',
    text_config: text,
    tie_word_embeddings: true,
    transformers_version: '5.3.0.dev0',
    // The real export's vision fields: transformers.js reads vision_config.spatial_merge_size for mRoPE positions
    // even on text-only prompts. The special ids lie outside this vocabulary, so no prompt contains them.
    image_token_id: 248056,
    video_token_id: 248057,
    vision_start_token_id: 248053,
    vision_end_token_id: 248054,
    vision_config: { model_type: 'qwen3_5', depth: 1, hidden_size: 16, num_heads: 1, out_hidden_size: config.hiddenSize, patch_size: 16, spatial_merge_size: 2, temporal_patch_size: 2 },
  };
}

/** Reads the architecture back from config.json (outer or text config), so tests build from the folder's own file. */
export function genaiConfigFromJson(json: Record<string, unknown>): GenaiConfig {
  const text = (json.text_config ?? json) as Record<string, unknown>;
  const rope = text.rope_parameters as { mrope_section: [number, number, number]; rope_theta: number; partial_rotary_factor: number };
  const headDim = text.head_dim as number;
  return {
    vocabSize: text.vocab_size as number,
    hiddenSize: text.hidden_size as number,
    intermediateSize: text.intermediate_size as number,
    layerTypes: text.layer_types as GenaiLayerType[],
    numHeads: text.num_attention_heads as number,
    numKeyValueHeads: text.num_key_value_heads as number,
    headDim,
    rotaryDim: Math.round(headDim * rope.partial_rotary_factor),
    mropeSection: rope.mrope_section,
    ropeTheta: rope.rope_theta,
    rmsNormEps: text.rms_norm_eps as number,
    linearHeads: text.linear_num_value_heads as number,
    linearKeyHeadDim: text.linear_key_head_dim as number,
    linearValueHeadDim: text.linear_value_head_dim as number,
    convKernel: text.linear_conv_kernel_dim as number,
    eosTokenId: text.eos_token_id as number,
    padTokenId: text.pad_token_id as number,
    maxPositionEmbeddings: text.max_position_embeddings as number,
  };
}

export function encodeGenaiSafetensors(config: GenaiConfig, weights: ReadonlyMap<string, Float32Array>): Uint8Array {
  const shapes = genaiTensorShapes(config);
  return encodeSafetensors(
    [...weights].map(([name, values]) => ({
      name,
      dtype: 'F32' as const,
      shape: shapes.get(name) ?? [values.length],
      data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    })),
    { format: 'pt' },
  );
}

/** The two ONNX graphs of the export, as bytes, for `weights` (e.g. an orthogonalized copy). */
export function genaiOnnxFiles(config: GenaiConfig, weights: ReadonlyMap<string, Float32Array>, options: GenaiDecoderOptions = {}): { embedding: Uint8Array; decoder: Uint8Array } {
  return { embedding: encodeOnnxModel(buildGenaiEmbedding(config, weights)), decoder: encodeOnnxModel(buildGenaiDecoder(config, weights, options)) };
}

export interface GeneratedGenaiModel {
  dir: string;
  config: GenaiConfig;
  configJson: Record<string, unknown>;
  weights: Map<string, Float32Array>;
  files: string[];
}

/** Writes the whole folder to `dir` (created if needed). */
export function generateGenaiModelFolder(dir: string, options: { seed?: number; config?: GenaiConfig } & GenaiDecoderOptions = {}): GeneratedGenaiModel {
  const config = options.config ?? TINY_GENAI_CONFIG;
  const weights = generateGenaiWeights(config, options.seed ?? 1);
  const configJson = genaiConfigJson(config);
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configJson, null, 2));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: config.eosTokenId, pad_token_id: config.padTokenId, do_sample: false }, null, 2));
  for (const file of TOKENIZER_FILES) copyFileSync(join(TOY_TOKENIZER_DIR, file), join(dir, file));
  writeFileSync(join(dir, 'model.safetensors'), encodeGenaiSafetensors(config, weights));
  const onnxFiles = genaiOnnxFiles(config, weights, options.attention ? { attention: options.attention } : {});
  writeFileSync(join(dir, 'onnx/embed_tokens.onnx'), onnxFiles.embedding);
  writeFileSync(join(dir, 'onnx/decoder_model_merged.onnx'), onnxFiles.decoder);
  const files = ['config.json', 'generation_config.json', ...TOKENIZER_FILES, 'model.safetensors', 'onnx/embed_tokens.onnx', 'onnx/decoder_model_merged.onnx'];
  return { dir, config, configJson, weights, files };
}
