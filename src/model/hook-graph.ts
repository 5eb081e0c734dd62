/**
 * Hook graph: inference-time ablation x ← x − α·r(r·x), computed in float32, on the embedding output and on
 * the output of every targeted out-projection before it is added to the residual stream (docs/definitions.md "Hooks").
 * With the same unit r, α and targets this equals the weight edit: for an out-projection y = Wx + b,
 * (I − α r rᵀ)(Wx + b) = (W − α r rᵀW)x + (b − α r rᵀb); for the embedding, row e of E maps to e − α r(r·e).
 * A tied lm_head changes with the edited embedding: logits = h·E'ᵀ = (h − α r(r·h))·Eᵀ, so with
 * `tiedEmbeddings` the input of the lm_head is hooked too.
 *
 * Out-projections are found structurally: the branch added at each residual sum must come from a MatMul-like
 * node (MatMul, Gemm, MatMulInteger + its dequantizing Cast/Mul, MatMulNBits, ...) through nothing but casts,
 * scales, reshapes and a bias Add, which all commute with the projection. Only the residual sum's input is
 * rewired, so every original input and output of the graph stays.
 */
import { InvalidInputError, UnsupportedModelError } from '../base/errors';
import { ABLATION_COMPONENTS, type AblationComponent } from '../core/recipe';
import { OnnxDataType, float32Initializer, intAttribute } from '../formats/onnx';
import type { ModelProto, NodeProto } from '../formats/onnx';
import { GraphEdit, GraphIndex, makeNode, renameOuterScopeReads } from './onnx-graph-utils';
import { findResidualPoints } from './residual-finder';
import type { FindResidualOptions, ResidualJunction, ResidualPoints } from './residual-finder';

/** The tensor groups a hook graph can ablate: those of the weight edit (src/core/recipe.ts). */
export type HookTarget = AblationComponent;
const HOOK_TARGETS = ABLATION_COMPONENTS;

export interface HookOptions extends FindResidualOptions {
  /** Unit direction r, [dModel]. */
  direction: Float32Array;
  /** α: 1 removes the component along r, 0 changes nothing, 2 reflects it. */
  scale: number;
  targets: HookTarget[];
  /** Inclusive block range for the 'attn' and 'mlp' targets; all blocks when absent. */
  layers?: [number, number];
  /** The lm_head shares the embedding matrix (config tie_word_embeddings); hook its input when 'embed' is targeted. */
  tiedEmbeddings?: boolean;
  /** Residual points found beforehand on this very model object (node indices refer to it); found when absent. */
  residual?: ResidualPoints;
  /**
   * Which of the sites chosen by `targets` / `layers` / `tiedEmbeddings` get a hook; all when absent. The ONNX
   * export bakes hooks only where it cannot edit the weight itself (quantized weights, shared tables).
   */
  include?: (site: { target: HookTarget | 'lm_head'; layer: number }) => boolean;
}

export interface HookSite {
  target: HookTarget | 'lm_head';
  /** Block index for 'attn' / 'mlp', −1 otherwise. */
  layer: number;
  /** The value that is projected (an out-projection output, the embedding output, or the lm_head input). */
  value: string;
  /** The out-projection node found for this site, when there is one. */
  projection: string | null;
}

export interface HookGraph {
  model: ModelProto;
  insertedNodes: string[];
  modifiedNodes: string[];
  sites: HookSite[];
  residual: ResidualPoints;
}

/** Unit length is required to within this, since x − α r(r·x) only removes the r-component when ‖r‖ = 1. */
export const DIRECTION_UNIT_TOLERANCE = 1e-3;
const PROJECTION_OPS = new Set(['MatMul', 'Gemm', 'MatMulInteger', 'MatMulNBits', 'QLinearMatMul', 'MatMulIntegerToFloat', 'DynamicQuantizeMatMul', 'FusedMatMul', 'MoE', 'QMoE']);
const PROJECTION_TAIL_OPS = new Set(['Cast', 'Identity', 'Reshape', 'Add', 'Mul', 'DequantizeLinear']);
const PROJECTION_SEARCH_DEPTH = 6;
/** Input slot of the optional bias (ORT contrib specs: SkipSimplified… input, skip, gamma, bias; SkipLayer… input, skip, gamma, beta, bias). */
const SKIP_NORM_BIAS_SLOT: Record<string, number> = { SkipSimplifiedLayerNormalization: 3, SkipLayerNormalization: 4 };

