/**
 * Hugging Face model folders: `config.json` (flat, or multimodal with the language model's settings nested
 * in `text_config`, as Qwen3.5 and Gemma 3 do) and the safetensors shard layout (one `model.safetensors`,
 * or shards listed by `model.safetensors.index.json`).
 */
import { InvalidFileError } from '../base/errors';
import { checkedRelativePath, type ModelFolder } from '../ports/folder';
import { readSafetensorsHeader } from './safetensors';
import { isJsonObject, JsonSyntaxError, parseStrictJson, toPlainJson } from './strict-json';

export const CONFIG_FILE = 'config.json';
export const SINGLE_SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';

export interface ModelConfig {
  file: string;
  modelType: string;
  architectures: string[];
  hiddenSize: number;
  numLayers: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  /** Per-block kinds (e.g. Qwen3.5 "linear_attention" / "full_attention"), length numLayers, or null. */
  layerTypes: string[] | null;
  numExperts: number | null;
  raw: Record<string, unknown>;
  /** text_config when nested, else the root. */
  text: Record<string, unknown>;
}

/**
 * Model types whose config class defaults tie_word_embeddings to true when the file leaves it out
 * (transformers' PretrainedConfig default; most decoder configs override it to false).
 */
const TIED_BY_DEFAULT = new Set(['gemma', 'gemma2', 'gemma3', 'gemma3_text', 'qwen3_5', 'qwen3_5_text']);

/**
 * Values some configs leave to their transformers class default instead of writing them out (Gemma 3's
 * nested text_config has no vocab_size); used only when the file is silent.
 */
const CLASS_DEFAULTS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  gemma3_text: { vocab_size: 262_208 },
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJsonObject(file: string, json: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new InvalidFileError(file, `is not valid JSON (${(error as Error).message})`);
  }
  if (!isRecord(value)) throw new InvalidFileError(file, 'must contain a JSON object');
  return value;
}

/** Like parseJsonObject, but a key given twice (a tensor mapped to two shards) is an error, not "last one wins". */
function parseStrictJsonObject(file: string, json: string): Record<string, unknown> {
  let value;
  try {
    value = parseStrictJson(json);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new InvalidFileError(file, `is not valid JSON (${error.message})`);
    throw error;
  }
  if (!isJsonObject(value)) throw new InvalidFileError(file, 'must contain a JSON object');
  return toPlainJson(value) as Record<string, unknown>;
}

/** The first of `keys` present in `object`, as a positive integer; InvalidFileError when absent or not one. */
function positiveInteger(file: string, object: Record<string, unknown>, keys: string[], where: string): number {
  for (const key of keys) {
    if (!(key in object) || object[key] === null) continue;
    const value = object[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      throw new InvalidFileError(file, `${where}${key} is ${JSON.stringify(value)}, not a positive integer`);
    }
    return value;
  }
  throw new InvalidFileError(file, `has no ${keys.join(' / ')}${where ? ` in ${where.slice(0, -1)}` : ''}`);
}

export function parseModelConfig(file: string, json: string): ModelConfig {
  const raw = parseJsonObject(file, json);
  const nested = raw.text_config;
  if (nested !== undefined && nested !== null && !isRecord(nested)) throw new InvalidFileError(file, 'text_config must be an object');
  const text = isRecord(nested) ? nested : raw;
  const where = isRecord(nested) ? 'text_config.' : '';

  const modelType = raw.model_type ?? text.model_type;
  if (typeof modelType !== 'string' || modelType === '') throw new InvalidFileError(file, 'has no model_type');
  const architecturesValue = raw.architectures ?? [];
  if (!Array.isArray(architecturesValue) || !architecturesValue.every((item) => typeof item === 'string')) {
    throw new InvalidFileError(file, 'architectures must be an array of strings');
  }

  const hiddenSize = positiveInteger(file, text, ['hidden_size', 'n_embd', 'd_model'], where);
  const numLayers = positiveInteger(file, text, ['num_hidden_layers', 'n_layer', 'num_layers'], where);
  const classDefaults = CLASS_DEFAULTS[String(text.model_type ?? modelType)] ?? {};
  const vocabSource = 'vocab_size' in text ? text : 'vocab_size' in raw ? raw : classDefaults;
  const vocabSize = positiveInteger(file, vocabSource, ['vocab_size'], vocabSource === text ? where : '');

  // The language model's own setting wins (transformers ties via get_text_config()); the root is the fallback.
  const tieValue = text.tie_word_embeddings ?? raw.tie_word_embeddings;
  if (tieValue !== undefined && tieValue !== null && typeof tieValue !== 'boolean') {
    throw new InvalidFileError(file, `tie_word_embeddings is ${JSON.stringify(tieValue)}, not true or false`);
  }
  const tieWordEmbeddings =
    typeof tieValue === 'boolean' ? tieValue : TIED_BY_DEFAULT.has(modelType) || TIED_BY_DEFAULT.has(String(text.model_type));

  let layerTypes: string[] | null = null;
  if (text.layer_types !== undefined && text.layer_types !== null) {
    const value = text.layer_types;
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
      throw new InvalidFileError(file, `${where}layer_types must be an array of strings`);
    }
    if (value.length !== numLayers) {
      throw new InvalidFileError(file, `${where}layer_types has ${value.length} entries but num_hidden_layers is ${numLayers}`);
    }
    layerTypes = value as string[];
  }

  let numExperts: number | null = null;
  for (const key of ['num_experts', 'num_local_experts', 'n_routed_experts']) {
    if (text[key] !== undefined && text[key] !== null) {
      numExperts = positiveInteger(file, text, [key], where);
      break;
    }
  }

  return {
    file,
    modelType,
    architectures: architecturesValue as string[],
    hiddenSize,
    numLayers,
    vocabSize,
    tieWordEmbeddings,
    layerTypes,
    numExperts,
    raw,
    text,
  };
}

