/**
 * The recipe hook graph: inference-time ablation for any recipe (docs/definitions.md "Ablation recipe"), with the
 * recipe's numbers as graph INPUTS, so one ONNX session serves every recipe without being rebuilt (or, with
 * `bake`, the same numbers as constants). Every site is hooked: the embedding output (row 0), every block's
 * attention and MLP branch (rows 1 + 2b and 2 + 2b) and, with tied embeddings, the lm_head input (row 0).
 *
 * At each site, on the branch y (float32):   y ← y − w r (r·y) + c
 *   r = directions[row], w = weights[row], c = bias_corrections[row] (0 unless a norm-preserving edit rescales
 *   a bias: c = (‖b‖/‖b′‖ − 1) b′ with b′ = b − w r (r·b)).
 * Norm-preserving out-projections: the projection's INPUT is scaled by s (input `input_scale.{attn|mlp}.{b}`,
 *   s_j = ‖W[:, j]‖ / ‖W[:, j] − w r p_j‖, p = rᵀW; ones for the standard method), an exact identity:
 *   (W − w r pᵀ) diag(s) x = (I − w r rᵀ) W (s ⊙ x).
 * Norm-preserving embedding (input `embed_norm_preserving` = 1): each embedding vector is rescaled to its old
 *   norm after the projection, in the graph (below 2^-20 of it, left as is, like the weight edit). A tied
 *   lm_head then multiplies logit t by ‖e_t‖/‖e′_t‖ (input `logit_scale`, ones otherwise).
 * The feeds for a recipe come from src/engine/recipe-hook-feeds.ts.
 */
import { InvalidInputError, UnsupportedModelError } from '../base/errors';
import { OnnxDataType, float32Initializer, int64Initializer, intAttribute, tensorValueInfo } from '../formats/onnx';
import type { ModelProto, NodeProto } from '../formats/onnx';
import { findLmHeadInput, findLmHeadProjection, findOutProjectionNode, foldSkipNormBias, rewireAllConsumers } from './hook-graph';
import { GraphEdit, GraphIndex, makeNode } from './onnx-graph-utils';
import { findResidualPoints } from './residual-finder';
import type { FindResidualOptions, ResidualPoints } from './residual-finder';

export type RecipeHookComponent = 'embed' | 'attn' | 'mlp';

export const RECIPE_HOOK_INPUT = {
  directions: 'abliterate.recipe.directions', // [sites, dModel]
  weights: 'abliterate.recipe.weights', // [sites]
  biasCorrections: 'abliterate.recipe.bias_corrections', // [sites, dModel]
  embedNormPreserving: 'abliterate.recipe.embed_norm_preserving', // [1]: 0 or 1
  logitScale: 'abliterate.recipe.logit_scale', // [vocab], tied embeddings only
} as const;

/** Name of the input that scales an out-projection's input (norm-preserving), [in]. */
export function inputScaleName(component: 'attn' | 'mlp', block: number): string {
  return `abliterate.recipe.input_scale.${component}.${block}`;
}

/** Row of the per-site inputs: embedding 0, block b attention 1 + 2b, MLP 2 + 2b. */
export function recipeSiteRow(component: RecipeHookComponent, block: number): number {
  return component === 'embed' ? 0 : 1 + 2 * block + (component === 'mlp' ? 1 : 0);
}

export interface RecipeHookSite {
  component: RecipeHookComponent | 'lm_head';
  /** Block for attn / mlp, −1 otherwise. */
  block: number;
  row: number;
  /** The hooked value. */
  value: string;
  projection: string | null;
  /** The input scaling this site's out-projection, or null where the projection cannot take one (MoE ops). */
  inputScale: string | null;
  /** The out-projection's input width (the length of the input scaling), when the graph says. */
  inFeatures: number | null;
}

/** The numbers one recipe gives the graph (feeds, or constants when baked). */
export interface RecipeHookValues {
  directions: Float32Array; // [sites, dModel]
  weights: Float32Array; // [sites]
  biasCorrections: Float32Array; // [sites, dModel]
  embedNormPreserving: number; // 0 or 1
  /** [vocab]; only read when the graph has the tied lm_head site. */
  logitScale: Float32Array | null;
  /** Input name → [in]; a site without an entry gets ones. */
  inputScales: Map<string, Float32Array>;
}