export function buildHookGraph(model: ModelProto, options: HookOptions): HookGraph {
  const residual = options.residual ?? findResidualPoints(model, options);
  const numLayers = residual.points.length - 1;
  validateHookOptions(options, residual, numLayers);
  const index = new GraphIndex(model.graph ?? {});
  const edit = new GraphEdit(index);
  const dModel = options.direction.length;

  const directionName = index.freshName('abliterate/hook/direction');
  const scaledName = index.freshName('abliterate/hook/scaled_direction');
  edit.addInitializer(float32Initializer(directionName, [dModel, 1], options.direction)); // [dModel, 1]: r as a column for x·r
  edit.addInitializer(float32Initializer(scaledName, [dModel], Array.from(options.direction, (value) => options.scale * value))); // [dModel]: α·r

  const sites: HookSite[] = [];
  const [firstLayer, lastLayer] = options.layers ?? [0, numLayers - 1];
  const include = options.include ?? (() => true);
  if (options.targets.includes('embed')) {
    const value = residual.points[0];
    if (include({ target: 'embed', layer: -1 })) {
      rewireAllConsumers(edit, index, value, insertProjection(edit, index, value, residual.elemType, 'embed', directionName, scaledName));
      sites.push({ target: 'embed', layer: -1, value, projection: null });
    }
    if (options.tiedEmbeddings && include({ target: 'lm_head', layer: -1 })) {
      const lmHeadInput = findLmHeadInput(index);
      rewireAllConsumers(edit, index, lmHeadInput, insertProjection(edit, index, lmHeadInput, residual.elemType, 'lm_head', directionName, scaledName));
      sites.push({ target: 'lm_head', layer: -1, value: lmHeadInput, projection: null });
    }
  }
  for (const junction of residual.junctions) {
    const target: HookTarget = junction.kind === 'mixer' ? 'attn' : 'mlp';
    if (!options.targets.includes(target) || junction.block < firstLayer || junction.block > lastLayer || !include({ target, layer: junction.block })) continue;
    const projection = findOutProjection(index, junction);
    const label = `${target}/${junction.block}`;
    const node = edit.nodeForEdit(junction.nodeIndex);
    const branch = foldSkipNormBias(edit, index, node, junction, label);
    const hooked = insertProjection(edit, index, branch, residual.elemType, label, directionName, scaledName);
    (node.input as string[])[junction.branchInputIndex] = hooked;
    sites.push({ target, layer: junction.block, value: junction.branchInput, projection });
  }
  return { model: edit.apply(model), insertedNodes: edit.insertedNodes, modifiedNodes: edit.modifiedNodes, sites, residual };
}

function validateHookOptions(options: HookOptions, residual: ResidualPoints, numLayers: number): void {
  const { direction, scale, targets, layers } = options;
  if (!(direction instanceof Float32Array)) throw new InvalidInputError('The hook direction must be a Float32Array.');
  if (residual.dModel !== null && direction.length !== residual.dModel) throw new InvalidInputError(`The direction has ${direction.length} values but the model's hidden size is ${residual.dModel}.`);
  let squaredNorm = 0;
  for (const value of direction) {
    if (!Number.isFinite(value)) throw new InvalidInputError('The hook direction contains a non-finite value (NaN or infinity).');
    squaredNorm += value * value;
  }
  if (Math.abs(Math.sqrt(squaredNorm) - 1) > DIRECTION_UNIT_TOLERANCE) throw new InvalidInputError(`The hook direction must have unit length; its length is ${Math.sqrt(squaredNorm)}.`);
  if (!Number.isFinite(scale)) throw new InvalidInputError(`The ablation scale must be a finite number, got ${scale}.`);
  if (!Array.isArray(targets) || targets.length === 0) throw new InvalidInputError(`Name at least one hook target (${HOOK_TARGETS.join(', ')}).`);
  for (const target of targets) if (!HOOK_TARGETS.includes(target)) throw new InvalidInputError(`Unknown hook target \`${target}\`; use ${HOOK_TARGETS.join(', ')}.`);
  if (layers) {
    const [first, last] = layers;
    if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last >= numLayers || first > last) {
      throw new InvalidInputError(`The hook layer range [${first}, ${last}] is not an inclusive range of blocks within 0..${numLayers - 1}.`);
    }
  }
}

