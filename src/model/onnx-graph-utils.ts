/**
 * A read-only index over one ONNX graph (who produces and who consumes each value) and the small editing
 * toolkit the capture and hook builders share. Edits never touch the input model: the builders get a shallow
 * copy whose initializers (weights, external-data references) are the very same objects.
 */
import { FLOAT_DATA_TYPES, int64ToNumber, onnx } from '../formats/onnx';
import type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../formats/onnx';

export interface ValueProducer {
  nodeIndex: number;
  outputIndex: number;
}

export interface ValueConsumer {
  nodeIndex: number;
  /** Position in `node.input`, or −1 when a subgraph (If/Scan/Loop body) reads the value from the outer scope. */
  inputIndex: number;
}

const INFER_DEPTH = 64;
const INT64_RESULT_OPS = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin']);
const BOOL_RESULT_OPS = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Not', 'Xor', 'IsNaN', 'IsInf']);
/** Ops whose output type is not their inputs' (quantizers, integer matmuls): inference stops there. */
const OPAQUE_RESULT_OPS = new Set(['QuantizeLinear', 'DynamicQuantizeLinear', 'MatMulInteger', 'ConvInteger', 'If', 'Loop', 'Scan']);

export class GraphIndex {
  readonly nodes: NodeProto[];
  readonly producers = new Map<string, ValueProducer>();
  readonly consumers = new Map<string, ValueConsumer[]>();
  readonly initializers = new Map<string, TensorProto>();
  readonly inputs = new Map<string, ValueInfoProto>();
  readonly outputs: string[];
  private readonly valueInfos = new Map<string, ValueInfoProto>();
  private readonly names = new Set<string>();

  constructor(readonly graph: GraphProto) {
    this.nodes = graph.node ?? [];
    for (const tensor of graph.initializer ?? []) if (tensor.name) this.initializers.set(tensor.name, tensor);
    for (const info of graph.input ?? []) if (info.name && !this.initializers.has(info.name)) this.inputs.set(info.name, info);
    this.outputs = (graph.output ?? []).map((info) => info.name ?? '');
    for (const info of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) if (info.name) this.valueInfos.set(info.name, info);
    for (const name of [...this.initializers.keys(), ...this.inputs.keys()]) this.names.add(name);
    this.nodes.forEach((node, nodeIndex) => {
      if (node.name) this.names.add(node.name);
      (node.output ?? []).forEach((name, outputIndex) => {
        if (!name) return;
        this.producers.set(name, { nodeIndex, outputIndex });
        this.names.add(name);
      });
      (node.input ?? []).forEach((name, inputIndex) => {
        if (name) this.addConsumer(name, { nodeIndex, inputIndex });
      });
      for (const name of outerScopeReads(node)) this.addConsumer(name, { nodeIndex, inputIndex: -1 });
    });
  }

  private addConsumer(name: string, consumer: ValueConsumer): void {
    const list = this.consumers.get(name);
    if (list) list.push(consumer);
    else this.consumers.set(name, [consumer]);
  }

  consumersOf(name: string): ValueConsumer[] {
    return this.consumers.get(name) ?? [];
  }

  producerOf(name: string): (ValueProducer & { node: NodeProto }) | null {
    const producer = this.producers.get(name);
    return producer ? { ...producer, node: this.nodes[producer.nodeIndex] } : null;
  }

  /** Initializers and Constant-node outputs: values that do not depend on any graph input. */
  isConstant(name: string): boolean {
    if (this.initializers.has(name)) return true;
    const producer = this.producerOf(name);
    return producer !== null && producer.node.opType === 'Constant';
  }

  /** Element type from value_info, graph inputs/outputs or initializers; null when the graph does not say. */
  elemType(name: string): number | null {
    const info = this.valueInfos.get(name);
    const fromInfo = info?.type?.tensorType?.elemType;
    if (fromInfo) return fromInfo;
    const tensor = this.initializers.get(name);
    return tensor?.dataType ? tensor.dataType : null;
  }

