/**
 * Architecture knowledge for weight orthogonalization: which stored tensors write into the residual stream.
 *
 * Targets (docs/definitions.md): the token embedding, every block's attention output projection and MLP down projection
 * (dense, routed experts, shared experts), and their biases. Never vision towers, multi-token-prediction heads,
 * routers, norms or lm_head. A tied lm_head *is* the embedding, so it changes with it: reported, not hidden.
 *
 * Gemma multiplies the embedding output by sqrt(dModel) at run time; a scalar factor keeps E r = 0, so editing the
 * stored embedding is still exact there.
 *
 * Orientation says which axis of the stored tensor is the residual dimension dModel:
 * - 'rows': the last axis is dModel (embedding [vocab, dModel], biases [dModel], fused expert biases
 *   [experts, dModel], transposed fused experts [experts, in, dModel]); each row x becomes x − α (x·r) r.
 * - 'columns': the second-to-last axis is dModel (HF Linear weight [dModel, in], fused experts
 *   [experts, dModel, in]); each matrix W becomes W − α r (rᵀW).
 */
import { UnsupportedModelError } from '../base/errors';
import type { AblationComponent } from '../core/recipe';
import type { ModelConfig } from '../formats/hf-folder';
import { decideTiedEmbeddings } from './tied-embeddings';

export type TensorRole =
  | 'embedding'
  | 'attention-out'
  | 'attention-out-bias'
  | 'mlp-down'
  | 'mlp-down-bias'
  | 'expert-down'
  | 'expert-down-bias'
  | 'shared-expert-down'
  | 'shared-expert-down-bias';

export type Orientation = 'rows' | 'columns';

export interface TensorRoleMatch {
  name: string;
  role: TensorRole;
  target: AblationComponent;
  /** Block index (0-based), null for the embedding. */
  layer: number | null;
  /** Routed expert index when the name carries one. */
  expert: number | null;
  /** Whether the tensor may hold several experts in its leading axis (decided from its shape). */
  fusedExperts: boolean;
  isBias: boolean;
}

/** Language-model prefixes seen in HF checkpoints (plain decoders, multimodal wrappers old and new). */
const PREFIX = String.raw`(?:model\.language_model\.|language_model\.model\.|model\.|language_model\.)`;
const EMBEDDING = new RegExp(String.raw`^${PREFIX}embed_tokens\.weight$`);
const BLOCK = new RegExp(String.raw`^${PREFIX}layers\.(\d+)\.(.+)$`);

interface BlockPattern {
  pattern: RegExp;
  role: TensorRole;
  target: AblationComponent;
  fusedExperts?: boolean;
  /** Shown in UnsupportedModelError so the user sees what was looked for. */
  shown: string;
}

const WEIGHT_OR_BIAS = String.raw`\.(weight|bias)$`;
const BLOCK_PATTERNS: BlockPattern[] = [
  { pattern: new RegExp(String.raw`^self_attn\.o_proj${WEIGHT_OR_BIAS}`), role: 'attention-out', target: 'attn', shown: 'layers.{i}.self_attn.o_proj' },
  { pattern: new RegExp(String.raw`^linear_attn\.out_proj${WEIGHT_OR_BIAS}`), role: 'attention-out', target: 'attn', shown: 'layers.{i}.linear_attn.out_proj' },
  { pattern: new RegExp(String.raw`^mlp\.down_proj${WEIGHT_OR_BIAS}`), role: 'mlp-down', target: 'mlp', shown: 'layers.{i}.mlp.down_proj' },
  { pattern: new RegExp(String.raw`^mlp\.experts\.(\d+)\.down_proj${WEIGHT_OR_BIAS}`), role: 'expert-down', target: 'mlp', shown: 'layers.{i}.mlp.experts.{e}.down_proj' },
  { pattern: new RegExp(String.raw`^block_sparse_moe\.experts\.(\d+)\.w2${WEIGHT_OR_BIAS}`), role: 'expert-down', target: 'mlp', shown: 'layers.{i}.block_sparse_moe.experts.{e}.w2' },
  { pattern: new RegExp(String.raw`^mlp\.shared_experts?\.down_proj${WEIGHT_OR_BIAS}`), role: 'shared-expert-down', target: 'mlp', shown: 'layers.{i}.mlp.shared_expert(s).down_proj' },
  // Fused expert stacks (transformers v5 layouts): one tensor [experts, …] per layer, biases as `down_proj_bias`.
  { pattern: /^mlp\.experts\.down_proj(?:\.weight)?$/, role: 'expert-down', target: 'mlp', fusedExperts: true, shown: 'layers.{i}.mlp.experts.down_proj (fused)' },
  { pattern: /^mlp\.experts\.down_proj_bias$/, role: 'expert-down-bias', target: 'mlp', fusedExperts: true, shown: 'layers.{i}.mlp.experts.down_proj_bias (fused)' },
];

