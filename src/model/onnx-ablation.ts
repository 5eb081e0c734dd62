/**
 * What abliterating an ONNX graph means, site by site (docs/definitions.md "Weight orthogonalization", "Hooks"):
 *
 * - a float weight (F32, F16, BF16) that only the site reads is edited in place, exactly as the safetensors
 *   export edits its twin: an embedding Gather table [vocab, dModel] loses its r component row by row, an
 *   out-projection MatMul weight — stored [in, dModel], the transpose of HF's [dModel, in] — gets the columns
 *   edit in transposed form, a constant bias Add [dModel] the rows edit;
 * - anything else (MatMulNBits q4, MatMulInteger/DequantizeLinear q8, QDQ, block-quantized tables, a
 *   SkipSimplifiedLayerNormalization that carries the bias, a weight other nodes read too) gets the hook
 *   x ← x − α r(r·x) baked into the graph with α and r as constants. That is exact in activation space and
 *   needs no re-quantization.
 *
 * A tied lm_head is covered either by the edited table itself (the head reads the same initializer) or by a
 * baked hook on its input. Graphs that take `inputs_embeds` (Qwen3.5) get the embedding in their separate
 * `embed_tokens` graph, where the table is edited or the output hooked.
 */
import type { FloatDType } from '../core/dtypes';
import { OnnxDataType, int64ToNumber, intAttribute, float32Initializer, onnx } from '../formats/onnx';
import type { ModelProto, NodeProto, TensorProto } from '../formats/onnx';
import { UnsupportedModelError } from '../base/errors';
import { buildHookGraph, type HookTarget } from './hook-graph';
import { GraphIndex, makeNode } from './onnx-graph-utils';
import { findResidualPoints, type ResidualJunction, type ResidualPoints } from './residual-finder';

export interface OnnxInitializerEdit {
  initializer: string;
  target: HookTarget;
  /** Block index for 'attn' / 'mlp', −1 for the embedding. */
  layer: number;
  /**
   * 'rows': each stored row (length dModel) loses its r component — embedding tables and biases;
   * 'transposed-columns': a MatMul weight [in, dModel], the HF columns edit in transposed form.
   */
  layout: 'rows' | 'transposed-columns';
  dtype: FloatDType;
  /** Stored shape [rows, cols]; cols = dModel for both layouts. */
  rows: number;
  cols: number;
  /** The recipe's numbers for this target: its float32 unit direction [dModel] and weight w (≠ 0). */
  direction: Float32Array;
  weight: number;
}

export interface BakedHook {
  target: HookTarget | 'lm_head';
  layer: number;
  /** Why the weight itself was not edited. */
  reason: string;
}

export interface OnnxGraphAblation {
  /** The graph with hooks baked in where needed; the initializers to edit still hold the original payloads. */
  model: ModelProto;
  edits: OnnxInitializerEdit[];
  baked: BakedHook[];
}

/**
 * The numbers of a resolved ablation recipe (the engine's ResolvedAblation has this shape): the per-target
 * direction and weight every edit and baked hook uses, so they are those of the safetensors edit.
 */
export interface AblationNumbers {
  directionFor(component: HookTarget, block: number): Float32Array; // [dModel]
  weightFor(component: HookTarget, block: number): number;
  /** Components with a non-zero weight somewhere. */
  components: readonly HookTarget[];
  dModel: number;
  recipe: { method: string };
  /** The seed shorthand's block range for attn/mlp, when the ablation came from one. */
  shorthand: { layers?: [number, number] } | null;
}

export interface OnnxAblationOptions {
  ablation: AblationNumbers;
  tiedEmbeddings: boolean;
  numLayers?: number;
}

const FLOAT_DTYPES: ReadonlyMap<number, FloatDType> = new Map([
  [OnnxDataType.FLOAT, 'F32'],
  [OnnxDataType.FLOAT16, 'F16'],
  [OnnxDataType.BFLOAT16, 'BF16'],
]);
/** Ops between an out-projection MatMul and the residual sum that the weight edit commutes with. */
const PASS_THROUGH_OPS = new Set(['Reshape', 'Identity', 'Cast']);
const TAIL_SEARCH_DEPTH = 6;
/** Input slot of a Skip*Normalization's optional bias (ORT contrib specs), as hook-graph.ts reads it. */
const SKIP_NORM_BIAS_SLOT: Readonly<Record<string, number>> = { SkipSimplifiedLayerNormalization: 3, SkipLayerNormalization: 4 };

