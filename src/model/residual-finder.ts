/**
 * Finds the residual stream of a decoder-only transformer in its ONNX graph by structure, not by names.
 *
 * The stream is a chain of *residual sums*: nodes that add a branch to the stream, where the branch itself is
 * computed from the stream (norm → attention / MLP → out-projection). Two kinds of sum occur:
 * - a plain `Add` (torch.onnx / optimum exports, the project's demo builder);
 * - `SkipSimplifiedLayerNormalization` / `SkipLayerNormalization` (com.microsoft, onnxruntime-genai builder),
 *   which adds `input + skip` and normalizes; output 3 is that sum (ORT contrib-op spec:
 *   `input_skip_bias_sum`). The final norm often does not name output 3; the builders then request it.
 *
 * The chain starts at the embedding output (a Gather over a [vocab, d] table) or at a float graph input such as
 * Qwen3.5's `inputs_embeds`; among candidates, the one that starts the longest chain wins (Qwen3.5's
 * `past_conv.*` inputs are rank-3 floats too, but nothing sums onto them). Each sum's branch is classified as a
 * token mixer (it contains attention, Softmax, If/Scan/Loop, or reads graph inputs other than the stream:
 * KV cache, mask, positions) or an MLP (only the stream and constants). Blocks are (mixer, MLP) pairs, so
 * point l (HF `hidden_states[l]`, docs/definitions.md) is the sum closing block l−1, and the last point is the sum that
 * feeds the final norm. Linear-attention layers inside If/Scan are token mixers like any other: the stream
 * itself stays in the main graph.
 */
import { UnsupportedModelError } from '../base/errors';
import { FLOAT_DATA_TYPES, OnnxDataType, int64ToNumber } from '../formats/onnx';
import type { ModelProto, NodeProto } from '../formats/onnx';
import { GraphIndex } from './onnx-graph-utils';

export type GraphStyle = 'torch' | 'genai' | 'demo';
export type JunctionKind = 'mixer' | 'mlp';

export interface ResidualJunction {
  kind: JunctionKind;
  /** Block (layer) index: the junction belongs to block `block`, 0-based. */
  block: number;
  nodeIndex: number;
  nodeName: string;
  opType: string;
  /** Value the junction reads as the incoming stream (may be a Cast of the previous point). */
  streamInput: string;
  /** The branch added to the stream and the input slot it occupies on the junction node. */
  branchInput: string;
  branchInputIndex: number;
  /** The stream after this junction; for a norm without output 3 this is the name the builders will give it. */
  sum: string;
  /** True when `sum` is not in the graph yet (a Skip*Normalization without output 3). */
  sumPending: boolean;
}

export interface ResidualPoints {
  style: GraphStyle;
  /** True when point 0 is a graph input (`inputs_embeds`) rather than an in-graph embedding Gather. */
  inputsEmbeds: boolean;
  /** L+1 value names: 0 = embedding output, l = output of block l−1, L = last block's output before the final norm. */
  points: string[];
  /** 2·L junctions, mixer then MLP for every block. */
  junctions: ResidualJunction[];
  /** Hidden size when the graph states it (embedding table or input shape), else null. */
  dModel: number | null;
  /** ONNX element type of the stream (1 = float32, 10 = float16, 16 = bfloat16). */
  elemType: number;
  /** What the finder saw, in words, for logs and error reports. */
  notes: string[];
}

const SKIP_NORM_OPS = new Set(['SkipSimplifiedLayerNormalization', 'SkipLayerNormalization']);
const SKIP_NORM_SUM_OUTPUT = 3;
const TOKEN_MIXER_OPS = new Set([
  'Softmax', 'Attention', 'MultiHeadAttention', 'GroupQueryAttention', 'PackedAttention', 'PackedMultiHeadAttention',
  'PagedAttention', 'SparseAttention', 'DecoderMaskedMultiHeadAttention', 'If', 'Scan', 'Loop', 'Conv',
]);
const STREAM_ALIAS_OPS = new Set(['Cast', 'Identity']);
const MIN_JUNCTIONS = 2;

interface Candidate {
  start: string;
  inputsEmbeds: boolean;
  junctions: ResidualJunction[];
}

export interface FindResidualOptions {
  /** When given (from config.json), the number of blocks found must equal it. */
  numLayers?: number;
}