/** Patterns looked for, for error messages. */
export const LOOKED_FOR_PATTERNS: readonly string[] = [
  `{prefix}embed_tokens.weight`,
  ...BLOCK_PATTERNS.map((pattern) => `{prefix}${pattern.shown}.weight|bias`),
  `with {prefix} one of: "", "model.", "model.language_model.", "language_model.model.", "language_model."`,
];

/** Parts of multimodal checkpoints and extra heads that must never be edited. */
const NEVER_EDITED = /(?:^|\.)(?:visual|vision_tower|vision_model|vision_encoder|multi_modal_projector|mm_projector|audio_tower|audio_model|mtp)\./;

/** Names that look like a residual-writing projection; one that no pattern claims is an unknown layout. */
const LOOKS_LIKE_OUTPUT_PROJECTION = /(?:o_proj|out_proj|down_proj|\.w2\.|dense_4h_to_h|c_proj|\.wo\.)/;

const BIAS_ROLE: Partial<Record<TensorRole, TensorRole>> = {
  'attention-out': 'attention-out-bias',
  'mlp-down': 'mlp-down-bias',
  'expert-down': 'expert-down-bias',
  'shared-expert-down': 'shared-expert-down-bias',
};

export type Exclusion = { name: string; reason: string };

/**
 * The role of one tensor, or null when it is not a target. `exclusion` gets a reason for names that
 * are deliberately left alone although they look like targets (vision towers, MTP layers).
 */
export function classifyTensor(name: string, config: Pick<ModelConfig, 'numLayers'>, exclusion?: (reason: string) => void): TensorRoleMatch | null {
  if (NEVER_EDITED.test(name)) {
    if (LOOKS_LIKE_OUTPUT_PROJECTION.test(name) || name.endsWith('embed_tokens.weight')) exclusion?.('vision tower, projector or MTP head');
    return null;
  }
  if (EMBEDDING.test(name)) {
    return { name, role: 'embedding', target: 'embed', layer: null, expert: null, fusedExperts: false, isBias: false };
  }
  const block = BLOCK.exec(name);
  if (!block) return null;
  const layer = Number(block[1]);
  const rest = block[2];
  for (const candidate of BLOCK_PATTERNS) {
    const match = candidate.pattern.exec(rest);
    if (!match) continue;
    if (layer >= config.numLayers) {
      // DeepSeek-V3 stores its multi-token-prediction module as the layer after the last block
      // (scanAblationTargets refuses blocks beyond those the config declares).
      exclusion?.(`layer ${layer} is beyond num_hidden_layers ${config.numLayers} (an MTP module)`);
      return null;
    }
    const isBias = candidate.role.endsWith('-bias') || match[match.length - 1] === 'bias';
    const expertIndex = candidate.role === 'expert-down' && !candidate.fusedExperts ? Number(match[1]) : null;
    const role = isBias && !candidate.role.endsWith('-bias') ? (BIAS_ROLE[candidate.role] ?? candidate.role) : candidate.role;
    return { name, role, target: candidate.target, layer, expert: expertIndex, fusedExperts: Boolean(candidate.fusedExperts), isBias };
  }
  return null;
}

export interface TargetScan {
  /** Every recognised target in the model, in the order given. */
  matches: TensorRoleMatch[];
  /** The embedding's name, when present. */
  embeddingName: string | null;
  /** lm_head is the embedding: editing the embedding changes the output head too. */
  tiedEmbeddings: boolean;
  excluded: Exclusion[];
  /** Facts worth telling the user (tied head, post-norms...). */
  notes: string[];
}

/**
 * Scans all tensor names of a model. Throws UnsupportedModelError when no out-projection is recognised at all,
 * or when a name looks like a residual-writing projection in a layout this table does not know (editing the
 * rest would silently leave part of the model un-ablated).
 */