export interface RecipeHookOptions extends FindResidualOptions {
  /** The lm_head shares the embedding matrix (src/model/tied-embeddings.ts decides). */
  tiedEmbeddings?: boolean;
  residual?: ResidualPoints;
  /** Bake these numbers in as constants instead of graph inputs (sites with weight 0 are then left out). */
  bake?: RecipeHookValues;
}

export interface RecipeHookGraph {
  model: ModelProto;
  sites: RecipeHookSite[];
  numLayers: number;
  dModel: number;
  siteCount: number;
  tiedEmbeddings: boolean;
  /** The graph inputs added (empty when baked). */
  inputs: string[];
  residual: ResidualPoints;
}

/** (‖y′‖/‖y‖)² at or below which the edited norm counts as 0: (2^-20)², as in src/core/norm-preserving.ts. */
const MIN_SQUARED_RATIO = 2 ** -40;
const SCALABLE_OPS = new Set(['MatMul', 'Gemm', 'MatMulNBits', 'DynamicQuantizeMatMul', 'FusedMatMul']);
const QUANTIZED_INPUT_OPS = new Set(['MatMulInteger', 'QLinearMatMul', 'MatMulIntegerToFloat']);

export function buildRecipeHookGraph(model: ModelProto, options: RecipeHookOptions = {}): RecipeHookGraph {
  const residual = options.residual ?? findResidualPoints(model, options);
  const numLayers = residual.points.length - 1;
  const dModel = residual.dModel;
  if (dModel === null) throw new UnsupportedModelError('The residual stream width is not known from the graph, so the recipe inputs cannot be shaped.');
  const siteCount = 1 + 2 * numLayers;
  const bake = options.bake;
  if (bake) checkValues(bake, siteCount, dModel);
  const index = new GraphIndex(model.graph ?? {});
  const edit = new GraphEdit(index);
  const inputs: string[] = [];
  const tensor = (name: string, dims: (number | string)[], values: Float32Array | null) => {
    if (index.inputs.has(name) || index.initializers.has(name)) throw new InvalidInputError(`The graph already has a value named ${name}; it was hooked before.`);
    if (values) edit.addInitializer(float32Initializer(name, dims as number[], values));
    else {
      edit.addInput(tensorValueInfo(name, OnnxDataType.FLOAT, dims));
      inputs.push(name);
    }
    return name;
  };
  const names = {
    directions: tensor(RECIPE_HOOK_INPUT.directions, [siteCount, dModel], bake?.directions ?? null),
    weights: tensor(RECIPE_HOOK_INPUT.weights, [siteCount], bake?.weights ?? null),
    biasCorrections: tensor(RECIPE_HOOK_INPUT.biasCorrections, [siteCount, dModel], bake?.biasCorrections ?? null),
    embedNormPreserving: tensor(RECIPE_HOOK_INPUT.embedNormPreserving, [1], bake ? Float32Array.of(bake.embedNormPreserving) : null),
  };
  const constants = new SharedConstants(edit, index, dModel);
  const builder = new SiteBuilder(edit, index, residual.elemType, names, constants);
  const sites: RecipeHookSite[] = [];
  const skip = (row: number) => bake !== undefined && bake.weights[row] === 0 && bake.biasCorrections.subarray(row * dModel, (row + 1) * dModel).every((x) => x === 0);

  const embedValue = residual.points[0];
  const tied = options.tiedEmbeddings === true;
  if (!skip(0)) {
    rewireAllConsumers(edit, index, embedValue, builder.project(embedValue, 0, 'embed', true));
    sites.push({ component: 'embed', block: -1, row: 0, value: embedValue, projection: null, inputScale: null, inFeatures: null });
    if (tied) {
      const lmHeadInput = findLmHeadInput(index);
      rewireAllConsumers(edit, index, lmHeadInput, builder.project(lmHeadInput, 0, 'lm_head', false, false));
      sites.push({ component: 'lm_head', block: -1, row: 0, value: lmHeadInput, projection: null, inputScale: null, inFeatures: null });
      if (!bake) scaleLogits(edit, index, tensor(RECIPE_HOOK_INPUT.logitScale, ['vocab'], null));
      else if (bake.embedNormPreserving) {
        if (!bake.logitScale) throw new InvalidInputError('A norm-preserving embedding edit with a tied lm_head needs the logit scale.');
        scaleLogits(edit, index, tensor(RECIPE_HOOK_INPUT.logitScale, [bake.logitScale.length], bake.logitScale));
      }
    }
  }
  for (const junction of residual.junctions) {
    const component = junction.kind === 'mixer' ? 'attn' : 'mlp';
    const row = recipeSiteRow(component, junction.block);
    if (skip(row)) continue;
    const label = `${component}/${junction.block}`;
    const projection = findOutProjectionNode(index, junction);
    const scaleName = inputScaleName(component, junction.block);
    const bakedScale = bake?.inputScales.get(scaleName);
    let inputScale: string | null = null;
    const inFeatures = projectionInFeatures(index, projection.node);
    if (!bake || (bakedScale && !bakedScale.every((x) => x === 1))) {
      const activation = scalableActivation(index, edit, projection.node, projection.nodeIndex);
      if (activation) {
        inputScale = tensor(scaleName, bakedScale ? [bakedScale.length] : [inFeatures ?? `in_${component}_${junction.block}`], bakedScale ?? null);
        activation.rewire(builder.scaleInput(activation.value, inputScale, label));
      } else if (bake) {
        throw new UnsupportedModelError(`Block ${junction.block} ${component}: the out-projection \`${projection.node.name}\` (${projection.node.opType}) cannot take a norm-preserving input scaling.`);
      }
    }
    const node = edit.nodeForEdit(junction.nodeIndex);
    const branch = foldSkipNormBias(edit, index, node, junction, label);
    (node.input as string[])[junction.branchInputIndex] = builder.project(branch, row, label, false);
    sites.push({ component, block: junction.block, row, value: junction.branchInput, projection: projection.node.name || `#${projection.nodeIndex}`, inputScale, inFeatures });
  }
  return { model: edit.apply(model), sites, numLayers, dModel, siteCount, tiedEmbeddings: tied, inputs, residual };
}