/** Plans the ablation of a decoder graph (one with the residual stream). */
export function planDecoderAblation(model: ModelProto, options: OnnxAblationOptions): OnnxGraphAblation {
  const { ablation } = options;
  checkStandardMethod(ablation);
  const residual = findResidualPoints(model, options.numLayers !== undefined ? { numLayers: options.numLayers } : {});
  const index = new GraphIndex(model.graph ?? {});
  const dModel = ablation.dModel;
  const edits: OnnxInitializerEdit[] = [];
  const baked: BakedHook[] = [];
  const numbers = (target: HookTarget, layer: number) => ({ direction: ablation.directionFor(target, layer), weight: ablation.weightFor(target, layer) });

  if (ablation.components.includes('embed') && ablation.weightFor('embed', -1) !== 0) {
    let headCovered = false;
    if (!residual.inputsEmbeds) {
      const table = embeddingTable(index, residual.points[0], dModel);
      if (typeof table === 'string') baked.push({ target: 'embed', layer: -1, reason: table });
      else {
        const shared = index.consumersOf(table.initializer).length > 1;
        if (shared && !options.tiedEmbeddings) baked.push({ target: 'embed', layer: -1, reason: `the table \`${table.initializer}\` is read by other nodes too` });
        else {
          edits.push({ ...table, ...numbers('embed', -1) });
          headCovered = shared; // the tied head reads the edited table itself
        }
      }
    }
    if (options.tiedEmbeddings && !headCovered) baked.push({ target: 'lm_head', layer: -1, reason: 'the tied lm_head has its own copy of the table' });
  }
  const [first, last] = ablation.shorthand?.layers ?? [0, residual.points.length - 2];
  for (const junction of residual.junctions) {
    const target: HookTarget = junction.kind === 'mixer' ? 'attn' : 'mlp';
    if (!ablation.components.includes(target) || junction.block < first || junction.block > last || ablation.weightFor(target, junction.block) === 0) continue;
    const found = projectionEdits(index, junction, dModel);
    if (typeof found === 'string') baked.push({ target, layer: junction.block, reason: found });
    else edits.push(...found.map((edit) => ({ ...edit, target, layer: junction.block, ...numbers(target, junction.block) })));
  }
  return { model: bakeHooks(model, residual, baked, options), edits, baked };
}

/**
 * Bakes the hooks of `sites`, one hook-graph pass per distinct (direction, weight): a recipe's kernel gives blocks
 * different weights, and each pass carries one direction and one α as constants. Later passes find the residual
 * stream again on the graph the earlier ones wrote (the finder sees through the hooks).
 */
function bakeHooks(model: ModelProto, residual: ResidualPoints, sites: BakedHook[], options: OnnxAblationOptions): ModelProto {
  const { ablation } = options;
  const groups = new Map<string, { direction: Float32Array; weight: number; keys: Set<string> }>();
  for (const site of sites) {
    const component: HookTarget = site.target === 'lm_head' ? 'embed' : site.target; // the tied head is the embedding
    const direction = ablation.directionFor(component, site.layer);
    const weight = ablation.weightFor(component, site.layer);
    const groupKey = `${weight}/${Array.from(direction).join(',')}`;
    const group = groups.get(groupKey) ?? { direction, weight, keys: new Set<string>() };
    group.keys.add(`${site.target}:${site.layer}`);
    groups.set(groupKey, group);
  }
  let current = sites.length === 0 ? shallowCopy(model) : model;
  let points: ResidualPoints | undefined = residual;
  for (const group of groups.values()) {
    current = buildHookGraph(current, {
      direction: group.direction,
      scale: group.weight,
      targets: ['embed', 'attn', 'mlp'],
      tiedEmbeddings: options.tiedEmbeddings,
      ...(points ? { residual: points } : {}),
      ...(options.numLayers !== undefined ? { numLayers: options.numLayers } : {}),
      include: (site) => group.keys.has(`${site.target}:${site.layer}`),
    }).model;
    points = undefined;
  }
  return current;
}

function checkStandardMethod(ablation: AblationNumbers): void {
  if (ablation.recipe.method !== 'standard') {
    throw new UnsupportedModelError(
      `abliterated ONNX supports the standard method only: the recipe's "${ablation.recipe.method}" rescales weight columns, which a hook baked into a quantized graph cannot express; export the safetensors and convert them to ONNX instead.`,
    );
  }
}

/**
 * Plans the ablation of a separate embedding graph (input_ids → inputs_embeds): the Gather table edited when it is
 * a float initializer, else the hook appended to the graph's output under the output's own name.
 */
