/**
 * `abliteration.json`: what was done to the folder, reproducibly. The direction is identified by the SHA-256 of
 * the exact float32 unit vector used (little-endian), and by its source file's hash when it came from a file;
 * every output file (shards, index, copied files) is listed with its size and SHA-256.
 * No timestamps: the same input and options give the same manifest.
 */
import packageJson from '../../package.json';
import type { AblationTarget, Exclusion } from '../model/tensor-roles';
import type { AblationPlan, AblationSelection } from './ablate-plan';

export const MANIFEST_FORMAT = 'abliteration-workbench/ablation@1';

export interface OutputFileRecord {
  sha256: string;
  bytes: number;
}

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
}

export interface AblationManifest {
  format: typeof MANIFEST_FORMAT;
  tool: { name: string; version: string };
  model: { modelType: string; architectures: string[]; hiddenSize: number; numLayers: number };
  direction: { sha256: string; length: number; layer: number | null; file: string | null; fileSha256: string | null };
  scale: number;
  targets: AblationTarget[];
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

export function buildManifest(
  plan: AblationPlan,
  options: AblationSelection & { directionSource?: DirectionProvenance },
  files: Record<string, OutputFileRecord>,
  directionSha256: string,
): AblationManifest {
  const edits = [...plan.edits.values()];
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
    direction: {
      sha256: directionSha256,
      length: options.direction.length,
      layer: options.directionSource?.layer ?? null,
      file: options.directionSource?.file ?? null,
      fileSha256: options.directionSource?.sha256 ?? null,
    },
    scale: options.scale,
    targets: [...options.targets],
    layers: options.layers ? [options.layers[0], options.layers[1]] : null,
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
