/**
 * Steering graph: additive steering x ← x + w·r on the residual stream at hidden-state index l, at every
 * position (docs/definitions.md "Additive steering"), by graph surgery on the model's own ONNX, for preview and
 * evaluation beside the ablation. Index 0 is the embedding output; index l ≥ 1 is the output of block l−1.
 *
 * Where the vector goes: for l = 0 it is added to the embedding output and every reader is rewired to the sum.
 * For l ≥ 1 it is added to the *branch* of the residual sum that closes block l−1 (the MLP junction), not to
 * the sum's output: a fused Skip*Normalization (onnxruntime-genai exports) computes the next block's normed
 * input inside the same node, so only a change of its input reaches both outputs. (stream + branch + w·r is the
 * same sum either way.) With KV cache the cached positions were steered when they were computed, so generation
 * sees what one full forward pass with the added vector would.
 *
 * w·r is a constant of the graph (an initializer), not a graph input: generation runs through transformers.js,
 * which feeds a decoder only the inputs it knows. A steering setting is therefore one graph, built in
 * milliseconds from the decoded base graph.
 *
 * A weight export cannot express this (a constant added at every position is not a linear map of the input, so
 * no orthogonalization or bias change of the out-projections equals it for all inputs without a bias the
 * architecture lacks): steering is preview/evaluation only, and the export refuses it (STEERING_EXPORT_REFUSAL).
 */
import { InvalidInputError } from '../base/errors';
import { OnnxDataType, float32Initializer, intAttribute } from '../formats/onnx';
import type { ModelProto, NodeProto } from '../formats/onnx';
import { GraphEdit, GraphIndex, makeNode } from './onnx-graph-utils';
import { rewireAllConsumers } from './hook-graph';
import { findResidualPoints } from './residual-finder';
import type { FindResidualOptions, ResidualPoints } from './residual-finder';

/** Why an export refuses steering, in words for the CLI and the UI. */
export const STEERING_EXPORT_REFUSAL =
  'Additive steering adds a constant vector to the residual stream at every position; no edit of the stored weights ' +
  '(Llama-style out-projections have no bias to carry it) reproduces that, so steering is for preview and evaluation only. ' +
  'Export an ablation instead.';

export interface SteeringOptions extends FindResidualOptions {
  /** Hidden-state index l in 0..L (0 = embedding output, l = output of block l−1). */
  layer: number;
  /** Direction r, [dModel]; used as given (normalize it first for w to be a length). */
  direction: Float32Array;
  /** w: the multiple of r added at every position; may be negative. */
  weight: number;
  /** Residual points found beforehand on this very model object; found when absent. */
  residual?: ResidualPoints;
}

export interface SteeringGraph {
  model: ModelProto;
  /** The value w·r is added to (the embedding output, or the branch of the closing MLP junction). */
  site: string;
  insertedNodes: string[];
  residual: ResidualPoints;
}

export function buildSteeringGraph(model: ModelProto, options: SteeringOptions): SteeringGraph {
  const residual = options.residual ?? findResidualPoints(model, options);
  const numLayers = residual.points.length - 1;
  const { layer, direction, weight } = options;
  if (!Number.isInteger(layer) || layer < 0 || layer > numLayers) throw new InvalidInputError(`The steering layer ${layer} is not a hidden-state index within 0..${numLayers}.`);
  if (!(direction instanceof Float32Array)) throw new InvalidInputError('The steering direction must be a Float32Array.');
  if (residual.dModel !== null && direction.length !== residual.dModel) throw new InvalidInputError(`The steering direction has ${direction.length} values but the model's hidden size is ${residual.dModel}.`);
  if (!direction.every(Number.isFinite)) throw new InvalidInputError('The steering direction contains a non-finite value (NaN or infinity).');
  if (!Number.isFinite(weight)) throw new InvalidInputError(`The steering weight must be a finite number, got ${weight}.`);

  const index = new GraphIndex(model.graph ?? {});
  const edit = new GraphEdit(index);
  const vectorName = index.freshName('abliterate/steer/vector');
  edit.addInitializer(float32Initializer(vectorName, [direction.length], Array.from(direction, (value) => weight * value))); // [dModel]: w·r
  let site: string;
  if (layer === 0) {
    site = residual.points[0];
    rewireAllConsumers(edit, index, site, insertAddition(edit, index, site, residual.elemType, vectorName));
  } else {
    const junction = residual.junctions.find((entry) => entry.kind === 'mlp' && entry.block === layer - 1);
    if (!junction) throw new InvalidInputError(`No residual sum closes block ${layer - 1} in this graph.`);
    site = junction.branchInput;
    const steered = insertAddition(edit, index, site, residual.elemType, vectorName);
    (edit.nodeForEdit(junction.nodeIndex).input as string[])[junction.branchInputIndex] = steered;
  }
  return { model: edit.apply(model), site, insertedNodes: edit.insertedNodes, residual };
}

/** Inserts (Cast →) value + w·r (→ Cast back) after `value`'s producer; returns the steered value's name. */
function insertAddition(edit: GraphEdit, index: GraphIndex, value: string, streamType: number, vectorName: string): string {
  const elemType = index.elemType(value) ?? streamType;
  const prefix = 'abliterate/steer';
  const nodes: NodeProto[] = [];
  let input = value;
  if (elemType !== OnnxDataType.FLOAT) {
    input = index.freshName(`${prefix}/float32`);
    nodes.push(makeNode('Cast', index.freshName(`${prefix}/CastToFloat`), [value], [input], [intAttribute('to', OnnxDataType.FLOAT)]));
  }
  const added = index.freshName(`${prefix}/added`); // [..., dModel]: x + w·r, broadcast over batch and positions
  nodes.push(makeNode('Add', index.freshName(`${prefix}/Add`), [input, vectorName], [added]));
  let output = added;
  if (elemType !== OnnxDataType.FLOAT) {
    output = index.freshName(`${prefix}/restored`);
    nodes.push(makeNode('Cast', index.freshName(`${prefix}/CastBack`), [added], [output], [intAttribute('to', elemType)]));
  }
  edit.insertAfterProducerOf(value, nodes);
  return output;
}
