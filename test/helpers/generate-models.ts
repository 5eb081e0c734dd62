/**
 * Deterministic generators of Hugging Face model folders for tests and benchmarks (no download, no Python):
 * - 'qwen3_5': Qwen3.5-shaped hybrid (layer_types linear/full, `model.language_model.` prefix, tied embeddings,
 *   vision tower `model.visual.*`, MTP head `mtp.*`, `linear_attn.*` and `self_attn.*`, F32 `A_log`);
 * - 'llama-bias': Llama with attention and MLP biases (o_proj.bias, down_proj.bias) and an untied lm_head;
 * - 'qwen-moe': Qwen2/3-MoE style (routed experts, shared_expert, router gate, shared_expert_gate; block 0 dense).
 * In BF16, F16 or F32, single-file or sharded with an index. Tensor data is streamed to disk chunk by chunk from a
 * per-tensor seeded generator, so a 2 GB model never sits in memory (`targetBytes` picks the number of blocks).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { encodeSafetensorsHeader, type SafetensorsDType } from '../../src/formats/safetensors';

export type FixtureKind = 'qwen3_5' | 'llama-bias' | 'qwen-moe';
export type FixtureDType = 'BF16' | 'F16' | 'F32';

export interface FixtureOptions {
  kind: FixtureKind;
  dtype: FixtureDType;
  /** Number of shards; 1 writes a single `model.safetensors` with no index. */
  shards?: number;
  hiddenSize?: number;
  intermediateSize?: number;
  vocabSize?: number;
  numLayers?: number;
  numExperts?: number;
  /** When set, the number of blocks is chosen so the weights total about this many bytes. */
  targetBytes?: number;
  seed?: number;
}

export interface GeneratedTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  shard: string;
}

export interface GeneratedModel {
  dir: string;
  config: Record<string, unknown>;
  tensors: GeneratedTensor[];
  /** Every file written, relative to dir. */
  files: string[];
  weightBytes: number;
}

interface Dimensions {
  hidden: number;
  intermediate: number;
  vocab: number;
  layers: number;
  experts: number;
  heads: number;
  kvHeads: number;
  headDim: number;
}

type Spec = { name: string; dtype: SafetensorsDType; shape: number[] };

const DEFAULTS: Record<FixtureKind, Omit<Dimensions, 'heads' | 'kvHeads' | 'headDim'>> = {
  qwen3_5: { hidden: 64, intermediate: 96, vocab: 300, layers: 4, experts: 0 },
  'llama-bias': { hidden: 48, intermediate: 80, vocab: 200, layers: 3, experts: 0 },
  'qwen-moe': { hidden: 32, intermediate: 40, vocab: 150, layers: 3, experts: 4 },
};

function dimensions(options: FixtureOptions, layers?: number): Dimensions {
  const base = DEFAULTS[options.kind];
  const hidden = options.hiddenSize ?? base.hidden;
  const headDim = hidden >= 256 ? 128 : 16;
  const heads = Math.max(1, Math.floor(hidden / headDim));
  return {
    hidden,
    intermediate: options.intermediateSize ?? base.intermediate,
    vocab: options.vocabSize ?? base.vocab,
    layers: layers ?? options.numLayers ?? base.layers,
    experts: options.numExperts ?? base.experts,
    heads,
    kvHeads: Math.max(1, heads / 2),
    headDim,
  };
}

/** Qwen3.5 puts a full-attention block every fourth block, the rest are linear attention (Gated DeltaNet). */
function qwenLayerTypes(layers: number): string[] {
  return Array.from({ length: layers }, (_, i) => ((i + 1) % 4 === 0 ? 'full_attention' : 'linear_attention'));
}

