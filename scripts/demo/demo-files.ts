/**
 * The JSON files of the demo model folder (HF / transformers.js layout): config, generation config, a
 * word-level tokenizer with a ChatML-style chat template, and the planted direction for anyone who wants to
 * check an analysis against it.
 */
import {
  DEMO_ARCHITECTURE,
  EOS_TOKEN_ID,
  PAD_TOKEN_ID,
  PLANTED_LAYER,
  SPECIAL_TOKENS,
  type DemoWeights,
} from './demo-weights';

/** ChatML without newlines mattering (the pre-tokenizer drops whitespace); system messages pass through. */
export const DEMO_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export interface DemoFiles {
  config: Record<string, unknown>;
  /** File name → JSON value, every JSON file of the folder. */
  json: Record<string, unknown>;
}

export function demoFiles(design: DemoWeights): DemoFiles {
  const a = DEMO_ARCHITECTURE;
  const config: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: design.vocabulary.length,
    hidden_size: a.hiddenSize,
    intermediate_size: a.intermediateSize,
    num_hidden_layers: a.numLayers,
    num_attention_heads: a.numHeads,
    num_key_value_heads: a.numKeyValueHeads,
    head_dim: a.headDim,
    hidden_act: 'silu',
    max_position_embeddings: a.maxPositionEmbeddings,
    initializer_range: 0.02,
    rms_norm_eps: a.rmsNormEps,
    rope_theta: a.ropeTheta,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    pretraining_tp: 1,
    tie_word_embeddings: false,
    use_cache: true,
    bos_token_id: null,
    eos_token_id: EOS_TOKEN_ID,
    pad_token_id: PAD_TOKEN_ID,
    torch_dtype: 'float32',
    transformers_version: '4.51.0',
  };
  const addedTokens = SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordLevel', vocab: Object.fromEntries(design.vocabulary.map((word, id) => [word, id])), unk_token: '[UNK]' },
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    added_tokens_decoder: Object.fromEntries(addedTokens.map(({ id, ...token }) => [String(id), token])),
    additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: '[UNK]',
    chat_template: DEMO_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: a.maxPositionEmbeddings,
    padding_side: 'left',
  };
  const generationConfig = {
    eos_token_id: EOS_TOKEN_ID,
    pad_token_id: PAD_TOKEN_ID,
    do_sample: false,
    max_new_tokens: 32,
    transformers_version: '4.51.0',
  };
  const specialTokensMap = { additional_special_tokens: ['<|im_start|>', '<|im_end|>'], eos_token: '<|im_end|>', pad_token: '<|endoftext|>', unk_token: '[UNK]' };
  const plantedDirection = {
    description: 'The unit direction along which the demo model plants its refusal (synthetic demo; see README.md).',
    layer: PLANTED_LAYER,
    direction: Array.from(design.plantedDirection),
  };
  return {
    config,
    json: {
      'config.json': config,
      'generation_config.json': generationConfig,
      'tokenizer.json': tokenizer,
      'tokenizer_config.json': tokenizerConfig,
      'special_tokens_map.json': specialTokensMap,
      'planted_direction.json': plantedDirection,
    },
  };
}