export function scanAblationTargets(tensorNames: readonly string[], config: ModelConfig): TargetScan {
  const matches: TensorRoleMatch[] = [];
  const excluded: Exclusion[] = [];
  const unknown: string[] = [];
  // A Set, not a search of `excluded`: a header may hold 100k names, all excluded (linear, not quadratic).
  const excludedNames = new Set<string>();
  let lastBlock = -1;
  for (const name of tensorNames) {
    const match = classifyTensor(name, config, (reason) => {
      excluded.push({ name, reason });
      excludedNames.add(name);
    });
    if (match) matches.push(match);
    const block = NEVER_EDITED.test(name) ? null : BLOCK.exec(name);
    if (!block) continue;
    lastBlock = Math.max(lastBlock, Number(block[1]));
    if (!match && LOOKS_LIKE_OUTPUT_PROJECTION.test(name) && !excludedNames.has(name)) unknown.push(name);
  }
  checkBlockCount(config, lastBlock);
  const architecture = `${config.modelType}${config.architectures.length ? ` (${config.architectures.join(', ')})` : ''}`;
  if (unknown.length > 0) {
    throw new UnsupportedModelError(
      `${config.file}: ${architecture} has tensors that look like output projections in a layout this tool does not know ` +
        `(${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? `, … ${unknown.length} in all` : ''}); looked for ${LOOKED_FOR_PATTERNS.join(', ')}`,
      { unknown, lookedFor: LOOKED_FOR_PATTERNS },
    );
  }
  if (!matches.some((match) => match.target !== 'embed')) {
    throw new UnsupportedModelError(
      `${config.file}: no attention-out or MLP-down tensors found for ${architecture}; looked for ${LOOKED_FOR_PATTERNS.join(', ')}`,
      { lookedFor: LOOKED_FOR_PATTERNS },
    );
  }
  const embeddingName = matches.find((match) => match.role === 'embedding')?.name ?? null;
  const tiedEmbeddings = decideTiedEmbeddings(config, tensorNames, embeddingName);
  const notes: string[] = [];
  if (tiedEmbeddings) {
    notes.push('lm_head is tied to the embedding: orthogonalizing the embedding also removes the direction from the output head');
  }
  if (tensorNames.some((name) => /post_feedforward_layernorm|post_attention_norm|post_mlp_layernorm/.test(name))) {
    notes.push(
      'this model normalizes each block output before adding it to the residual (Gemma 2/3 style post-norms): ' +
        'the weight edit removes the direction before that norm, so it matches inference-time ablation only approximately',
    );
  }
  return { matches, embeddingName, tiedEmbeddings, excluded, notes };
}

/** Blocks a config declares as multi-token-prediction modules stored after the last block (DeepSeek-V3, GLM-4.5). */
function mtpBlockCount(config: ModelConfig): number {
  const value = config.text.num_nextn_predict_layers;
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : 0;
}

/**
 * No block beyond those num_hidden_layers declares (plus declared MTP blocks): otherwise the config belongs to
 * another model, and the extra blocks would be silently skipped as if they were an MTP head.
 */
function checkBlockCount(config: ModelConfig, lastBlock: number): void {
  if (lastBlock < 0) return; // no blocks at all: reported below as "no attention-out or MLP-down tensors"
  const mtp = mtpBlockCount(config);
  if (lastBlock >= config.numLayers + mtp) {
    throw new UnsupportedModelError(
      `${config.file}: num_hidden_layers is ${config.numLayers}${mtp ? ` (+${mtp} MTP)` : ''} but the weights have blocks up to layers.${lastBlock}; ` +
        'the config does not describe these weights',
    );
  }
}

/**
 * The targets selected by the user: target kinds, and an inclusive block range for attention/MLP.
 * Throws UnsupportedModelError when a requested kind has no tensor in this model.
 */
export function selectAblationTargets(
  scan: TargetScan,
  config: ModelConfig,
  options: { targets: readonly AblationComponent[]; layers?: readonly [number, number] },
): TensorRoleMatch[] {
  const selected = scan.matches.filter((match) => {
    if (!options.targets.includes(match.target)) return false;
    if (match.layer === null || !options.layers) return true;
    return match.layer >= options.layers[0] && match.layer <= options.layers[1];
  });
  for (const target of options.targets) {
    if (!selected.some((match) => match.target === target)) {
      const range = options.layers && target !== 'embed' ? ` in layers ${options.layers[0]}-${options.layers[1]}` : '';
      throw new UnsupportedModelError(
        `${config.file}: no ${target} tensors found${range} for ${config.modelType}; looked for ${LOOKED_FOR_PATTERNS.join(', ')}`,
        { lookedFor: LOOKED_FOR_PATTERNS, target },
      );
    }
  }
  return selected;
}