function tensorSpecs(kind: FixtureKind, d: Dimensions, dtype: FixtureDType): Spec[] {
  const specs: Spec[] = [];
  const add = (name: string, shape: number[], storedAs: SafetensorsDType = dtype) => specs.push({ name, dtype: storedAs, shape });
  const { hidden, intermediate, vocab, heads, kvHeads, headDim } = d;
  if (kind === 'qwen3_5') {
    const p = 'model.language_model.';
    add(`${p}embed_tokens.weight`, [vocab, hidden]);
    const types = qwenLayerTypes(d.layers);
    const linearHeads = heads;
    const keyDim = linearHeads * headDim;
    for (let i = 0; i < d.layers; i++) {
      const l = `${p}layers.${i}.`;
      add(`${l}input_layernorm.weight`, [hidden]);
      if (types[i] === 'linear_attention') {
        add(`${l}linear_attn.in_proj_qkv.weight`, [3 * keyDim, hidden]);
        add(`${l}linear_attn.in_proj_z.weight`, [keyDim, hidden]);
        add(`${l}linear_attn.in_proj_b.weight`, [linearHeads, hidden]);
        add(`${l}linear_attn.in_proj_a.weight`, [linearHeads, hidden]);
        add(`${l}linear_attn.conv1d.weight`, [3 * keyDim, 1, 4]);
        add(`${l}linear_attn.dt_bias`, [linearHeads]);
        add(`${l}linear_attn.A_log`, [linearHeads], 'F32'); // Qwen3.5 keeps A_log in float32 whatever the dtype
        add(`${l}linear_attn.norm.weight`, [headDim]);
        add(`${l}linear_attn.out_proj.weight`, [hidden, keyDim]);
      } else {
        add(`${l}self_attn.q_proj.weight`, [2 * heads * headDim, hidden]); // query and output gate
        add(`${l}self_attn.k_proj.weight`, [kvHeads * headDim, hidden]);
        add(`${l}self_attn.v_proj.weight`, [kvHeads * headDim, hidden]);
        add(`${l}self_attn.q_norm.weight`, [headDim]);
        add(`${l}self_attn.k_norm.weight`, [headDim]);
        add(`${l}self_attn.o_proj.weight`, [hidden, heads * headDim]);
      }
      add(`${l}post_attention_layernorm.weight`, [hidden]);
      add(`${l}mlp.gate_proj.weight`, [intermediate, hidden]);
      add(`${l}mlp.up_proj.weight`, [intermediate, hidden]);
      add(`${l}mlp.down_proj.weight`, [hidden, intermediate]);
    }
    add(`${p}norm.weight`, [hidden]);
    const vision = 32;
    add('model.visual.patch_embed.proj.weight', [vision, 3, 2, 4, 4]);
    add('model.visual.blocks.0.attn.qkv.weight', [3 * vision, vision]);
    add('model.visual.blocks.0.attn.proj.weight', [vision, vision]);
    add('model.visual.blocks.0.mlp.linear_fc2.weight', [vision, 2 * vision]);
    add('model.visual.merger.linear_fc2.weight', [hidden, 4 * vision]); // writes d_model-sized outputs: still never a target
    add('mtp.fc.weight', [hidden, 2 * hidden]);
    add('mtp.layers.0.self_attn.o_proj.weight', [hidden, heads * headDim]);
    add('mtp.layers.0.mlp.down_proj.weight', [hidden, intermediate]);
    add('mtp.norm.weight', [hidden]);
    return specs;
  }
  add('model.embed_tokens.weight', [vocab, hidden]);
  for (let i = 0; i < d.layers; i++) {
    const l = `model.layers.${i}.`;
    add(`${l}input_layernorm.weight`, [hidden]);
    add(`${l}self_attn.q_proj.weight`, [heads * headDim, hidden]);
    add(`${l}self_attn.k_proj.weight`, [kvHeads * headDim, hidden]);
    add(`${l}self_attn.v_proj.weight`, [kvHeads * headDim, hidden]);
    add(`${l}self_attn.o_proj.weight`, [hidden, heads * headDim]);
    add(`${l}post_attention_layernorm.weight`, [hidden]);
    if (kind === 'llama-bias') {
      add(`${l}self_attn.q_proj.bias`, [heads * headDim]);
      add(`${l}self_attn.o_proj.bias`, [hidden]);
      add(`${l}mlp.gate_proj.weight`, [intermediate, hidden]);
      add(`${l}mlp.up_proj.weight`, [intermediate, hidden]);
      add(`${l}mlp.down_proj.weight`, [hidden, intermediate]);
      add(`${l}mlp.down_proj.bias`, [hidden]);
    } else if (i === 0) {
      add(`${l}mlp.down_proj.weight`, [hidden, intermediate]); // a dense block (mlp_only_layers)
      add(`${l}mlp.up_proj.weight`, [intermediate, hidden]);
    } else {
      add(`${l}self_attn.q_norm.weight`, [headDim]);
      add(`${l}mlp.gate.weight`, [d.experts, hidden]); // router: never a target
      for (let e = 0; e < d.experts; e++) {
        add(`${l}mlp.experts.${e}.gate_proj.weight`, [intermediate, hidden]);
        add(`${l}mlp.experts.${e}.up_proj.weight`, [intermediate, hidden]);
        add(`${l}mlp.experts.${e}.down_proj.weight`, [hidden, intermediate]);
      }
      add(`${l}mlp.shared_expert.up_proj.weight`, [intermediate, hidden]);
      add(`${l}mlp.shared_expert.down_proj.weight`, [hidden, intermediate]);
      add(`${l}mlp.shared_expert_gate.weight`, [1, hidden]);
    }
  }
  add('model.norm.weight', [hidden]);
  add('lm_head.weight', [vocab, hidden]);
  return specs;
}

