import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/formats/hf-folder';
import { classifyTensor, scanAblationTargets, selectAblationTargets } from '../../src/model/tensor-roles';
import { UnsupportedModelError } from '../../src/base/errors';

function config(modelType: string, extra: Record<string, unknown> = {}, nested = false) {
  const text = { model_type: modelType, hidden_size: 8, num_hidden_layers: 2, vocab_size: 10, ...extra };
  return parseModelConfig('config.json', JSON.stringify(nested ? { model_type: modelType, text_config: text } : text));
}

function roles(names: string[], modelConfig = config('llama')) {
  const scan = scanAblationTargets(names, modelConfig);
  return Object.fromEntries(scan.matches.map((match) => [match.name, `${match.role}@${match.layer ?? '-'}${match.expert !== null ? `#${match.expert}` : ''}`]));
}

const llamaNames = [
  'model.embed_tokens.weight',
  'model.layers.0.self_attn.q_proj.weight',
  'model.layers.0.self_attn.o_proj.weight',
  'model.layers.0.self_attn.o_proj.bias',
  'model.layers.0.mlp.gate_proj.weight',
  'model.layers.0.mlp.down_proj.weight',
  'model.layers.0.input_layernorm.weight',
  'model.layers.1.self_attn.o_proj.weight',
  'model.layers.1.mlp.down_proj.weight',
  'model.norm.weight',
  'lm_head.weight',
];

describe('tensor roles', () => {
  it('Llama / Mistral / Qwen2 / Phi-3: embedding, o_proj (+bias), down_proj; never norms or lm_head', () => {
    expect(roles(llamaNames)).toEqual({
      'model.embed_tokens.weight': 'embedding@-',
      'model.layers.0.self_attn.o_proj.weight': 'attention-out@0',
      'model.layers.0.self_attn.o_proj.bias': 'attention-out-bias@0',
      'model.layers.0.mlp.down_proj.weight': 'mlp-down@0',
      'model.layers.1.self_attn.o_proj.weight': 'attention-out@1',
      'model.layers.1.mlp.down_proj.weight': 'mlp-down@1',
    });
    const scan = scanAblationTargets(llamaNames, config('llama', { tie_word_embeddings: false }));
    expect(scan.tiedEmbeddings).toBe(false);
    expect(scan.notes).toEqual([]);
  });

  it('Qwen3.5 hybrid: prefix, o_proj on full-attention layers, linear_attn.out_proj on the others; never visual or mtp', () => {
    const qwen = config('qwen3_5', { layer_types: ['linear_attention', 'full_attention'] }, true);
    const names = [
      'model.language_model.embed_tokens.weight',
      'model.language_model.layers.0.linear_attn.out_proj.weight',
      'model.language_model.layers.0.linear_attn.A_log',
      'model.language_model.layers.0.mlp.down_proj.weight',
      'model.language_model.layers.1.self_attn.o_proj.weight',
      'model.language_model.layers.1.mlp.down_proj.weight',
      'model.visual.blocks.0.attn.proj.weight',
      'model.visual.blocks.0.mlp.down_proj.weight',
      'model.visual.merger.linear_fc2.weight',
      'mtp.layers.0.self_attn.o_proj.weight',
      'mtp.layers.0.mlp.down_proj.weight',
      'mtp.fc.weight',
    ];
    expect(roles(names, qwen)).toEqual({
      'model.language_model.embed_tokens.weight': 'embedding@-',
      'model.language_model.layers.0.linear_attn.out_proj.weight': 'attention-out@0',
      'model.language_model.layers.0.mlp.down_proj.weight': 'mlp-down@0',
      'model.language_model.layers.1.self_attn.o_proj.weight': 'attention-out@1',
      'model.language_model.layers.1.mlp.down_proj.weight': 'mlp-down@1',
    });
    const scan = scanAblationTargets(names, qwen);
    expect(scan.tiedEmbeddings).toBe(true); // qwen3_5 ties by default and has no lm_head
    expect(scan.notes.join(' ')).toMatch(/tied/);
    expect(scan.excluded.map((entry) => entry.name)).toEqual(
      expect.arrayContaining(['model.visual.blocks.0.mlp.down_proj.weight', 'mtp.layers.0.self_attn.o_proj.weight']),
    );
  });

  it('Qwen2/3-MoE and DeepSeek-V3: routed and shared experts; routers and MTP layers excluded', () => {
    const moeNames = [
      'model.embed_tokens.weight',
      'model.layers.0.self_attn.o_proj.weight',
      'model.layers.0.mlp.gate.weight',
      'model.layers.0.mlp.shared_expert_gate.weight',
      'model.layers.0.mlp.experts.0.down_proj.weight',
      'model.layers.0.mlp.experts.7.down_proj.weight',
      'model.layers.0.mlp.shared_expert.down_proj.weight',
      'model.layers.1.mlp.shared_experts.down_proj.weight',
      'model.layers.1.mlp.gate.e_score_correction_bias',
      'model.layers.2.self_attn.o_proj.weight', // DeepSeek MTP: layer index == num_hidden_layers
      'model.layers.2.mlp.experts.0.down_proj.weight',
      'lm_head.weight',
    ];
    expect(roles(moeNames, config('deepseek_v3', { n_routed_experts: 8 }))).toEqual({
      'model.embed_tokens.weight': 'embedding@-',
      'model.layers.0.self_attn.o_proj.weight': 'attention-out@0',
      'model.layers.0.mlp.experts.0.down_proj.weight': 'expert-down@0#0',
      'model.layers.0.mlp.experts.7.down_proj.weight': 'expert-down@0#7',
      'model.layers.0.mlp.shared_expert.down_proj.weight': 'shared-expert-down@0',
      'model.layers.1.mlp.shared_experts.down_proj.weight': 'shared-expert-down@1',
    });
  });

  it('Mixtral: block_sparse_moe.experts.{e}.w2; the router gate is not a target', () => {
    expect(
      roles(['model.embed_tokens.weight', 'model.layers.1.block_sparse_moe.gate.weight', 'model.layers.1.block_sparse_moe.experts.3.w2.weight', 'model.layers.1.block_sparse_moe.experts.3.w1.weight'], config('mixtral')),
    ).toEqual({ 'model.embed_tokens.weight': 'embedding@-', 'model.layers.1.block_sparse_moe.experts.3.w2.weight': 'expert-down@1#3' });
  });

  it('Gemma 3 multimodal (old and new prefixes): tied by default, post-norm note', () => {
    const gemma = config('gemma3', {}, true);
    for (const prefix of ['language_model.model.', 'model.language_model.']) {
      const names = [
        `${prefix}embed_tokens.weight`,
        `${prefix}layers.0.self_attn.o_proj.weight`,
        `${prefix}layers.0.mlp.down_proj.weight`,
        `${prefix}layers.0.post_feedforward_layernorm.weight`,
        'vision_tower.vision_model.encoder.layers.0.self_attn.out_proj.weight',
        'multi_modal_projector.mm_input_projection_weight',
      ];
      const scan = scanAblationTargets(names, gemma);
      expect(scan.matches.map((match) => match.role)).toEqual(['embedding', 'attention-out', 'mlp-down']);
      expect(scan.tiedEmbeddings).toBe(true);
      expect(scan.notes.join(' ')).toMatch(/post-norms/);
    }
  });

  it('fused expert stacks are recognised as such', () => {
    const match = classifyTensor('model.layers.0.mlp.experts.down_proj', { numLayers: 2 });
    expect(match).toMatchObject({ role: 'expert-down', fusedExperts: true, expert: null, isBias: false });
    expect(classifyTensor('model.layers.0.mlp.experts.down_proj_bias', { numLayers: 2 })).toMatchObject({ role: 'expert-down-bias', isBias: true });
  });

  it('an unknown architecture is an UnsupportedModelError listing what was looked for, never a silent no-op', () => {
    const gpt2 = ['transformer.wte.weight', 'transformer.h.0.attn.c_proj.weight', 'transformer.h.0.mlp.c_proj.weight'];
    expect(() => scanAblationTargets(gpt2, config('gpt2'))).toThrow(UnsupportedModelError);
    expect(() => scanAblationTargets(gpt2, config('gpt2'))).toThrow(/looked for .*self_attn\.o_proj/);
    // A known layout mixed with an unknown projection name is refused too, not half-edited.
    expect(() => scanAblationTargets([...llamaNames, 'model.layers.0.mlp.experts.down_proj_blocks'], config('llama'))).toThrow(/does not know/);
  });

  it('selects by target kind and inclusive block range; an empty selection is an error', () => {
    const modelConfig = config('llama', { tie_word_embeddings: false });
    const scan = scanAblationTargets(llamaNames, modelConfig);
    const selected = selectAblationTargets(scan, modelConfig, { targets: ['attn'], layers: [1, 1] });
    expect(selected.map((match) => match.name)).toEqual(['model.layers.1.self_attn.o_proj.weight']);
    expect(selectAblationTargets(scan, modelConfig, { targets: ['embed', 'mlp'] }).map((match) => match.name)).toEqual([
      'model.embed_tokens.weight',
      'model.layers.0.mlp.down_proj.weight',
      'model.layers.1.mlp.down_proj.weight',
    ]);
    expect(() => selectAblationTargets(scan, modelConfig, { targets: ['mlp'], layers: [5, 6] })).toThrow(UnsupportedModelError);
  });
});
