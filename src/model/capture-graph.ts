/**
 * Capture graph: the model's own graph plus one extra output per residual point, `activationName(l)`,
 * holding the stream at the requested token positions as float32 [batch, positions, dModel]. Every original
 * input and output stays, so transformers.js and the KV-cache loop run on it unchanged.
 *
 * Positions are gathered on the sequence axis with ONNX Gather, which accepts negative indices: −1 is the
 * last token of every row, which is the last prompt token under left padding.
 */
import { InvalidInputError } from '../base/errors';
import { OnnxDataType, int64Initializer, intAttribute, tensorValueInfo } from '../formats/onnx';
import type { ModelProto, NodeProto } from '../formats/onnx';
import { activationName } from './activation-names';
import { GraphEdit, GraphIndex, makeNode } from './onnx-graph-utils';
import { findResidualPoints } from './residual-finder';
import type { FindResidualOptions, ResidualPoints } from './residual-finder';

const SEQUENCE_AXIS = 1;
const SKIP_NORM_SUM_OUTPUT = 3;

export interface CaptureGraphOptions extends FindResidualOptions {
  /** Token positions to keep, e.g. [-1]; negative counts from the end of the (left-padded) sequence. */
  positions: number[];
  /** Residual points found beforehand on this very model object (node indices refer to it); found when absent. */
  residual?: ResidualPoints;
}

export interface CaptureGraph {
  model: ModelProto;
  /** activationName(l) for l = 0..L; each output is float32 [batch, positions.length, dModel]. */
  outputNames: string[];
  residual: ResidualPoints;
  insertedNodes: string[];
  /** Original nodes that were changed (a final Skip*Normalization given its sum output). */
  modifiedNodes: string[];
}

export function buildCaptureGraph(model: ModelProto, options: CaptureGraphOptions): CaptureGraph {
  const { positions } = options;
  if (!Array.isArray(positions) || positions.length === 0) throw new InvalidInputError('Capture positions must be a non-empty list of token positions, e.g. [-1].');
  for (const position of positions) {
    if (!Number.isSafeInteger(position)) throw new InvalidInputError(`Capture position ${position} is not an integer; use token indices such as -1 (last token) or 0 (first).`);
  }
  const residual = options.residual ?? findResidualPoints(model, options);
  const index = new GraphIndex(model.graph ?? {});
  const edit = new GraphEdit(index);
  exposePendingSums(edit, residual);

  const positionsName = index.freshName('abliterate/capture/positions');
  edit.addInitializer(int64Initializer(positionsName, [positions.length], positions));
  const outputNames: string[] = [];
  residual.points.forEach((point, layer) => {
    const outputName = activationName(layer);
    if (index.producers.has(outputName) || index.inputs.has(outputName)) throw new InvalidInputError(`The ONNX graph already has a value named \`${outputName}\`; it looks like a capture graph already. Use the original model.`);
    const gathered = residual.elemType === OnnxDataType.FLOAT ? outputName : index.freshName(`abliterate/capture/${layer}/gathered`);
    const nodes: NodeProto[] = [makeNode('Gather', index.freshName(`abliterate/capture/${layer}/Gather`), [point, positionsName], [gathered], [intAttribute('axis', SEQUENCE_AXIS)])];
    // fp16/bf16 graphs: statistics are accumulated in float64 downstream, so hand them float32.
    if (gathered !== outputName) nodes.push(makeNode('Cast', index.freshName(`abliterate/capture/${layer}/Cast`), [gathered], [outputName], [intAttribute('to', OnnxDataType.FLOAT)]));
    edit.insertAfterProducerOf(point, nodes);
    edit.addOutput(tensorValueInfo(outputName, OnnxDataType.FLOAT, ['batch_size', positions.length, residual.dModel ?? 'hidden_size']));
    outputNames.push(outputName);
  });
  return { model: edit.apply(model), outputNames, residual, insertedNodes: edit.insertedNodes, modifiedNodes: edit.modifiedNodes };
}

/** Gives each Skip*Normalization whose sum is not a named value its output 3 (input + skip [+ bias]). */
export function exposePendingSums(edit: GraphEdit, residual: ResidualPoints): void {
  for (const junction of residual.junctions) {
    if (!junction.sumPending) continue;
    const node = edit.nodeForEdit(junction.nodeIndex);
    const outputs = node.output ?? [];
    while (outputs.length < SKIP_NORM_SUM_OUTPUT) outputs.push('');
    outputs[SKIP_NORM_SUM_OUTPUT] = junction.sum;
    node.output = outputs;
    // Later edits place nodes after the producer of the sum: register the new output as produced here.
    edit.index.producers.set(junction.sum, { nodeIndex: junction.nodeIndex, outputIndex: SKIP_NORM_SUM_OUTPUT });
  }
}