function configFor(kind: FixtureKind, d: Dimensions, dtype: FixtureDType): Record<string, unknown> {
  const torchDtype = { BF16: 'bfloat16', F16: 'float16', F32: 'float32' }[dtype];
  const common = {
    hidden_size: d.hidden,
    intermediate_size: d.intermediate,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    num_key_value_heads: d.kvHeads,
    head_dim: d.headDim,
    vocab_size: d.vocab,
    rms_norm_eps: 1e-6,
  };
  if (kind === 'qwen3_5') {
    return {
      architectures: ['Qwen3_5ForConditionalGeneration'],
      model_type: 'qwen3_5',
      tie_word_embeddings: true,
      text_config: { ...common, model_type: 'qwen3_5_text', layer_types: qwenLayerTypes(d.layers), dtype: torchDtype, mtp_num_hidden_layers: 1 },
      vision_config: { model_type: 'qwen3_5', hidden_size: 32, depth: 1 },
    };
  }
  if (kind === 'llama-bias') {
    return { ...common, architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: true, mlp_bias: true, tie_word_embeddings: false, torch_dtype: torchDtype };
  }
  return {
    ...common,
    architectures: ['Qwen2MoeForCausalLM'],
    model_type: 'qwen2_moe',
    num_experts: d.experts,
    num_experts_per_tok: 2,
    moe_intermediate_size: d.intermediate,
    shared_expert_intermediate_size: d.intermediate,
    mlp_only_layers: [0],
    tie_word_embeddings: false,
    torch_dtype: torchDtype,
  };
}

function byteCount(spec: Spec): number {
  const size = spec.dtype === 'F32' ? 4 : 2;
  return spec.shape.reduce((product, n) => product * n, size);
}

/** FNV-1a of the tensor name, mixed with the seed: each tensor's values do not depend on chunking or order. */
function tensorSeed(name: string, seed: number): number {
  let hash = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return hash >>> 0 || 1;
}

/**
 * Fills `out` with the next values of a tensor: random sign and mantissa, exponent in [2^-7, 2^-3): realistic
 * weight magnitudes with every mantissa bit exercised, built from integer bits (fast enough for gigabytes).
 */
function fillValues(out: Uint8Array, dtype: SafetensorsDType, state: { x: number }): void {
  let x = state.x;
  if (dtype === 'F32') {
    const words = new Uint32Array(out.buffer, out.byteOffset, out.byteLength / 4);
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      words[i] = ((x & 0x80000000) | ((120 + ((x >>> 29) & 3)) << 23) | ((x >>> 3) & 0x7fffff)) >>> 0;
    }
  } else {
    const halves = new Uint16Array(out.buffer, out.byteOffset, out.byteLength / 2);
    const [bias, mantissaBits] = dtype === 'BF16' ? [120, 7] : [8, 10];
    for (let i = 0; i < halves.length; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      halves[i] = ((x >>> 16) & 0x8000) | ((bias + ((x >>> 29) & 3)) << mantissaBits) | (x & ((1 << mantissaBits) - 1));
    }
  }
  state.x = x;
}