  /**
   * Element type as the graph states it, else as the ops imply it (a Cast's `to`, a DequantizeLinear's scale, a
   * MatMul's inputs...): exports keep value_info only for some values, and a hook on a float32 branch of a graph
   * whose embedding table is float16 must not cast that branch to float16. Null when nothing says.
   */
  inferElemType(name: string): number | null {
    const memo = new Map<string, number | null>();
    const visit = (value: string, depth: number): number | null => {
      const stated = this.elemType(value);
      if (stated !== null || depth > INFER_DEPTH) return stated;
      if (memo.has(value)) return memo.get(value) as number | null;
      memo.set(value, null);
      const producer = this.producerOf(value);
      let type: number | null = null;
      if (producer) {
        const { node } = producer;
        const op = node.opType ?? '';
        const inputs = node.input ?? [];
        const attribute = (key: string) => (node.attribute ?? []).find((entry) => entry.name === key);
        if (op === 'Cast') type = int64ToNumber(attribute('to')?.i);
        else if (op === 'Constant') type = attribute('value')?.t?.dataType ?? (attribute('value_float') || attribute('value_floats') ? 1 : null);
        else if (op === 'DequantizeLinear') type = visit(inputs[1] ?? '', depth + 1);
        else if (INT64_RESULT_OPS.has(op)) type = 7;
        else if (BOOL_RESULT_OPS.has(op)) type = 9;
        else if (op === 'Where') type = visit(inputs[1] ?? '', depth + 1);
        else if (!OPAQUE_RESULT_OPS.has(op)) {
          for (const input of inputs) {
            type = input ? visit(input, depth + 1) : null;
            if (type !== null) break;
          }
        }
      }
      memo.set(value, type);
      return type;
    };
    return visit(name, 0);
  }

  /** Static dims (numbers) or symbolic names (strings); null when unknown. */
  dims(name: string): (number | string)[] | null {
    const tensor = this.initializers.get(name);
    if (tensor) return (tensor.dims ?? []).map((dim) => int64ToNumber(dim));
    const shape = this.valueInfos.get(name)?.type?.tensorType?.shape;
    if (!shape) return null;
    return (shape.dim ?? []).map((dim) => (dim.dimParam ? dim.dimParam : dim.dimValue != null ? int64ToNumber(dim.dimValue) : '?'));
  }

  isFloat(name: string): boolean {
    const type = this.elemType(name);
    return type !== null && FLOAT_DATA_TYPES.has(type);
  }

  /** A name that no value, initializer or node in the graph uses yet; reserved once returned. */
  freshName(base: string): string {
    let name = base;
    for (let suffix = 1; this.names.has(name); suffix++) name = `${base}_${suffix}`;
    this.names.add(name);
    return name;
  }

  /**
   * Walks producers backwards from `start`, never expanding nodes in `stopNodes` nor values in `stopValues`.
   * Returns the nodes reached and the graph inputs reached (initializers are leaves and not reported).
   */
  ancestors(start: string, stopNodes: ReadonlySet<number>, stopValues: ReadonlySet<string>): { nodes: Set<number>; graphInputs: Set<string>; hitStop: boolean } {
    const nodes = new Set<number>();
    const graphInputs = new Set<string>();
    let hitStop = false;
    const pending = [start];
    const seen = new Set<string>();
    while (pending.length > 0) {
      const value = pending.pop() as string;
      if (!value || seen.has(value)) continue;
      seen.add(value);
      if (stopValues.has(value)) {
        hitStop = true;
        continue;
      }
      if (this.inputs.has(value)) {
        graphInputs.add(value);
        continue;
      }
      const producer = this.producers.get(value);
      if (!producer) continue;
      if (stopNodes.has(producer.nodeIndex)) {
        hitStop = true;
        continue;
      }
      if (nodes.has(producer.nodeIndex)) continue;
      nodes.add(producer.nodeIndex);
      const node = this.nodes[producer.nodeIndex];
      for (const input of node.input ?? []) pending.push(input);
      for (const input of outerScopeReads(node)) pending.push(input);
    }
    return { nodes, graphInputs, hitStop };
  }
}

/** Names a node's subgraphs read from the enclosing scope (ONNX lets If/Loop/Scan bodies do that). */
export function outerScopeReads(node: NodeProto): Set<string> {
  const reads = new Set<string>();
  for (const attribute of node.attribute ?? []) {
    for (const subgraph of [attribute.g, ...(attribute.graphs ?? [])]) if (subgraph) collectOuterReads(subgraph, reads);
  }
  return reads;
}

function collectOuterReads(graph: GraphProto, reads: Set<string>): void {
  const local = new Set<string>();
  for (const info of graph.input ?? []) if (info.name) local.add(info.name);
  for (const tensor of graph.initializer ?? []) if (tensor.name) local.add(tensor.name);
  for (const node of graph.node ?? []) for (const output of node.output ?? []) if (output) local.add(output);
  for (const node of graph.node ?? []) {
    for (const input of node.input ?? []) if (input && !local.has(input)) reads.add(input);
    for (const inner of outerScopeReads(node)) if (!local.has(inner)) reads.add(inner);
  }
  for (const output of graph.output ?? []) if (output.name && !local.has(output.name)) reads.add(output.name);
}

/** Renames every outer-scope read of `from` inside a node's subgraphs (deep-copies that node first). */
export function renameOuterScopeReads(node: NodeProto, from: string, to: string): NodeProto {
  const copy = onnx.NodeProto.decode(onnx.NodeProto.encode(node).finish());
  for (const attribute of copy.attribute) for (const subgraph of [attribute.g, ...(attribute.graphs ?? [])]) if (subgraph) renameInSubgraph(subgraph, from, to);
  return copy;
}