export function planEmbeddingGraphAblation(model: ModelProto, file: string, ablation: AblationNumbers): OnnxGraphAblation {
  checkStandardMethod(ablation);
  const graph = model.graph ?? {};
  const index = new GraphIndex(graph);
  const dModel = ablation.dModel;
  const direction = ablation.directionFor('embed', -1);
  const weight = ablation.weightFor('embed', -1);
  const outputs = (graph.output ?? []).filter((info) => index.isFloat(info.name ?? ''));
  if (outputs.length !== 1) throw new UnsupportedModelError(`${file}: an embedding graph has one float output (inputs_embeds); this one has ${outputs.length}.`);
  const output = outputs[0].name as string;
  const table = embeddingTable(index, output, dModel);
  if (typeof table !== 'string' && index.consumersOf(table.initializer).length === 1) return { model: shallowCopy(model), edits: [{ ...table, direction, weight }], baked: [] };
  const producer = index.producerOf(output);
  if (!producer) throw new UnsupportedModelError(`${file}: the output \`${output}\` is not computed by any node, so it cannot be hooked.`);
  const unhooked = index.freshName(`${output}/abliterate_unhooked`);
  const renamed = onnx.NodeProto.create({ ...producer.node, output: (producer.node.output ?? []).map((name) => (name === output ? unhooked : name)) });
  const elemType = index.elemType(output) ?? OnnxDataType.FLOAT;
  const { nodes, initializers } = projectionNodes(index, unhooked, output, elemType, direction, weight);
  const node = (graph.node ?? []).map((existing, position) => (position === producer.nodeIndex ? renamed : existing));
  const newGraph = onnx.GraphProto.create({ ...graph, node: [...node, ...nodes], initializer: [...(graph.initializer ?? []), ...initializers] });
  return {
    model: onnx.ModelProto.create({ ...model, graph: newGraph }),
    edits: [],
    baked: [{ target: 'embed', layer: -1, reason: typeof table === 'string' ? table : `the table \`${table.initializer}\` is read by other nodes too` }],
  };
}

/** x − α r(r·x) from `input` to `output`, computed in float32 (casts around it for other float types). */
function projectionNodes(index: GraphIndex, input: string, output: string, elemType: number, direction: Float32Array, scale: number): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const prefix = 'abliterate/hook/embed';
  const directionName = index.freshName(`${prefix}/direction`);
  const scaledName = index.freshName(`${prefix}/scaled_direction`);
  const initializers = [
    float32Initializer(directionName, [direction.length, 1], direction), // [dModel, 1]
    float32Initializer(scaledName, [direction.length], Array.from(direction, (value) => scale * value)), // [dModel]: α r
  ];
  const nodes: NodeProto[] = [];
  const float = elemType === OnnxDataType.FLOAT;
  const x = float ? input : index.freshName(`${prefix}/float32`);
  if (!float) nodes.push(makeNode('Cast', index.freshName(`${prefix}/CastToFloat`), [input], [x], [intAttribute('to', OnnxDataType.FLOAT)]));
  const along = index.freshName(`${prefix}/along`); // [..., 1]
  const component = index.freshName(`${prefix}/component`); // [..., dModel]
  const projected = float ? output : index.freshName(`${prefix}/projected`);
  nodes.push(makeNode('MatMul', index.freshName(`${prefix}/Dot`), [x, directionName], [along]));
  nodes.push(makeNode('Mul', index.freshName(`${prefix}/Scale`), [along, scaledName], [component]));
  nodes.push(makeNode('Sub', index.freshName(`${prefix}/Sub`), [x, component], [projected]));
  if (!float) nodes.push(makeNode('Cast', index.freshName(`${prefix}/CastBack`), [projected], [output], [intAttribute('to', elemType)]));
  return { nodes, initializers };
}

function shallowCopy(model: ModelProto): ModelProto {
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...(model.graph ?? {}), initializer: [...(model.graph?.initializer ?? [])] }) });
}

/** The float initializer's dtype and dims, or null when it is not one. */
function floatInitializer(index: GraphIndex, name: string): { dtype: FloatDType; dims: number[] } | null {
  const tensor = index.initializers.get(name);
  const dtype = tensor ? FLOAT_DTYPES.get(tensor.dataType ?? 0) : undefined;
  if (!tensor || !dtype) return null;
  return { dtype, dims: (tensor.dims ?? []).map((dim) => int64ToNumber(dim)) };
}

type SiteEdit = Omit<OnnxInitializerEdit, 'target' | 'layer' | 'direction' | 'weight'>;