export function findResidualPoints(model: ModelProto, options: FindResidualOptions = {}): ResidualPoints {
  if (!model.graph) throw new UnsupportedModelError('The ONNX model has no graph, so it has no residual stream to find.');
  const index = new GraphIndex(model.graph);
  const notes: string[] = [];
  const candidates = streamStartCandidates(index);
  if (candidates.length === 0) {
    throw new UnsupportedModelError(missingMessage(options.numLayers, 'no embedding output found: looked for a Gather over a [vocab, d] initializer indexed by an integer graph input, and for a float [batch, sequence, d] graph input (inputs_embeds).'), { missingPoints: 'all' });
  }
  let best: Candidate | null = null;
  for (const candidate of candidates) {
    const junctions = followChain(index, candidate.start);
    if (!best || junctions.length > best.junctions.length) best = { ...candidate, junctions };
  }
  const chosen = best as Candidate;
  const junctions = chosen.junctions;
  if (junctions.length < MIN_JUNCTIONS) {
    throw new UnsupportedModelError(
      missingMessage(options.numLayers, `found the embedding output \`${chosen.start}\` but no chain of residual sums after it (looked for Add nodes and SkipSimplifiedLayerNormalization/SkipLayerNormalization whose other input is computed from the stream).`),
      { missingPoints: 'all but 0', start: chosen.start },
    );
  }
  const pattern = junctions.map((junction) => (junction.kind === 'mixer' ? 'A' : 'M')).join('');
  const wellFormed = /^(AM)+$/.test(pattern);
  if (!wellFormed) {
    throw new UnsupportedModelError(
      `The residual sums after \`${chosen.start}\` do not alternate token-mixer / MLP (pattern ${pattern}, A = attention-like branch, M = MLP branch), so block outputs cannot be told apart; parallel-attention and other block layouts are not supported.`,
      { pattern },
    );
  }
  const numLayers = junctions.length / 2;
  junctions.forEach((junction, position) => (junction.block = Math.floor(position / 2)));
  if (options.numLayers !== undefined && options.numLayers !== numLayers) {
    const missing = Array.from({ length: Math.max(0, options.numLayers - numLayers) }, (_, k) => numLayers + 1 + k);
    throw new UnsupportedModelError(
      `The ONNX graph has ${numLayers} residual blocks but the config says ${options.numLayers}; ` + (missing.length > 0 ? `residual points ${missing.join(', ')} are missing.` : 'the graph has more blocks than the config.'),
      { found: numLayers, expected: options.numLayers, missingPoints: missing },
    );
  }
  const points = [canonicalStart(index, junctions[0].streamInput), ...junctions.filter((junction) => junction.kind === 'mlp').map((junction) => junction.sum)];
  const style = graphStyle(model, junctions);
  const elemType = index.elemType(chosen.start) ?? streamTypeFromEmbedding(index, chosen.start) ?? index.elemType(points[0]) ?? OnnxDataType.FLOAT;
  notes.push(`${style} graph: stream starts at ${chosen.inputsEmbeds ? 'graph input' : 'embedding output'} \`${points[0]}\`, ${numLayers} blocks, ${junctions.length} residual sums (${junctions[0].opType}).`);
  const pending = junctions.filter((junction) => junction.sumPending);
  if (pending.length > 0) notes.push(`the last block's sum is not a named value; the builders request output ${SKIP_NORM_SUM_OUTPUT} of ${pending.map((junction) => `\`${junction.nodeName}\``).join(', ')}.`);
  return { style, inputsEmbeds: chosen.inputsEmbeds, points, junctions, dModel: hiddenSize(index, chosen.start), elemType, notes };
}

function missingMessage(numLayers: number | undefined, what: string): string {
  const count = numLayers !== undefined ? `all ${numLayers + 1} residual points (0..${numLayers})` : 'the residual points';
  return `Could not find ${count} in the ONNX graph: ${what}`;
}

/** Gather outputs over a 2-D float table indexed by a graph-input-derived index, then rank-3 float inputs. */
function streamStartCandidates(index: GraphIndex): { start: string; inputsEmbeds: boolean }[] {
  const candidates: { start: string; inputsEmbeds: boolean }[] = [];
  index.nodes.forEach((node) => {
    const quantizedGather = node.opType === 'GatherBlockQuantized' && node.domain === 'com.microsoft'; // q4 embedding tables
    if (!quantizedGather && (node.opType !== 'Gather' || (node.domain ?? '') !== '')) return;
    const [table, indices] = node.input ?? [];
    const output = (node.output ?? [])[0];
    if (!table || !indices || !output) return;
    const tableDims = index.dims(table);
    if (!index.initializers.has(table) && !(index.producerOf(table) && index.ancestors(table, new Set(), new Set()).graphInputs.size === 0)) return;
    if (tableDims && tableDims.length !== 2 && !quantizedGather) return;
    if (index.ancestors(indices, new Set(), new Set()).graphInputs.size === 0) return;
    candidates.push({ start: output, inputsEmbeds: false });
  });
  for (const [name, info] of index.inputs) {
    const tensor = info.type?.tensorType;
    if (!tensor || !index.isFloat(name) || (tensor.shape?.dim ?? []).length !== 3) continue;
    candidates.push({ start: name, inputsEmbeds: true });
  }
  return candidates;
}

/** The stream value plus every Cast/Identity copy of it (the torch RMSNorm reads the stream through a Cast). */
function aliasesOf(index: GraphIndex, value: string): string[] {
  const aliases = [value];
  for (let k = 0; k < aliases.length; k++) {
    for (const consumer of index.consumersOf(aliases[k])) {
      if (consumer.inputIndex < 0) continue;
      const node = index.nodes[consumer.nodeIndex];
      if (isRankOneRemoval(index, node, aliases[k]) || isConstantAddition(index, node, aliases[k])) {
        const output = (node.output ?? [])[0];
        if (output && !aliases.includes(output)) aliases.push(output);
        continue;
      }
      if (!STREAM_ALIAS_OPS.has(node.opType ?? '') || (node.domain ?? '') !== '') continue;
      const castTo = node.opType === 'Cast' ? int64ToNumber((node.attribute ?? []).find((attribute) => attribute.name === 'to')?.i) : null;
      const output = (node.output ?? [])[0];
      if (output && (castTo === null || FLOAT_DATA_TYPES.has(castTo)) && !aliases.includes(output)) aliases.push(output);
    }
  }
  return aliases;
}

/**
 * x − (x·C₁)·C₂ with constant C₁, C₂: the hook graph's projection x − α r(r·x). Seen through, so residual
 * points can be found (and captured) in a hook graph: the ablated embedding is then point 0, as in an edited model.
 */
function isRankOneRemoval(index: GraphIndex, node: NodeProto, alias: string): boolean {
  if (node.opType !== 'Sub' || (node.domain ?? '') !== '' || (node.input ?? [])[0] !== alias) return false;
  const scaled = index.producerOf((node.input ?? [])[1] ?? '');
  if (!scaled || scaled.node.opType !== 'Mul') return false;
  const [dotValue, scaleValue] = scaled.node.input ?? [];
  const dot = index.producerOf(dotValue ?? '');
  if (!dot || dot.node.opType !== 'MatMul' || !index.isConstant(scaleValue ?? '')) return false;
  const [dotInput, dotDirection] = dot.node.input ?? [];
  return dotInput === alias && index.isConstant(dotDirection ?? '');
}

/** x + C with constant C: the steering graph's x + w·r at the embedding output, seen through like the hook. */
function isConstantAddition(index: GraphIndex, node: NodeProto, alias: string): boolean {
  if (node.opType !== 'Add' || (node.domain ?? '') !== '') return false;
  const [a, b] = node.input ?? [];
  return (a === alias && index.isConstant(b ?? '')) || (b === alias && index.isConstant(a ?? ''));
}

function followChain(index: GraphIndex, start: string): ResidualJunction[] {
  const junctions: ResidualJunction[] = [];
  const visited = new Set<number>();
  let stream = start;
  for (;;) {
    const next = nextJunction(index, stream);
    if (!next || visited.has(next.nodeIndex)) break;
    visited.add(next.nodeIndex);
    junctions.push(next);
    if (next.sumPending) break;
    stream = next.sum;
  }
  return junctions;
}

function nextJunction(index: GraphIndex, stream: string): ResidualJunction | null {
  const aliases = aliasesOf(index, stream);
  const aliasSet = new Set(aliases);
  const streamProducer = index.producers.get(stream);
  const stopNodes = new Set(streamProducer ? [streamProducer.nodeIndex] : []);
  const stopValues = new Set([stream]);
  const found: ResidualJunction[] = [];
  const seenNodes = new Set<number>();
  for (const alias of aliases) {
    for (const consumer of index.consumersOf(alias)) {
      if (consumer.inputIndex < 0 || seenNodes.has(consumer.nodeIndex)) continue;
      seenNodes.add(consumer.nodeIndex);
      const node = index.nodes[consumer.nodeIndex];
      const slots = junctionSlots(node);
      if (!slots) continue;
      const inputs = node.input ?? [];
      const streamSlot = slots.find((slot) => aliasSet.has(inputs[slot]));
      if (streamSlot === undefined) continue;
      const branchSlot = slots.find((slot) => slot !== streamSlot) as number;
      const branch = inputs[branchSlot];
      if (!branch || aliasSet.has(branch) || index.isConstant(branch)) continue;
      const branchAncestry = index.ancestors(branch, stopNodes, stopValues);
      if (!branchAncestry.hitStop) continue;
      const mixer = [...branchAncestry.nodes].some((nodeIndex) => TOKEN_MIXER_OPS.has(index.nodes[nodeIndex].opType ?? '')) || branchAncestry.graphInputs.size > 0;
      const { sum, pending } = junctionSum(index, node, consumer.nodeIndex);
      found.push({
        kind: mixer ? 'mixer' : 'mlp',
        block: -1,
        nodeIndex: consumer.nodeIndex,
        nodeName: node.name || `#${consumer.nodeIndex} ${node.opType}`,
        opType: node.opType ?? '',
        streamInput: inputs[streamSlot],
        branchInput: branch,
        branchInputIndex: branchSlot,
        sum,
        sumPending: pending,
      });
    }
  }
  if (found.length > 1) {
    throw new UnsupportedModelError(`The residual stream \`${stream}\` flows into ${found.length} candidate residual sums (${found.map((junction) => `\`${junction.nodeName}\``).join(', ')}); the graph layout is ambiguous.`);
  }
  return found[0] ?? null;
}

/** Input slots summed by a residual-sum node, or null when the node cannot be one. */
function junctionSlots(node: NodeProto): number[] | null {
  const domain = node.domain ?? '';
  if (node.opType === 'Add' && domain === '' && (node.input ?? []).length === 2) return [0, 1];
  if (SKIP_NORM_OPS.has(node.opType ?? '') && (domain === 'com.microsoft' || domain === '')) return [0, 1];
  return null;
}

function junctionSum(index: GraphIndex, node: NodeProto, nodeIndex: number): { sum: string; pending: boolean } {
  if (node.opType === 'Add') return { sum: (node.output ?? [])[0], pending: false };
  const named = (node.output ?? [])[SKIP_NORM_SUM_OUTPUT];
  if (named) return { sum: named, pending: false };
  const base = node.name ? `${node.name}/abliterate_input_skip_sum` : `abliterate/skip_norm_${nodeIndex}/input_skip_sum`;
  return { sum: index.freshName(base), pending: true };
}

/** Point 0 as HF defines it: the stream block 0 reads, not a Cast copy its norm made of it. */
function canonicalStart(index: GraphIndex, start: string): string {
  let value = start;
  for (;;) {
    const producer = index.producerOf(value);
    if (!producer || !STREAM_ALIAS_OPS.has(producer.node.opType ?? '')) return value;
    value = (producer.node.input ?? [])[0];
  }
}

function hiddenSize(index: GraphIndex, start: string): number | null {
  const startDims = index.dims(start);
  const last = startDims?.[startDims.length - 1];
  if (typeof last === 'number' && last > 0) return last;
  const producer = index.producerOf(start);
  if (producer?.node.opType === 'Gather') {
    const tableDims = index.dims((producer.node.input ?? [])[0]);
    const width = tableDims?.[1];
    if (typeof width === 'number' && width > 0) return width;
  }
  return null;
}

function streamTypeFromEmbedding(index: GraphIndex, start: string): number | null {
  const producer = index.producerOf(start);
  if (producer?.node.opType !== 'Gather') return null;
  return index.elemType((producer.node.input ?? [])[0]);
}

function graphStyle(model: ModelProto, junctions: ResidualJunction[]): GraphStyle {
  if (junctions.some((junction) => SKIP_NORM_OPS.has(junction.opType))) return 'genai';
  // The demo builder signs its graphs; torch and optimum exports say "pytorch".
  return /abliterat/i.test(model.producerName ?? '') ? 'demo' : 'torch';
}
