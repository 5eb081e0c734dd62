/**
 * The figures of the memory preflight (core/memory-preflight.ts) for a model folder's graph, read without loading
 * any weight: the bytes of the graph file and of the external data it names (engine/external-data.ts), the
 * largest initializer (from its dims and type, or its external-data length), the matmul weights' precision, and the KV cache the graph's `past_key_values`
 * inputs will hold for `batch` sequences of `tokens` tokens.
 */
import { memoryVerdict, type BackendMemoryLimits, type MemoryNeeds, type MemoryVerdict, type WeightPrecision } from '../core/memory-preflight';
import { InvalidInputError } from '../base/errors';
import { decodeOnnxModel, externalTensorRange, int64ToNumber, onnx, OnnxDataType, type ModelProto, type TensorProto } from '../formats/onnx';
import { readModelConfig, type ModelConfig } from '../formats/hf-folder';
import { findOnnxGraphFiles } from '../formats/onnx-files';
import type { ModelFolder } from '../ports/folder';
import { checkExternalData, externalDataBytes } from './external-data';

const ELEMENT_BYTES: Record<number, number> = {
  [OnnxDataType.FLOAT]: 4,
  [OnnxDataType.FLOAT16]: 2,
  [OnnxDataType.BFLOAT16]: 2,
  [OnnxDataType.DOUBLE]: 8,
  [OnnxDataType.INT8]: 1,
  [OnnxDataType.UINT8]: 1,
  [OnnxDataType.INT32]: 4,
  [OnnxDataType.INT64]: 8,
};

/** Every initializer of the graph and its subgraphs, and every node (for MatMulNBits' bit width). */
function walk(model: ModelProto): { initializers: TensorProto[]; nodes: NonNullable<NonNullable<ModelProto['graph']>['node']> } {
  const initializers: TensorProto[] = [];
  const nodes: NonNullable<NonNullable<ModelProto['graph']>['node']> = [];
  const visit = (graph: ModelProto['graph']) => {
    initializers.push(...(graph?.initializer ?? []));
    for (const node of graph?.node ?? []) {
      nodes.push(node);
      for (const attribute of node.attribute ?? []) {
        if (attribute.g) visit(attribute.g as ModelProto['graph']);
        for (const sub of attribute.graphs ?? []) visit(sub as ModelProto['graph']);
      }
    }
  };
  visit(model.graph);
  return { initializers, nodes };
}

function tensorBytes(graphFile: string, tensor: TensorProto): number {
  if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const range = externalTensorRange(graphFile, tensor);
    if (range.length !== null) return range.length;
  }
  if (tensor.rawData && tensor.rawData.byteLength > 0) return tensor.rawData.byteLength;
  const count = (tensor.dims ?? []).reduce<number>((product, dim) => product * int64ToNumber(dim), 1);
  return count * (ELEMENT_BYTES[tensor.dataType ?? 0] ?? 4);
}

/**
 * The precision of the matmul weights, which hold most parameters (an embedding table is often kept in float
 * even in 4-bit exports, so the byte-dominant type would mislead): MatMulNBits' bit width, QDQ int8, or else the
 * float type holding most initializer bytes.
 */
function precisionOf(bytesByType: Map<number, number>, nodes: ReturnType<typeof walk>['nodes']): WeightPrecision {
  const bits = nodes.filter((node) => node.opType === 'MatMulNBits').map((node) => int64ToNumber((node.attribute ?? []).find((attribute) => attribute.name === 'bits')?.i ?? 4));
  if (bits.length > 0) return bits.includes(4) ? 'q4' : 'q8';
  if (nodes.some((node) => node.opType === 'DequantizeLinear')) return 'q8';
  const half = (bytesByType.get(OnnxDataType.FLOAT16) ?? 0) + (bytesByType.get(OnnxDataType.BFLOAT16) ?? 0);
  return half > (bytesByType.get(OnnxDataType.FLOAT) ?? 0) ? 'fp16' : 'fp32';
}