function checkValues(values: RecipeHookValues, siteCount: number, dModel: number): void {
  if (values.directions.length !== siteCount * dModel || values.biasCorrections.length !== siteCount * dModel || values.weights.length !== siteCount) {
    throw new InvalidInputError(`The recipe values are shaped for another model (expected ${siteCount} sites of width ${dModel}).`);
  }
}

/** Constants every site shares, created once. */
class SharedConstants {
  private made = new Map<string, string>();
  constructor(
    private readonly edit: GraphEdit,
    private readonly index: GraphIndex,
    private readonly dModel: number,
  ) {}
  private once(key: string, make: (name: string) => void): string {
    let name = this.made.get(key);
    if (!name) {
      name = this.index.freshName(`abliterate/recipe/${key}`);
      make(name);
      this.made.set(key, name);
    }
    return name;
  }
  row(row: number): string {
    return this.once(`row_${row}`, (name) => this.edit.addInitializer(int64Initializer(name, [], [row])));
  }
  get columnShape(): string {
    return this.once('column_shape', (name) => this.edit.addInitializer(int64Initializer(name, [2], [-1, 1])));
  }
  get onesColumn(): string {
    return this.once('ones_column', (name) => this.edit.addInitializer(float32Initializer(name, [this.dModel, 1], new Float32Array(this.dModel).fill(1))));
  }
  get one(): string {
    return this.once('one', (name) => this.edit.addInitializer(float32Initializer(name, [], [1])));
  }
  get minSquaredRatio(): string {
    return this.once('min_squared_ratio', (name) => this.edit.addInitializer(float32Initializer(name, [], [MIN_SQUARED_RATIO])));
  }
}

class SiteBuilder {
  constructor(
    private readonly edit: GraphEdit,
    private readonly index: GraphIndex,
    private readonly streamType: number,
    private readonly inputs: { directions: string; weights: string; biasCorrections: string; embedNormPreserving: string },
    private readonly constants: SharedConstants,
  ) {}

