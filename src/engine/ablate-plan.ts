/**
 * Everything the streaming ablation checks before it writes a byte: config, shard layout, every shard header,
 * the index against the headers, the direction against the model, and each target tensor's dtype and shape.
 * A hostile or broken folder fails here, before any output folder is touched.
 */
import { isFloatDType, type FloatDType } from '../core/dtypes';
import { readModelConfig, readShardMap, SAFETENSORS_INDEX_FILE, type ModelConfig, type ShardMap } from '../formats/hf-folder';
import { readSafetensorsHeader, type SafetensorsHeader, type SafetensorsTensorInfo } from '../formats/safetensors';
import { scanAblationTargets, selectAblationTargets, type AblationTarget, type TargetScan, type TensorRoleMatch } from '../model/tensor-roles';
import type { ByteSource } from '../platform/bytes';
import type { ModelFolder } from '../platform/folder';
import { InvalidFileError, InvalidInputError, UnsupportedModelError } from '../protocol/errors';
import { planOnnxExport, type OnnxExportPlan } from './onnx-export';

export const MANIFEST_FILE = 'abliteration.json';

export interface ShardPlan {
  path: string;
  source: ByteSource;
  header: SafetensorsHeader;
}

/** One tensor to edit, with the geometry of the math: `batches` matrices of [rows, cols] each. */
export interface TensorEdit {
  match: TensorRoleMatch;
  shard: string;
  tensor: SafetensorsTensorInfo;
  dtype: FloatDType;
  /** 'rows': each row (length cols = dModel) loses its r component; 'columns': each [rows = dModel, cols] matrix does. */
  orientation: 'rows' | 'columns';
  batches: number;
  rows: number;
  cols: number;
}

export interface AblationPlan {
  input: ModelFolder;
  config: ModelConfig;
  shardMap: ShardMap;
  shards: ShardPlan[];
  /** Tensor name → edit. */
  edits: Map<string, TensorEdit>;
  scan: TargetScan;
  /** Every other file of the folder, copied byte for byte (the index included). */
  otherFiles: { path: string; source: ByteSource }[];
  /** The abliterated ONNX graphs to write (`--onnx`), or null when onnx/ is copied unchanged. */
  onnx: OnnxExportPlan | null;
  notes: string[];
}

export interface PlanOptions {
  /** Also abliterate the ONNX graphs; a folder without safetensors then ablates its ONNX only. */
  onnx?: boolean;
}

export interface AblationSelection {
  direction: Float32Array; // [dModel], unit
  scale: number;
  targets: AblationTarget[];
  /** Inclusive block range for attention / MLP targets. */
  layers?: [number, number];
}

