/**
 * Everything the streaming ablation checks before it writes a byte: config, shard layout, every shard header,
 * the index against the headers, the direction against the model, and each target tensor's dtype and shape.
 * A hostile or broken folder fails here, before any output folder is touched.
 */
import { FLOAT_DTYPE_BYTES, isFloatDType, type FloatDType } from '../core/dtypes';
import { readModelConfig, readShardMap, SAFETENSORS_INDEX_FILE, type ModelConfig, type ShardMap } from '../formats/hf-folder';
import { readSafetensorsHeader, type SafetensorsHeader, type SafetensorsTensorInfo } from '../formats/safetensors';
import { scanAblationTargets, selectAblationTargets, type TargetScan, type TensorRoleMatch } from '../model/tensor-roles';
import type { ByteSource } from '../ports/bytes';
import { checkedRelativePath, type ModelFolder } from '../ports/folder';
import { InvalidFileError, InvalidInputError, UnsupportedModelError } from '../base/errors';
import type { RecipeMethod } from '../core/recipe';
import { resolveAblation, type AblationSelection, type ResolvedAblation } from './ablation-selection';
import type { OnnxExportPlan } from './onnx-export';

export type { AblationSelection, RecipeSelection, ShorthandSelection } from './ablation-selection';

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
  /** The recipe's numbers for this target: its float32 unit direction [dModel], weight w (≠ 0) and method. */
  direction: Float32Array;
  weight: number;
  method: RecipeMethod;
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
  notes: string[];
  /** The recipe as applied, with its per-target directions and weights. */
  ablation: ResolvedAblation;
  /** The abliterated ONNX graphs to write (`--onnx`), or null when onnx/ is copied unchanged. */
  onnx: OnnxExportPlan | null;
}

export interface PlanOptions {
  /** Also abliterate the ONNX graphs; a folder without safetensors then ablates its ONNX only. */
  onnx?: boolean;
}

/**
 * `directionRow`: the directions-file row a shorthand's direction is (its provenance's layer; null for a single
 * direction), recorded in the manifest's recipe. Ignored for a recipe, which names its own direction.
 */