/**
 * A Skip*Normalization may carry the out-projection's bias as an input (sum = input + skip + bias). The weight
 * edit changes that bias too, so the bias is added to the branch before the hook and removed from the node.
 */
export function foldSkipNormBias(edit: GraphEdit, index: GraphIndex, node: NodeProto, junction: ResidualJunction, label: string): string {
  const biasSlot = SKIP_NORM_BIAS_SLOT[junction.opType];
  const inputs = node.input as string[];
  const bias = biasSlot === undefined ? '' : (inputs[biasSlot] ?? '');
  if (!bias) return junction.branchInput;
  const withBias = index.freshName(`abliterate/hook/${label}/with_bias`);
  edit.insertAfterProducerOf(junction.branchInput, [makeNode('Add', index.freshName(`abliterate/hook/${label}/AddBias`), [junction.branchInput, bias], [withBias])]);
  inputs[biasSlot as number] = '';
  while (inputs.length > 0 && inputs[inputs.length - 1] === '') inputs.pop();
  return withBias;
}

/** Inserts (Cast →) x − α r(r·x) (→ Cast back) on `value`; returns the name of the hooked value. */
function insertProjection(edit: GraphEdit, index: GraphIndex, value: string, streamType: number, label: string, directionName: string, scaledName: string): string {
  const elemType = index.inferElemType(value) ?? streamType;
  const prefix = `abliterate/hook/${label}`;
  const nodes: NodeProto[] = [];
  let input = value;
  if (elemType !== OnnxDataType.FLOAT) {
    input = index.freshName(`${prefix}/float32`);
    nodes.push(makeNode('Cast', index.freshName(`${prefix}/CastToFloat`), [value], [input], [intAttribute('to', OnnxDataType.FLOAT)]));
  }
  const along = index.freshName(`${prefix}/along`); // [..., 1]: x·r
  const component = index.freshName(`${prefix}/component`); // [..., dModel]: α r (x·r)
  const projected = index.freshName(`${prefix}/projected`);
  nodes.push(makeNode('MatMul', index.freshName(`${prefix}/Dot`), [input, directionName], [along]));
  nodes.push(makeNode('Mul', index.freshName(`${prefix}/Scale`), [along, scaledName], [component]));
  nodes.push(makeNode('Sub', index.freshName(`${prefix}/Sub`), [input, component], [projected]));
  let output = projected;
  if (elemType !== OnnxDataType.FLOAT) {
    output = index.freshName(`${prefix}/restored`);
    nodes.push(makeNode('Cast', index.freshName(`${prefix}/CastBack`), [projected], [output], [intAttribute('to', elemType)]));
  }
  edit.insertAfterProducerOf(value, nodes);
  return output;
}

/** Points every reader of `value` (subgraph bodies included) at `replacement`, except the hook's own nodes. */
export function rewireAllConsumers(edit: GraphEdit, index: GraphIndex, value: string, replacement: string): void {
  if (index.outputs.includes(value)) throw new UnsupportedModelError(`The value \`${value}\` to hook is itself a graph output; hooking it would change the model's outputs.`);
  const seen = new Set<number>();
  for (const consumer of index.consumersOf(value)) {
    if (consumer.inputIndex >= 0) {
      const node = edit.nodeForEdit(consumer.nodeIndex);
      (node.input as string[])[consumer.inputIndex] = replacement;
    } else if (!seen.has(consumer.nodeIndex)) {
      seen.add(consumer.nodeIndex);
      edit.replaceNode(consumer.nodeIndex, renameOuterScopeReads(edit.nodeForEdit(consumer.nodeIndex), value, replacement));
    }
  }
}

/** The MatMul-like node whose output, through linear bookkeeping only, is the branch added at this junction. */
function findOutProjection(index: GraphIndex, junction: ResidualJunction): string {
  const { node, nodeIndex } = findOutProjectionNode(index, junction);
  return node.name || `#${nodeIndex} ${node.opType}`;
}