export async function planAblation(input: ModelFolder, selection: AblationSelection, options: PlanOptions = {}): Promise<AblationPlan> {
  checkSelection(selection);
  const config = await readModelConfig(input);
  if (selection.direction.length !== config.hiddenSize) {
    throw new InvalidInputError(
      `the direction has ${selection.direction.length} values but ${config.file} says hidden_size ${config.hiddenSize}; use a direction computed for this model`,
    );
  }
  if (selection.layers && selection.layers[1] >= config.numLayers) {
    throw new InvalidInputError(`--layers ${selection.layers[0]}-${selection.layers[1]} is outside the model's blocks 0-${config.numLayers - 1}`);
  }
  const onnxOnly = options.onnx === true && !hasSafetensors(input);
  const shardMap = onnxOnly ? { indexFile: null, shards: [], tensorToShard: new Map<string, string>(), metadata: null } : await readShardMapHinted(input);
  const shards: ShardPlan[] = [];
  for (const path of shardMap.shards) {
    const source = await input.open(path);
    shards.push({ path, source, header: await readSafetensorsHeader(source) });
  }
  const notes: string[] = [];
  const tensorShard = checkShardConsistency(input, shardMap, shards, notes);

  const scan: TargetScan = onnxOnly
    ? { matches: [], embeddingName: null, tiedEmbeddings: config.tieWordEmbeddings, excluded: [], notes: [] }
    : scanAblationTargets([...tensorShard.keys()], config);
  const selected = onnxOnly ? [] : selectAblationTargets(scan, config, selection);
  const edits = new Map<string, TensorEdit>();
  for (const match of selected) {
    const { shard, tensor } = tensorShard.get(match.name)!;
    edits.set(match.name, describeEdit(match, shard, tensor, config));
  }
  notes.push(...scan.notes);

  const onnx = options.onnx ? await planOnnxExport(input, config, selection) : null;
  if (onnxOnly) notes.push('the folder has no safetensors: only its ONNX graphs were ablated');
  const shardPaths = new Set(shardMap.shards);
  const otherFiles: { path: string; source: ByteSource }[] = [];
  for (const path of input.list()) {
    if (shardPaths.has(path) || onnx?.consumedPaths.has(path)) continue;
    if (path === MANIFEST_FILE) {
      notes.push(`the input's own ${MANIFEST_FILE} (an earlier ablation) was replaced by this run's manifest`);
      continue;
    }
    otherFiles.push({ path, source: await input.open(path) });
  }
  if (!onnx && otherFiles.some((file) => /\.onnx(_data)?$|(^|\/)onnx\//.test(file.path))) {
    notes.push('ONNX files were copied unchanged: they are NOT ablated (only the safetensors weights are; --onnx ablates them too)');
  }
  for (const graph of onnx?.graphs ?? []) {
    for (const site of graph.ablation.baked) {
      notes.push(`${graph.path}: ${site.target}${site.layer >= 0 ? ` block ${site.layer}` : ''} ablated by a hook baked into the graph (${site.reason})`);
    }
  }
  return { input, config, shardMap, shards, edits, scan, otherFiles, onnx, notes };
}

function hasSafetensors(input: ModelFolder): boolean {
  return input.list().some((path) => path === SAFETENSORS_INDEX_FILE || (!path.includes('/') && path.endsWith('.safetensors')));
}

async function readShardMapHinted(input: ModelFolder): Promise<ShardMap> {
  try {
    return await readShardMap(input);
  } catch (error) {
    if (error instanceof InvalidFileError && /has no safetensors weights/.test(error.message) && input.list().some((path) => /^onnx\/[^/]+\.onnx$/.test(path))) {
      throw new InvalidFileError(input.name, 'has no safetensors weights, only ONNX graphs: ablate them with --onnx (the export option "also write abliterated ONNX")');
    }
    throw error;
  }
}

function checkSelection(selection: AblationSelection): void {
  const { direction, scale, targets, layers } = selection;
  if (!Number.isFinite(scale)) throw new InvalidInputError(`scale ${scale} is not a finite number`);
  if (targets.length === 0) throw new InvalidInputError('no targets chosen: use one or more of embed, attn, mlp');
  let squaredNorm = 0;
  for (const value of direction) {
    if (!Number.isFinite(value)) throw new InvalidInputError('the direction contains NaN or Inf values');
    squaredNorm += value * value;
  }
  // Callers normalize; a vector far from unit length means the caller skipped it and the edit would be wrong.
  if (Math.abs(Math.sqrt(squaredNorm) - 1) > 1e-4) {
    throw new InvalidInputError(`the direction must be unit length (its norm is ${Math.sqrt(squaredNorm)})`);
  }
  if (layers && !(Number.isInteger(layers[0]) && Number.isInteger(layers[1]) && layers[0] >= 0 && layers[0] <= layers[1])) {
    throw new InvalidInputError(`layer range ${layers[0]}-${layers[1]} is not a valid inclusive range A-B with 0 ≤ A ≤ B`);
  }
}

/** tensor name → its shard and header entry; checks the index against the headers. */
function checkShardConsistency(
  input: ModelFolder,
  shardMap: ShardMap,
  shards: ShardPlan[],
  notes: string[],
): Map<string, { shard: string; tensor: SafetensorsTensorInfo }> {
  const located = new Map<string, { shard: string; tensor: SafetensorsTensorInfo }>();
  for (const { path, header } of shards) {
    for (const tensor of header.tensors) {
      const other = located.get(tensor.name);
      if (other) throw new InvalidFileError(header.file, `tensor ${JSON.stringify(tensor.name)} is also in ${other.shard}`);
      located.set(tensor.name, { shard: path, tensor });
    }
  }
  if (shardMap.indexFile) {
    const indexName = `${input.name}/${SAFETENSORS_INDEX_FILE}`;
    for (const [name, shard] of shardMap.tensorToShard) {
      const found = located.get(name);
      if (!found || found.shard !== shard) {
        throw new InvalidFileError(indexName, `maps tensor ${JSON.stringify(name)} to ${shard}, but ${found ? `it is in ${found.shard}` : 'that shard does not contain it'}`);
      }
    }
    const unindexed = [...located.keys()].filter((name) => !shardMap.tensorToShard.has(name));
    if (unindexed.length > 0) {
      notes.push(`${unindexed.length} tensor(s) present in shards but not listed in the index (copied as stored): ${unindexed.slice(0, 3).join(', ')}`);
    }
  }
  return located;
}

function describeEdit(match: TensorRoleMatch, shard: string, tensor: SafetensorsTensorInfo, config: ModelConfig): TensorEdit {
  const where = `${shard}: tensor ${tensor.name}`;
  if (!isFloatDType(tensor.dtype)) {
    throw new UnsupportedModelError(`${where} is ${tensor.dtype}; only F32, F16 and BF16 weights can be edited (quantized checkpoints are not supported)`);
  }
  const dModel = config.hiddenSize;
  const shape = tensor.shape;
  const shown = `[${shape.join(', ')}]`;
  const base = { match, shard, tensor, dtype: tensor.dtype };
  const mismatch = (expected: string) =>
    new UnsupportedModelError(`${where} has shape ${shown}, expected ${expected} with hidden_size ${dModel} from ${config.file}`);

  if (match.role === 'embedding') {
    if (shape.length !== 2 || shape[1] !== dModel) throw mismatch('[vocab, hidden_size]');
    return { ...base, orientation: 'rows', batches: 1, rows: shape[0], cols: dModel };
  }
  if (match.isBias) {
    if (match.fusedExperts ? shape.length !== 2 || shape[1] !== dModel : shape.length !== 1 || shape[0] !== dModel) {
      throw mismatch(match.fusedExperts ? '[experts, hidden_size]' : '[hidden_size]');
    }
    return { ...base, orientation: 'rows', batches: 1, rows: match.fusedExperts ? shape[0] : 1, cols: dModel };
  }
  if (!match.fusedExperts) {
    if (shape.length !== 2 || shape[0] !== dModel) throw mismatch('[hidden_size, in_features]');
    return { ...base, orientation: 'columns', batches: 1, rows: dModel, cols: shape[1] };
  }
  // Fused experts: [experts, hidden, in] is F.linear layout (columns); [experts, in, hidden] is x @ W (rows).
  if (shape.length === 3 && shape[1] === dModel && shape[2] !== dModel) {
    return { ...base, orientation: 'columns', batches: shape[0], rows: dModel, cols: shape[2] };
  }
  if (shape.length === 3 && shape[2] === dModel && shape[1] !== dModel) {
    return { ...base, orientation: 'rows', batches: 1, rows: shape[0] * shape[1], cols: dModel };
  }
  throw mismatch('[experts, hidden_size, in] or [experts, in, hidden_size] (unambiguous)');
}
