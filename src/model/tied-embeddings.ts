/**
 * Whether the lm_head IS the embedding matrix — the one decision the weight export and the hook preview share
 * (editing a tied embedding also edits the output head, so the preview must hook the lm_head input exactly
 * when the export's edit reaches it). Tied when config.json says so, or leaves it out for an architecture whose
 * config class defaults to tied (parseModelConfig applies that default), or when the weights have an embedding
 * but no lm_head tensor (transformers then ties them whatever the config says).
 */
import type { ModelConfig } from '../formats/hf-folder';

const LM_HEAD = /^(?:model\.|language_model\.)?lm_head\.weight$/;

/**
 * `tensorNames`: every weight tensor of the folder, or null when it has no safetensors (an ONNX-only folder:
 * the config alone decides). `embeddingName`: the embedding tensor found among them (null: none).
 */
export function decideTiedEmbeddings(config: Pick<ModelConfig, 'tieWordEmbeddings'>, tensorNames: readonly string[] | null, embeddingName: string | null): boolean {
  if (tensorNames === null) return config.tieWordEmbeddings;
  const hasLmHead = tensorNames.some((name) => LM_HEAD.test(name));
  return embeddingName !== null && (config.tieWordEmbeddings || !hasLmHead);
}