  /** (Cast →) y − w r (r·y) + c (→ norm factor) (→ Cast back) on `value`; returns the hooked value's name. */
  project(value: string, row: number, label: string, normFactor: boolean, correction = true): string {
    const { index, constants } = this;
    const elemType = index.elemType(value) ?? this.streamType;
    const prefix = `abliterate/recipe/${label}`;
    const nodes: NodeProto[] = [];
    const fresh = (what: string) => index.freshName(`${prefix}/${what}`);
    const add = (op: string, inputs: string[], what: string, attributes: NodeProto['attribute'] = []) => {
      const output = fresh(what);
      nodes.push(makeNode(op, fresh(`${op}_${what}`), inputs, [output], attributes));
      return output;
    };
    let input = value;
    if (elemType !== OnnxDataType.FLOAT) input = add('Cast', [value], 'float32', [intAttribute('to', OnnxDataType.FLOAT)]);
    const r = add('Gather', [this.inputs.directions, constants.row(row)], 'direction'); // [dModel]
    const w = add('Gather', [this.inputs.weights, constants.row(row)], 'weight'); // []
    const column = add('Reshape', [r, constants.columnShape], 'direction_column'); // [dModel, 1]
    const along = add('MatMul', [input, column], 'along'); // [..., 1]: r·y
    const scaled = add('Mul', [r, w], 'scaled_direction'); // [dModel]: w r
    const component = add('Mul', [along, scaled], 'component'); // [..., dModel]
    let output = add('Sub', [input, component], 'projected');
    if (correction) {
      const c = add('Gather', [this.inputs.biasCorrections, constants.row(row)], 'bias_correction'); // [dModel]
      output = add('Add', [output, c], 'corrected');
    }
    if (normFactor) {
      // factor = 1 + flag·(‖y‖/‖y′‖ − 1), with ‖y′‖/‖y‖ ≤ 2^-20 counted as 0 (factor 1), like the weight edit.
      const before = add('MatMul', [add('Mul', [input, input], 'squared'), constants.onesColumn], 'squared_norm'); // [..., 1]
      const after = add('MatMul', [add('Mul', [output, output], 'projected_squared'), constants.onesColumn], 'projected_squared_norm');
      const valid = add('Greater', [after, add('Mul', [before, constants.minSquaredRatio], 'floor')], 'nonzero');
      const ratio = add('Sqrt', [add('Div', [before, after], 'norm_ratio_squared')], 'norm_ratio');
      const factor = add('Where', [valid, ratio, constants.one], 'factor');
      const gated = add('Add', [constants.one, add('Mul', [this.inputs.embedNormPreserving, add('Sub', [factor, constants.one], 'factor_minus_one')], 'gated_change')], 'gated_factor');
      output = add('Mul', [output, gated], 'norm_preserved');
    }
    if (elemType !== OnnxDataType.FLOAT) output = add('Cast', [output], 'restored', [intAttribute('to', elemType)]);
    this.edit.insertAfterProducerOf(value, nodes);
    return output;
  }

  /** (Cast →) a ⊙ s (→ Cast back) on an out-projection's input. */
  scaleInput(value: string, scale: string, label: string): string {
    const elemType = this.index.elemType(value) ?? this.streamType;
    const prefix = `abliterate/recipe/${label}/input_scale`;
    const nodes: NodeProto[] = [];
    let input = value;
    if (elemType !== OnnxDataType.FLOAT) {
      input = this.index.freshName(`${prefix}/float32`);
      nodes.push(makeNode('Cast', this.index.freshName(`${prefix}/CastToFloat`), [value], [input], [intAttribute('to', OnnxDataType.FLOAT)]));
    }
    let output = this.index.freshName(`${prefix}/scaled`);
    nodes.push(makeNode('Mul', this.index.freshName(`${prefix}/Mul`), [input, scale], [output]));
    if (elemType !== OnnxDataType.FLOAT) {
      const restored = this.index.freshName(`${prefix}/restored`);
      nodes.push(makeNode('Cast', this.index.freshName(`${prefix}/CastBack`), [output], [restored], [intAttribute('to', elemType)]));
      output = restored;
    }
    this.edit.insertAfterProducerOf(value, nodes);
    return output;
  }
}

/**
 * The float activation entering an out-projection and how to point the projection (or its dynamic quantizer)
 * at a scaled copy; null for ops whose input cannot be scaled per column (MoE, transposed inputs).
 */