const WRITE_CHUNK_BYTES = 8 * 1024 * 1024;

async function writeShard(file: string, specs: Spec[], seed: number): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    await handle.write(encodeSafetensorsHeader(specs, { format: 'pt' }));
    const buffer = new Uint8Array(WRITE_CHUNK_BYTES);
    for (const spec of specs) {
      const state = { x: tensorSeed(spec.name, seed) };
      let remaining = byteCount(spec);
      while (remaining > 0) {
        const length = Math.min(WRITE_CHUNK_BYTES, remaining);
        const chunk = buffer.subarray(0, length);
        fillValues(chunk, spec.dtype, state);
        await handle.write(chunk);
        remaining -= length;
      }
    }
  } finally {
    await handle.close();
  }
}

/** Splits tensors in order into `count` shards of about equal bytes. */
function splitIntoShards(specs: Spec[], count: number): Spec[][] {
  const total = specs.reduce((sum, spec) => sum + byteCount(spec), 0);
  const shards: Spec[][] = Array.from({ length: count }, () => []);
  let running = 0;
  for (const spec of specs) {
    const index = Math.min(count - 1, Math.floor((running / total) * count));
    shards[index].push(spec);
    running += byteCount(spec);
  }
  return shards.filter((shard) => shard.length > 0);
}

export async function generateModelFolder(dir: string, options: FixtureOptions): Promise<GeneratedModel> {
  const seed = options.seed ?? 0;
  let d = dimensions(options);
  if (options.targetBytes) {
    const withOne = tensorSpecs(options.kind, dimensions(options, 4), options.dtype).reduce((sum, spec) => sum + byteCount(spec), 0);
    const withTwo = tensorSpecs(options.kind, dimensions(options, 8), options.dtype).reduce((sum, spec) => sum + byteCount(spec), 0);
    const perFourBlocks = withTwo - withOne;
    const fixed = withOne - perFourBlocks;
    d = dimensions(options, Math.max(4, Math.round(((options.targetBytes - fixed) / perFourBlocks) * 4)));
  }
  const specs = tensorSpecs(options.kind, d, options.dtype);
  const config = configFor(options.kind, d, options.dtype);
  await fs.mkdir(dir, { recursive: true });
  const shardCount = Math.max(1, options.shards ?? 1);
  const groups = splitIntoShards(specs, shardCount);
  const tensors: GeneratedTensor[] = [];
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  for (let index = 0; index < groups.length; index++) {
    const shard = groups.length === 1 && shardCount === 1 ? 'model.safetensors' : `model-${String(index + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
    await writeShard(path.join(dir, shard), groups[index], seed);
    files.push(shard);
    for (const spec of groups[index]) {
      tensors.push({ ...spec, shard });
      weightMap[spec.name] = shard;
    }
  }
  const weightBytes = specs.reduce((sum, spec) => sum + byteCount(spec), 0);
  const textFiles: Record<string, string> = {
    'config.json': `${JSON.stringify(config, null, 2)}\n`,
    'generation_config.json': `${JSON.stringify({ do_sample: false, eos_token_id: 2 }, null, 2)}\n`,
    'tokenizer_config.json': `${JSON.stringify({ model_max_length: 4096, chat_template: '{{ messages }}' })}\n`,
    'extra/README.md': `Generated ${options.kind} fixture (${options.dtype}), seed ${seed}. Not a real model.\n`,
  };
  if (shardCount > 1) {
    const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((name) => [name, weightMap[name]]));
    textFiles['model.safetensors.index.json'] = `${JSON.stringify({ metadata: { total_size: weightBytes }, weight_map: sortedMap }, null, 2)}\n`;
  }
  for (const [file, text] of Object.entries(textFiles)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await fs.writeFile(path.join(dir, file), text);
    files.push(file);
  }
  return { dir, config, tensors, files: files.sort(), weightBytes };
}
