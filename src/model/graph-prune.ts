/**
 * Keeps only what some of a graph's outputs depend on. onnxruntime runs every node of a session's graph on each
 * run, whatever outputs are fetched: a capture that fetches the residual stream alone still pays for the final
 * norm and the LM head — with logits at every position where the graph has no `num_logits_to_keep` input,
 * [batch, sequence, vocab] floats (0.8 GB for a batch of 8 prompts of 100 tokens at Qwen3.5's 248k vocabulary) —
 * unless those nodes are gone from the graph itself.
 *
 * The graph's real inputs all stay declared, used or not, so feeds built from a session's input list still fit.
 * Initializers nothing reads are dropped (with their external-data references, which onnxruntime then never
 * loads), as are value_info entries of values that no longer exist. The input model is not changed.
 */
import { InvalidInputError } from '../base/errors';
import { onnx } from '../formats/onnx';
import type { GraphProto, ModelProto } from '../formats/onnx';
import { outerScopeReads } from './onnx-graph-utils';

export interface PrunedGraph {
  model: ModelProto;
  /** Nodes removed because no kept output depends on them. */
  removedNodes: number;
  /** Initializers removed because no kept node reads them. */
  removedInitializers: number;
}

/** The model with only `outputs` as graph outputs and the nodes and initializers they need. */
export function pruneToOutputs(model: ModelProto, outputs: readonly string[]): PrunedGraph {
  const graph: GraphProto = model.graph ?? {};
  const declared = new Set((graph.output ?? []).map((info) => info.name ?? ''));
  for (const name of outputs) {
    if (!declared.has(name)) throw new InvalidInputError(`${name} is not an output of the graph, so nothing can be kept for it`);
  }
  const nodes = graph.node ?? [];
  const needed = new Set<string>(outputs);
  const keep = new Array<boolean>(nodes.length).fill(false);
  // Node lists are topologically sorted (ONNX requires it), so one backward sweep finds every ancestor.
  for (let index = nodes.length - 1; index >= 0; index--) {
    const node = nodes[index];
    if (!(node.output ?? []).some((name) => name && needed.has(name))) continue;
    keep[index] = true;
    for (const input of node.input ?? []) if (input) needed.add(input);
    for (const input of outerScopeReads(node)) needed.add(input);
  }
  const initializers = graph.initializer ?? [];
  const keptInitializers = initializers.filter((tensor) => needed.has(tensor.name ?? ''));
  const droppedInitializers = new Set(initializers.filter((tensor) => !needed.has(tensor.name ?? '')).map((tensor) => tensor.name ?? ''));
  const keptNodes = nodes.filter((_, index) => keep[index]);
  const existing = new Set<string>([...(graph.input ?? []).map((info) => info.name ?? ''), ...keptInitializers.map((tensor) => tensor.name ?? '')]);
  for (const node of keptNodes) for (const name of node.output ?? []) if (name) existing.add(name);
  const pruned = onnx.GraphProto.create({
    ...graph,
    node: keptNodes,
    initializer: keptInitializers,
    // Older exports also list initializers as inputs: one whose initializer is gone would become a required feed.
    input: (graph.input ?? []).filter((info) => !droppedInitializers.has(info.name ?? '')),
    output: (graph.output ?? []).filter((info) => outputs.includes(info.name ?? '')),
    valueInfo: (graph.valueInfo ?? []).filter((info) => existing.has(info.name ?? '')),
  });
  return {
    model: onnx.ModelProto.create({ ...model, graph: pruned }),
    removedNodes: nodes.length - keptNodes.length,
    removedInitializers: droppedInitializers.size,
  };
}
