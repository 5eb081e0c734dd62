/**
 * `abliteration.json`: what was done to the folder, reproducibly: the recipe as applied (`recipe`, the
 * recipe.json form). The direction is identified by the SHA-256 of the exact float32 unit vector used
 * (little-endian) — when targets use different directions (per-layer, biprojected), of the rows [L+1, d] the
 * targets use, row i for the targets writing into hidden state i — and by its source file's hash when it came from a file;
 * every output file (shards, index, copied files) is listed with its size and SHA-256.
 * No timestamps: the same input and options give the same manifest.
 */
import packageJson from '../../package.json';
import { recipeToJson, type AblationComponent } from '../core/recipe';
import { sha256Hex } from '../core/sha256';
import type { Exclusion } from '../model/tensor-roles';
import type { AblationPlan } from './ablate-plan';
import type { OutputFileRecord } from './output-writer';

export const MANIFEST_FORMAT = 'abliteration-workbench/ablation@1';

export type { OutputFileRecord } from './output-writer';

export interface DirectionProvenance {
  /** The direction file as given (a path or a file name). */
  file: string;
  /** SHA-256 of the direction file's bytes. */
  sha256: string;
  /** Row of a per-layer direction file (hidden_states index), null for a single direction. */
  layer: number | null;
}

export interface EditedTensorRecord {
  name: string;
  shard: string;
  role: string;
  layer: number | null;
  dtype: string;
  shape: number[];
  orientation: 'rows' | 'columns';
  /** The weight w applied to this tensor. */
  weight: number;
}

export interface AblationManifest {
  format: typeof MANIFEST_FORMAT;
  tool: { name: string; version: string };
  model: { modelType: string; architectures: string[]; hiddenSize: number; numLayers: number };
  recipe: Record<string, unknown>;
  direction: { sha256: string; length: number; layer: number | null; file: string | null; fileSha256: string | null };
  /** The shorthand's α, or the recipe's weight when it is one constant for every edited component; else null. */
  scale: number | null;
  /** Components with a non-zero weight somewhere. */
  targets: AblationComponent[];
  /** The shorthand's block range (null for recipes: their kernels say which blocks). */
  layers: [number, number] | null;
  tiedEmbeddings: boolean;
  notes: string[];
  editedTensors: string[];
  edits: EditedTensorRecord[];
  excludedTensors: Exclusion[];
  /** 'ablated': onnx/ holds abliterated graphs (--onnx); 'copied': any ONNX files are the base model's. */
  onnx: 'ablated' | 'copied';
  /** Per abliterated graph: the initializers edited in place and the hooks baked in (with why). */
  onnxGraphs: { file: string; editedInitializers: { name: string; target: string; layer: number | null; layout: string; dtype: string }[]; bakedHooks: { target: string; layer: number | null; reason: string }[] }[];
  files: Record<string, OutputFileRecord>;
}

function float32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** The hash that identifies the direction(s) used (see the file comment). */
export function directionsSha256(plan: AblationPlan): string {
  const edits = [...plan.edits.values()];
  const first = edits[0]?.direction ?? plan.ablation.directionFor('embed', -1);
  const same = edits.every((edit) => edit.direction === first || float32Bytes(edit.direction).every((byte, i) => byte === float32Bytes(first)[i]));
  if (same) return sha256Hex(float32Bytes(first));
  const { numLayers } = plan.config;
  const rows = new Float32Array((numLayers + 1) * first.length); // [L+1, d]
  for (let index = 0; index <= numLayers; index++) {
    rows.set(index === 0 ? plan.ablation.directionFor('embed', -1) : plan.ablation.directionFor('attn', index - 1), index * first.length);
  }
  return sha256Hex(float32Bytes(rows));
}

/** The single weight every edited tensor got, or null. */
function constantWeight(plan: AblationPlan): number | null {
  const weights = new Set([...plan.edits.values()].map((edit) => edit.weight));
  return weights.size === 1 ? [...weights][0] : null;
}

export function buildManifest(
  plan: AblationPlan,
  options: { directionSource?: DirectionProvenance },
  files: Record<string, OutputFileRecord>,
): AblationManifest {
  const edits = [...plan.edits.values()];
  const { ablation } = plan;
  const embeddingEdited = edits.some((edit) => edit.match.role === 'embedding');
  const tied = plan.scan.tiedEmbeddings && embeddingEdited;
  return {
    format: MANIFEST_FORMAT,
    tool: { name: packageJson.name, version: packageJson.version },
    model: {
      modelType: plan.config.modelType,
      architectures: plan.config.architectures,
      hiddenSize: plan.config.hiddenSize,
      numLayers: plan.config.numLayers,
    },
    recipe: recipeToJson(ablation.recipe),
    direction: {
      sha256: directionsSha256(plan),
      length: ablation.dModel,
      layer: options.directionSource?.layer ?? null,
      file: options.directionSource?.file ?? null,
      fileSha256: options.directionSource?.sha256 ?? null,
    },
    scale: ablation.shorthand ? ablation.shorthand.scale : constantWeight(plan),
    targets: [...ablation.components],
    layers: ablation.shorthand?.layers ? [ablation.shorthand.layers[0], ablation.shorthand.layers[1]] : null,
    tiedEmbeddings: tied,
    // The tied-head note only matters when the embedding was edited.
    notes: plan.notes.filter((note) => tied || !note.startsWith('lm_head is tied')),
    editedTensors: edits.map((edit) => edit.match.name),
    edits: edits.map((edit) => ({
      name: edit.match.name,
      shard: edit.shard,
      role: edit.match.role,
      layer: edit.match.layer,
      dtype: edit.dtype,
      shape: [...edit.tensor.shape],
      orientation: edit.orientation,
      weight: edit.weight,
    })),
    excludedTensors: plan.scan.excluded,
    onnx: plan.onnx ? 'ablated' : 'copied',
    onnxGraphs: (plan.onnx?.graphs ?? []).map((graph) => ({
      file: graph.path,
      editedInitializers: graph.ablation.edits.map((edit) => ({ name: edit.initializer, target: edit.target, layer: edit.layer >= 0 ? edit.layer : null, layout: edit.layout, dtype: edit.dtype })),
      bakedHooks: graph.ablation.baked.map((site) => ({ target: site.target, layer: site.layer >= 0 ? site.layer : null, reason: site.reason })),
    })),
    files,
  };
}