export async function readModelConfig(folder: ModelFolder): Promise<ModelConfig> {
  if (!folder.list().includes(CONFIG_FILE)) throw new InvalidFileError(folder.name, `has no ${CONFIG_FILE}`);
  return parseModelConfig(`${folder.name}/${CONFIG_FILE}`, await folder.readText(CONFIG_FILE));
}

export interface ShardMap {
  /** The index file's folder-relative path, or null for unindexed weights. */
  indexFile: string | null;
  /** Shard paths, in first-appearance order of the index (or sorted when unindexed). */
  shards: string[];
  tensorToShard: Map<string, string>;
  metadata: Record<string, unknown> | null;
}

/**
 * Where every tensor lives. With an index: its weight_map, after checking every shard it names is present.
 * Without one: every top-level `*.safetensors` file, each header read for its tensor names (a tensor in
 * two files is an error).
 */
export async function readShardMap(folder: ModelFolder): Promise<ShardMap> {
  const files = new Set(folder.list());
  if (files.has(SAFETENSORS_INDEX_FILE)) return parseShardIndex(folder, files);
  const shards = [...files].filter((path) => !path.includes('/') && path.endsWith('.safetensors')).sort();
  if (shards.length === 0) {
    throw new InvalidFileError(folder.name, `has no safetensors weights (${SINGLE_SAFETENSORS_FILE} or ${SAFETENSORS_INDEX_FILE})`);
  }
  const tensorToShard = new Map<string, string>();
  for (const shard of shards) {
    const header = await readSafetensorsHeader(await folder.open(shard));
    for (const tensor of header.tensors) {
      const other = tensorToShard.get(tensor.name);
      if (other) throw new InvalidFileError(`${folder.name}/${shard}`, `tensor ${JSON.stringify(tensor.name)} is also in ${other}`);
      tensorToShard.set(tensor.name, shard);
    }
  }
  return { indexFile: null, shards, tensorToShard, metadata: null };
}

async function parseShardIndex(folder: ModelFolder, files: Set<string>): Promise<ShardMap> {
  const indexName = `${folder.name}/${SAFETENSORS_INDEX_FILE}`;
  const index = parseStrictJsonObject(indexName, await folder.readText(SAFETENSORS_INDEX_FILE));
  const weightMap = index.weight_map;
  if (!isRecord(weightMap)) throw new InvalidFileError(indexName, 'has no weight_map object');
  const metadata = index.metadata ?? null;
  if (metadata !== null && !isRecord(metadata)) throw new InvalidFileError(indexName, 'metadata must be an object');
  const tensorToShard = new Map<string, string>();
  const shards: string[] = [];
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string') throw new InvalidFileError(indexName, `weight_map entry for ${JSON.stringify(tensor)} is not a file name`);
    if (!shards.includes(shard)) {
      try {
        checkedRelativePath(shard);
      } catch {
        throw new InvalidFileError(indexName, `weight_map names ${JSON.stringify(shard)}, which is not a file inside the folder`);
      }
      if (!files.has(shard)) {
        throw new InvalidFileError(indexName, `names shard ${JSON.stringify(shard)}, which is missing from ${folder.name}`);
      }
      shards.push(shard);
    }
    tensorToShard.set(tensor, shard);
  }
  if (shards.length === 0) throw new InvalidFileError(indexName, 'weight_map is empty');
  return { indexFile: SAFETENSORS_INDEX_FILE, shards, tensorToShard, metadata: metadata as Record<string, unknown> | null };
}