/** findOutProjection's node and its index in the graph. */
export function findOutProjectionNode(index: GraphIndex, junction: ResidualJunction): { node: NodeProto; nodeIndex: number } {
  const branch = junction.branchInput;
  let frontier: { value: string; path: number[] }[] = [{ value: branch, path: [] }];
  for (let depth = 0; depth <= PROJECTION_SEARCH_DEPTH && frontier.length > 0; depth++) {
    const next: typeof frontier = [];
    for (const { value, path } of frontier) {
      const producer = index.producerOf(value);
      if (!producer) continue;
      const opType = producer.node.opType ?? '';
      if (PROJECTION_OPS.has(opType)) {
        if (tailIsLinear(index, producer.nodeIndex, path)) return { node: producer.node, nodeIndex: producer.nodeIndex };
        continue;
      }
      if (!PROJECTION_TAIL_OPS.has(opType)) continue;
      for (const input of producer.node.input ?? []) if (input && !index.isConstant(input)) next.push({ value: input, path: [...path, producer.nodeIndex] });
    }
    frontier = next;
  }
  throw new UnsupportedModelError(
    `Block ${junction.block} ${junction.kind === 'mixer' ? 'attention' : 'MLP'}: the branch \`${branch}\` added at \`${junction.nodeName}\` does not come from a linear out-projection (a MatMul/Gemm/quantized MatMul followed only by casts, scales, reshapes and a bias Add), so a hook there would not equal the weight edit.`,
    { block: junction.block, branch },
  );
}

/** Bias Adds must add a constant; scale Muls must multiply by something that does not depend on the projection. */
function tailIsLinear(index: GraphIndex, projectionIndex: number, path: number[]): boolean {
  const stop = new Set([projectionIndex]);
  for (const nodeIndex of path) {
    const node = index.nodes[nodeIndex];
    if (node.opType !== 'Add' && node.opType !== 'Mul') continue;
    const operands = (node.input ?? []).filter((input) => input);
    const dependent = operands.filter((input) => index.ancestors(input, stop, new Set()).hitStop);
    if (dependent.length !== 1) return false;
    const others = operands.filter((input) => !dependent.includes(input));
    if (node.opType === 'Add' && !others.every((input) => index.isConstant(input))) return false;
  }
  return true;
}

/** The projection node that produces the logits (through casts and reshapes). */
export function findLmHeadProjection(index: GraphIndex): { node: NodeProto; nodeIndex: number } {
  const logits = index.outputs.includes('logits') ? 'logits' : index.outputs[0];
  let frontier = [logits];
  for (let depth = 0; depth <= PROJECTION_SEARCH_DEPTH && frontier.length > 0; depth++) {
    const next: string[] = [];
    for (const value of frontier) {
      const producer = index.producerOf(value);
      if (!producer) continue;
      const opType = producer.node.opType ?? '';
      if (PROJECTION_OPS.has(opType)) return { node: producer.node, nodeIndex: producer.nodeIndex };
      if (PROJECTION_TAIL_OPS.has(opType)) for (const input of producer.node.input ?? []) if (input && !index.isConstant(input)) next.push(input);
    }
    frontier = next;
  }
  throw new UnsupportedModelError(`Could not find the lm_head projection that produces \`${logits}\`.`);
}

/** The float input of the projection that produces the logits (the final-norm output). */
export function findLmHeadInput(index: GraphIndex): string {
  const logits = index.outputs.includes('logits') ? 'logits' : index.outputs[0];
  let frontier = [logits];
  for (let depth = 0; depth <= PROJECTION_SEARCH_DEPTH && frontier.length > 0; depth++) {
    const next: string[] = [];
    for (const value of frontier) {
      const producer = index.producerOf(value);
      if (!producer) continue;
      const opType = producer.node.opType ?? '';
      if (PROJECTION_OPS.has(opType)) {
        const activation = (producer.node.input ?? []).find((input) => input && !index.isConstant(input)) ?? '';
        const quantizer = index.producerOf(activation);
        return quantizer?.node.opType === 'DynamicQuantizeLinear' ? (quantizer.node.input ?? [])[0] : activation;
      }
      if (PROJECTION_TAIL_OPS.has(opType)) for (const input of producer.node.input ?? []) if (input && !index.isConstant(input)) next.push(input);
    }
    frontier = next;
  }
  throw new UnsupportedModelError(`Could not find the lm_head projection that produces \`${logits}\`, so a tied embedding cannot be hooked at the lm_head.`);
}