function renameInSubgraph(graph: GraphProto, from: string, to: string): void {
  const shadows = (graph.input ?? []).some((info) => info.name === from) || (graph.initializer ?? []).some((tensor) => tensor.name === from) || (graph.node ?? []).some((node) => (node.output ?? []).includes(from));
  if (shadows) return;
  for (const node of graph.node ?? []) {
    node.input = (node.input ?? []).map((name) => (name === from ? to : name));
    for (const attribute of node.attribute ?? []) for (const subgraph of [attribute.g, ...(attribute.graphs ?? [])]) if (subgraph) renameInSubgraph(subgraph, from, to);
  }
  for (const output of graph.output ?? []) if (output.name === from) output.name = to;
}

/** A copy of a node whose input/output lists can be edited without touching the original. */
export function editableNode(node: NodeProto): NodeProto {
  return onnx.NodeProto.create({ ...node, input: [...(node.input ?? [])], output: [...(node.output ?? [])], attribute: [...(node.attribute ?? [])] });
}

export function makeNode(opType: string, name: string, inputs: string[], outputs: string[], attributes: NodeProto['attribute'] = []): NodeProto {
  return onnx.NodeProto.create({ opType, name, input: inputs, output: outputs, attribute: attributes ?? [], domain: '' });
}

/**
 * Collects the edits of one builder and applies them to a shallow copy of the model: replaced nodes, nodes
 * inserted right after a given node (keeping the node list topologically sorted), new initializers and
 * outputs. The original model and its initializer objects are left as they were.
 */
export class GraphEdit {
  private readonly replaced = new Map<number, NodeProto>();
  private readonly after = new Map<number, NodeProto[]>();
  private readonly atStart: NodeProto[] = [];
  /** Where values made by inserted nodes appear: the index of the original node they follow, −1 = first. */
  private readonly insertedAt = new Map<string, number>();
  private readonly newInitializers: TensorProto[] = [];
  private readonly newOutputs: ValueInfoProto[] = [];
  private readonly newInputs: ValueInfoProto[] = [];
  readonly insertedNodes: string[] = [];
  readonly modifiedNodes: string[] = [];

  constructor(readonly index: GraphIndex) {}

  /** The node at `nodeIndex` as it will be written, made editable on first use. */
  nodeForEdit(nodeIndex: number): NodeProto {
    let node = this.replaced.get(nodeIndex);
    if (!node) {
      node = editableNode(this.index.nodes[nodeIndex]);
      this.replaced.set(nodeIndex, node);
      this.modifiedNodes.push(node.name || `#${nodeIndex} ${node.opType}`);
    }
    return node;
  }

  replaceNode(nodeIndex: number, node: NodeProto): void {
    if (!this.replaced.has(nodeIndex)) this.modifiedNodes.push(node.name || `#${nodeIndex} ${node.opType}`);
    this.replaced.set(nodeIndex, node);
  }

  /**
   * Inserts nodes right after the producer of `value` (or first, when a graph input or initializer). A value
   * made by nodes inserted earlier counts as produced where those nodes sit, so chains stay in order.
   */
  insertAfterProducerOf(value: string, nodes: NodeProto[]): void {
    const position = this.index.producers.get(value)?.nodeIndex ?? this.insertedAt.get(value) ?? -1;
    if (position >= 0) {
      const list = this.after.get(position) ?? [];
      list.push(...nodes);
      this.after.set(position, list);
    } else this.atStart.push(...nodes);
    for (const node of nodes) {
      this.insertedNodes.push(node.name ?? '');
      for (const output of node.output ?? []) if (output) this.insertedAt.set(output, position);
    }
  }

  addInitializer(tensor: TensorProto): void {
    this.newInitializers.push(tensor);
  }

  addOutput(info: ValueInfoProto): void {
    this.newOutputs.push(info);
  }

  addInput(info: ValueInfoProto): void {
    this.newInputs.push(info);
  }

  apply(model: ModelProto): ModelProto {
    const graph = model.graph as GraphProto;
    const nodes: NodeProto[] = [...this.atStart];
    this.index.nodes.forEach((node, nodeIndex) => {
      nodes.push(this.replaced.get(nodeIndex) ?? node);
      nodes.push(...(this.after.get(nodeIndex) ?? []));
    });
    const newGraph = onnx.GraphProto.create({
      ...graph,
      node: nodes,
      initializer: [...(graph.initializer ?? []), ...this.newInitializers],
      input: [...(graph.input ?? []), ...this.newInputs],
      output: [...(graph.output ?? []), ...this.newOutputs],
      valueInfo: [...(graph.valueInfo ?? [])],
    });
    return onnx.ModelProto.create({ ...model, graph: newGraph });
  }
}