function scalableActivation(index: GraphIndex, edit: GraphEdit, node: NodeProto, nodeIndex: number): { value: string; rewire: (scaled: string) => void } | null {
  const opType = node.opType ?? '';
  const first = (node.input ?? [])[0];
  if (!first || index.isConstant(first)) return null;
  const transA = (node.attribute ?? []).find((attribute) => attribute.name === 'transA');
  if (transA && Number(transA.i) !== 0) return null;
  if (SCALABLE_OPS.has(opType)) {
    return { value: first, rewire: (scaled) => ((edit.nodeForEdit(nodeIndex).input as string[])[0] = scaled) };
  }
  if (QUANTIZED_INPUT_OPS.has(opType)) {
    const quantizer = index.producerOf(first);
    if (!quantizer || quantizer.node.opType !== 'DynamicQuantizeLinear') return null;
    // The quantizer must feed no other projection (its scale also feeds this one's dequantizing Mul), or scaling
    // its input would change that projection too.
    for (const output of quantizer.node.output ?? []) {
      if (!output) continue;
      for (const consumer of index.consumersOf(output)) {
        if (consumer.nodeIndex !== nodeIndex && QUANTIZED_INPUT_OPS.has(index.nodes[consumer.nodeIndex].opType ?? '')) return null;
      }
    }
    const activation = (quantizer.node.input ?? [])[0];
    return { value: activation, rewire: (scaled) => ((edit.nodeForEdit(quantizer.nodeIndex).input as string[])[0] = scaled) };
  }
  return null;
}

/** The input width of an out-projection, from its weight's shape (or attribute K), or null. */
function projectionInFeatures(index: GraphIndex, node: NodeProto): number | null {
  const opType = node.opType ?? '';
  const attribute = (name: string) => (node.attribute ?? []).find((candidate) => candidate.name === name);
  if (opType === 'MatMulNBits') return attribute('K') ? Number(attribute('K')!.i) : null;
  const weight = (node.input ?? [])[1];
  const dims = weight ? index.dims(weight) : null;
  const transB = opType === 'Gemm' && Number(attribute('transB')?.i ?? 0) !== 0;
  const value = dims && dims.length === 2 ? dims[transB ? 1 : 0] : null;
  if (typeof value === 'number') return value;
  const activation = index.dims((node.input ?? [])[0] ?? '');
  const last = activation?.[activation.length - 1];
  return typeof last === 'number' ? last : null;
}

/** logits ← logits ⊙ scale [vocab], after the lm_head projection (float32 in between). */
function scaleLogits(edit: GraphEdit, index: GraphIndex, scale: string): void {
  const { node, nodeIndex } = findLmHeadProjection(index);
  const output = (node.output ?? [])[0];
  const elemType = index.elemType(output) ?? OnnxDataType.FLOAT;
  const prefix = 'abliterate/recipe/lm_head/logit_scale';
  const nodes: NodeProto[] = [];
  const isGraphOutput = index.outputs.includes(output);
  // A graph output keeps its name: the projection writes a fresh value and the scaled logits take the name.
  const source = isGraphOutput ? index.freshName(`${prefix}/unscaled`) : output;
  let input = source;
  if (elemType !== OnnxDataType.FLOAT) {
    input = index.freshName(`${prefix}/float32`);
    nodes.push(makeNode('Cast', index.freshName(`${prefix}/CastToFloat`), [source], [input], [intAttribute('to', OnnxDataType.FLOAT)]));
  }
  let scaled = isGraphOutput && elemType === OnnxDataType.FLOAT ? output : index.freshName(`${prefix}/scaled`);
  nodes.push(makeNode('Mul', index.freshName(`${prefix}/Mul`), [input, scale], [scaled]));
  if (elemType !== OnnxDataType.FLOAT) {
    const restored = isGraphOutput ? output : index.freshName(`${prefix}/restored`);
    nodes.push(makeNode('Cast', index.freshName(`${prefix}/CastBack`), [scaled], [restored], [intAttribute('to', elemType)]));
    scaled = restored;
  }
  if (isGraphOutput) (edit.nodeForEdit(nodeIndex).output as string[])[0] = source;
  else rewireAllConsumers(edit, index, output, scaled);
  edit.insertAfterProducerOf(output, nodes);
}