/** Keys and values: 2 × attention layers × KV heads × head size × tokens × batch, in the cache's element type. */
function kvCacheBytes(model: ModelProto, config: ModelConfig, tokens: number, batch: number): number {
  const text = config.text;
  const heads = typeof text.num_attention_heads === 'number' ? text.num_attention_heads : 1;
  const kvHeads = typeof text.num_key_value_heads === 'number' ? text.num_key_value_heads : heads;
  const headDim = typeof text.head_dim === 'number' ? text.head_dim : config.hiddenSize / heads;
  // Linear-attention blocks (Qwen3.5) keep a fixed-size state instead of a growing cache.
  const attentionLayers = config.layerTypes ? config.layerTypes.filter((type) => type !== 'linear_attention').length : config.numLayers;
  const pastKey = (model.graph?.input ?? []).find((input) => /^past_key_values\.\d+\.key$/.test(input.name ?? ''));
  const elementBytes = ELEMENT_BYTES[pastKey?.type?.tensorType?.elemType ?? OnnxDataType.FLOAT] ?? 4;
  return 2 * attentionLayers * kvHeads * headDim * tokens * batch * elementBytes;
}

export interface MemoryEstimateOptions {
  /** Sequences run together (the evaluation's batch). */
  batch: number;
  /** Prompt plus generated tokens of the longest sequence. */
  tokens: number;
}

export async function estimateMemoryNeeds(folder: ModelFolder, graphPath: string, model: ModelProto, config: ModelConfig, options: MemoryEstimateOptions): Promise<MemoryNeeds> {
  const graphFile = `${folder.name}/${graphPath}`;
  const external = await checkExternalData(folder, graphPath, model);
  const graphSource = await folder.open(graphPath);
  const { initializers, nodes } = walk(model);
  const bytesByType = new Map<number, number>();
  let largestTensorBytes = 0;
  let largestTensorName = '';
  for (const tensor of initializers) {
    const bytes = tensorBytes(graphFile, tensor);
    bytesByType.set(tensor.dataType ?? 0, (bytesByType.get(tensor.dataType ?? 0) ?? 0) + bytes);
    if (bytes > largestTensorBytes) {
      largestTensorBytes = bytes;
      largestTensorName = tensor.name ?? '';
    }
  }
  return {
    weightBytes: graphSource.size + externalDataBytes(external),
    largestTensorBytes,
    largestTensorName,
    kvCacheBytes: kvCacheBytes(model, config, options.tokens, options.batch),
    precision: precisionOf(bytesByType, nodes),
  };
}

/** Refuses, before anything loads, a model the backend cannot hold; the message names the graph. */
export function checkMemoryFits(graphFile: string, needs: MemoryNeeds, limits: BackendMemoryLimits, otherBackend?: BackendMemoryLimits): MemoryVerdict {
  const verdict = memoryVerdict(needs, limits, otherBackend);
  if (!verdict.fits) throw new InvalidInputError(`${graphFile}: ${verdict.message}`, { file: graphFile, suggestedPrecision: verdict.suggestedPrecision });
  return verdict;
}

/** KV cache sized for the evaluation's batch of sequences this long (prompt and reply); chat needs less. */
export const PREFLIGHT_TOKENS = 1024;

/**
 * The whole preflight for a folder about to load on `limits.backend`: its decoder graph (the one chat and capture
 * pick), measured and checked. Throws InvalidInputError naming the graph when it does not fit.
 */
export async function preflightModelMemory(folder: ModelFolder, limits: BackendMemoryLimits, options: { otherBackend?: BackendMemoryLimits; batch: number; tokens?: number }): Promise<MemoryNeeds | null> {
  const graphPath = findOnnxGraphFiles(folder.list())?.decoder;
  if (!graphPath) return null; // no graph: the loader says so in its own words
  const source = await folder.open(graphPath);
  const graphFile = `${folder.name}/${graphPath}`;
  const model = decodeOnnxModel(graphFile, await source.read(0, source.size));
  const config = await readModelConfig(folder);
  const needs = await estimateMemoryNeeds(folder, graphPath, model, config, { batch: options.batch, tokens: options.tokens ?? PREFLIGHT_TOKENS });
  checkMemoryFits(graphFile, needs, limits, options.otherBackend);
  return needs;
}