/** The Gather table behind `value` as a rows edit, or why it cannot be edited. */
function embeddingTable(index: GraphIndex, value: string, dModel: number): (SiteEdit & { target: HookTarget; layer: number }) | string {
  const producer = index.producerOf(value);
  if (!producer) return `\`${value}\` is not computed by a node`;
  const { node } = producer;
  if (node.opType !== 'Gather' || (node.domain ?? '') !== '') return `the embedding comes from ${node.opType} \`${node.name ?? ''}\` (a quantized or computed table)`;
  const table = (node.input ?? [])[0] ?? '';
  const info = floatInitializer(index, table);
  if (!info) return `the table \`${table}\` is not a float initializer`;
  if (info.dims.length !== 2 || info.dims[1] !== dModel) return `the table \`${table}\` has shape [${info.dims.join(', ')}], not [vocab, ${dModel}]`;
  return { initializer: table, target: 'embed', layer: -1, layout: 'rows', dtype: info.dtype, rows: info.dims[0], cols: dModel };
}

/**
 * The weight (and bias) of the out-projection that feeds this residual sum, when the branch is
 * MatMul(x, W) [+ b] through reshapes and casts only, and nothing else reads W, b or the values in between.
 */
function projectionEdits(index: GraphIndex, junction: ResidualJunction, dModel: number): SiteEdit[] | string {
  const biasSlot = SKIP_NORM_BIAS_SLOT[junction.opType];
  if (biasSlot !== undefined && (index.nodes[junction.nodeIndex].input ?? [])[biasSlot]) {
    return `the residual sum \`${junction.nodeName}\` adds a bias of its own`;
  }
  const edits: SiteEdit[] = [];
  let value = junction.branchInput;
  for (let depth = 0; depth <= TAIL_SEARCH_DEPTH; depth++) {
    if (index.consumersOf(value).length !== 1 || index.outputs.includes(value)) return `\`${value}\` is read by more than the residual sum`;
    const producer = index.producerOf(value);
    if (!producer) return `\`${value}\` is not computed by a node`;
    const { node } = producer;
    const inputs = node.input ?? [];
    const domain = node.domain ?? '';
    if (domain === '' && PASS_THROUGH_OPS.has(node.opType ?? '')) {
      value = inputs[0] ?? '';
      continue;
    }
    if (domain === '' && node.opType === 'Add' && edits.length === 0) {
      const biasSlot = inputs.findIndex((input) => isBias(index, input, dModel));
      if (biasSlot < 0) return `the Add \`${node.name ?? ''}\` before the residual sum adds no [${dModel}] float constant`;
      const bias = floatInitializer(index, inputs[biasSlot]) as { dtype: FloatDType };
      edits.push({ initializer: inputs[biasSlot], layout: 'rows', dtype: bias.dtype, rows: 1, cols: dModel });
      value = inputs[1 - biasSlot] ?? '';
      continue;
    }
    if (domain === '' && node.opType === 'MatMul') {
      const weight = storedWeight(index, inputs[1] ?? '');
      const info = floatInitializer(index, weight);
      if (!info) return `the out-projection \`${node.name ?? ''}\` has no float weight initializer (a quantized or computed weight)`;
      if (info.dims.length !== 2 || info.dims[1] !== dModel) return `the out-projection weight \`${weight}\` has shape [${info.dims.join(', ')}], not [in, ${dModel}]`;
      if (index.consumersOf(weight).length !== 1) return `the out-projection weight \`${weight}\` is shared with other nodes`;
      edits.push({ initializer: weight, layout: 'transposed-columns', dtype: info.dtype, rows: info.dims[0], cols: dModel });
      return edits;
    }
    return `the branch reaches ${node.opType} \`${node.name ?? ''}\`${domain ? ` (${domain})` : ''}, not a float MatMul`;
  }
  return 'no out-projection MatMul within reach of the residual sum';
}

/** A weight read through a Cast (float16 storage behind float32 compute) is edited where it is stored. */
function storedWeight(index: GraphIndex, value: string): string {
  const producer = index.producerOf(value);
  if (!producer || producer.node.opType !== 'Cast' || (producer.node.domain ?? '') !== '' || index.consumersOf(value).length !== 1) return value;
  const stored = (producer.node.input ?? [])[0] ?? '';
  return floatInitializer(index, stored) ? stored : value;
}

function isBias(index: GraphIndex, name: string, dModel: number): boolean {
  const info = floatInitializer(index, name);
  return info !== null && info.dims.length === 1 && info.dims[0] === dModel && index.consumersOf(name).length === 1;
}