export async function planAblation(input: ModelFolder, selection: AblationSelection, directionRow: number | null, options: PlanOptions = {}): Promise<AblationPlan> {
  // Checks that need no model first, so a bad recipe or direction fails before the folder is read.
  resolveAblation(selection, undefined, directionRow);
  checkPortableNames(input);
  const config = await readModelConfig(input);
  const ablation = resolveAblation(selection, config.numLayers, directionRow);
  if (ablation.dModel !== config.hiddenSize) {
    throw new InvalidInputError(
      `the direction has ${ablation.dModel} values but ${config.file} says hidden_size ${config.hiddenSize}; use a direction computed for this model`,
    );
  }
  if (ablation.shorthand?.layers && ablation.shorthand.layers[1] >= config.numLayers) {
    throw new InvalidInputError(`--layers ${ablation.shorthand.layers[0]}-${ablation.shorthand.layers[1]} is outside the model's blocks 0-${config.numLayers - 1}`);
  }
  if (ablation.components.length === 0) throw new InvalidInputError('the recipe gives every component weight 0: nothing would change');
  const onnxOnly = options.onnx === true && !hasSafetensors(input);
  const shardMap = onnxOnly ? { indexFile: null, shards: [], tensorToShard: new Map<string, string>(), metadata: null } : await readShardMapHinted(input);
  const shards: ShardPlan[] = [];
  for (const path of shardMap.shards) {
    const source = await input.open(path);
    const known = shardMap.headers?.get(path);
    shards.push({ path, source, header: known && known.fileSize === source.size ? known : await readSafetensorsHeader(source) });
  }
  const notes: string[] = [];
  const tensorShard = checkShardConsistency(input, shardMap, shards);

  const scan: TargetScan = onnxOnly
    ? { matches: [], embeddingName: null, tiedEmbeddings: config.tieWordEmbeddings, excluded: [], notes: [] }
    : scanAblationTargets([...tensorShard.keys()], config);
  const selected = onnxOnly ? [] : selectAblationTargets(scan, config, { targets: ablation.components, layers: ablation.shorthand?.layers });
  const edits = new Map<string, TensorEdit>();
  for (const match of selected) {
    const block = match.layer ?? -1;
    const weight = ablation.weightFor(match.target, block);
    if (weight === 0) continue; // weight 0 = untouched: copied byte for byte
    const { shard, tensor } = tensorShard.get(match.name)!;
    const numbers = { direction: ablation.directionFor(match.target, block), weight, method: ablation.recipe.method };
    edits.set(match.name, describeEdit(match, `${input.name}/${shard}`, shard, tensor, config, numbers));
  }
  if (shardMap.indexFile) notes.push(...unindexedNote(shardMap, tensorShard, edits));
  notes.push(...scan.notes);

  // The ONNX writer (and the ONNX schema under it, ~40 ms to load) only for --onnx.
  const onnx = options.onnx ? await (await import('./onnx-export')).planOnnxExport(input, config, ablation) : null;
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
  await checkOnnxExternalData(input, otherFiles);
  if (!onnx && otherFiles.some((file) => /\.onnx(_data)?$|(^|\/)onnx\//.test(file.path))) {
    notes.push('ONNX files were copied unchanged: they are NOT ablated (only the safetensors weights are; --onnx ablates them too)');
  }
  for (const graph of onnx?.graphs ?? []) {
    for (const site of graph.ablation.baked) {
      notes.push(`${graph.path}: ${site.target}${site.layer >= 0 ? ` block ${site.layer}` : ''} ablated by a hook baked into the graph (${site.reason})`);
    }
  }
  return { input, config, shardMap, shards, edits, scan, otherFiles, notes, ablation, onnx };
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

/**
 * Every file of the folder is written to the output under its own name, so a name that is not portable
 * (`zz\\note.txt`, `C:notes.txt`) is refused here, before any shard is written, not when its turn comes.
 */
function checkPortableNames(input: ModelFolder): void {
  for (const path of input.list()) {
    try {
      checkedRelativePath(path);
    } catch {
      throw new InvalidFileError(
        `${input.name}/${path.length > 200 ? `${path.slice(0, 200)}…` : path}`,
        'has a name that cannot be written portably (a backslash, a colon or a control character); rename or remove it',
      );
    }
  }
}

/** Tensors the shards hold but the index does not list: said, with the edited ones named as edited. */
function unindexedNote(shardMap: ShardMap, located: Map<string, { shard: string }>, edits: Map<string, TensorEdit>): string[] {
  const unindexed = [...located.keys()].filter((name) => !shardMap.tensorToShard.has(name));
  if (unindexed.length === 0) return [];
  const edited = unindexed.filter((name) => edits.has(name));
  const copied = unindexed.filter((name) => !edits.has(name));
  const parts = [
    edited.length ? `${edited.length} edited (${edited.slice(0, 3).join(', ')}${edited.length > 3 ? ', …' : ''})` : '',
    copied.length ? `${copied.length} copied as stored (${copied.slice(0, 3).join(', ')}${copied.length > 3 ? ', …' : ''})` : '',
  ].filter(Boolean);
  return [`${unindexed.length} tensor(s) present in shards but not listed in the index: ${parts.join('; ')}`];
}

/**
 * The edit streams a tensor in chunks of whole rows (the last axis), so one row must fit in a chunk: a wider
 * row (a hostile [64, 2^27] matrix) would otherwise be read whole, with a projection of 8 bytes per column,
 * far beyond the memory bound. Refused before anything is written, with the chunk size that would do.
 */
export function checkEditsFitChunk(plan: AblationPlan, maxChunkBytes: number): void {
  for (const edit of plan.edits.values()) {
    const rowBytes = edit.cols * FLOAT_DTYPE_BYTES[edit.dtype];
    if (rowBytes > maxChunkBytes) {
      const mebibytes = Math.ceil(rowBytes / 1024 / 1024);
      throw new UnsupportedModelError(
        `${plan.input.name}/${edit.shard}: tensor ${edit.tensor.name} [${edit.tensor.shape.join(', ')}] has rows of ${rowBytes} bytes, ` +
          `more than one ${maxChunkBytes}-byte chunk; the edit holds a whole row at a time (with --chunk-mb ${mebibytes} or more it would fit, at that much memory per chunk)`,
      );
    }
  }
}

/** Graphs up to this size are decoded to check their external data; larger ones hold their weights inline. */
export const MAX_CHECKED_GRAPH_BYTES = 64 * 1024 * 1024;

/**
 * ONNX graphs are copied unchanged, but a copied graph whose external data names a file outside the folder
 * would make whoever loads the output read that file: the same rule as analyze and eval (checkedExternalData).
 */
async function checkOnnxExternalData(input: ModelFolder, files: { path: string; source: ByteSource }[]): Promise<void> {
  const graphs = files.filter((file) => file.path.endsWith('.onnx') && file.source.size <= MAX_CHECKED_GRAPH_BYTES);
  if (graphs.length === 0) return;
  const { checkedExternalData, decodeOnnxModel } = await import('../formats/onnx'); // only for folders with graphs
  for (const { path, source } of graphs) {
    const name = `${input.name}/${path}`;
    checkedExternalData(name, path, decodeOnnxModel(name, await source.read(0, source.size)), new Set(input.list()), false);
  }
}

/** tensor name → its shard and header entry; checks the index against the headers. */
function checkShardConsistency(
  input: ModelFolder,
  shardMap: ShardMap,
  shards: ShardPlan[],
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
  }
  return located;
}

function describeEdit(
  match: TensorRoleMatch,
  shardFile: string,
  shard: string,
  tensor: SafetensorsTensorInfo,
  config: ModelConfig,
  numbers: { direction: Float32Array; weight: number; method: RecipeMethod },
): TensorEdit {
  const where = `${shardFile}: tensor ${tensor.name}`;
  if (!isFloatDType(tensor.dtype)) {
    throw new UnsupportedModelError(`${where} is ${tensor.dtype}; only F32, F16 and BF16 weights can be edited (quantized checkpoints are not supported)`);
  }
  const dModel = config.hiddenSize;
  const shape = tensor.shape;
  const shown = `[${shape.join(', ')}]`;
  const base = { match, shard, tensor, dtype: tensor.dtype, ...numbers };
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
