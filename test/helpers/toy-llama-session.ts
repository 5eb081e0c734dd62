/**
 * Test plumbing for toy-llama: chat-templated token ids from transformers.js (offline), left-padded batches
 * fed to an onnxruntime-node session with an empty KV cache, and a reader for the prompt files.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { expect } from 'vitest';
import { encodeOnnxModel } from '../../src/formats/onnx';
import type { ModelProto } from '../../src/formats/onnx';
import { SHARED_FIXTURES } from './fixtures';

export const FIXTURES = SHARED_FIXTURES;
export const TOY_LLAMA = `${FIXTURES}/toy-llama`;
export const QWEN_GRAPH = `${FIXTURES}/qwen3_5-0.8b-onnx-graph/onnx/decoder_model_merged_quantized.onnx`;

export interface ChatMessage {
  role: string;
  content: string;
}

export function readPromptMessages(file: string, count: number): ChatMessage[][] {
  const lines = readFileSync(`${TOY_LLAMA}/prompts/${file}`, 'utf8').split('\n').filter((line) => line.trim());
  return lines.slice(0, count).map((line) => (JSON.parse(line) as { messages: ChatMessage[] }).messages);
}

export async function toyLlamaTokenIds(conversations: ChatMessage[][]): Promise<number[][]> {
  return chatTokenIds(`${FIXTURES}/`, 'toy-llama', conversations);
}

/** Chat-templated ids (with the generation prompt) from a local model folder `root/name`, offline. */
export async function chatTokenIds(root: string, name: string, conversations: ChatMessage[][]): Promise<number[][]> {
  env.localModelPath = root;
  env.allowRemoteModels = false;
  const tokenizer = await AutoTokenizer.from_pretrained(name);
  return conversations.map((messages) => tokenizer.apply_chat_template(messages, { add_generation_prompt: true, tokenize: true, return_tensor: false, return_dict: false }) as unknown as number[]);
}

export interface ToyLlamaShape {
  numLayers: number;
  numKeyValueHeads: number;
  headDim: number;
}

/** Runs a left-padded batch (pad id 0, positions counted from the first real token) with an empty KV cache. */
/** `extraFeeds`: inputs a hook graph added (the recipe hook graph's numbers). */
export async function runLeftPadded(model: ModelProto, batch: number[][], shape: ToyLlamaShape, outputNames: string[], extraFeeds: Record<string, ort.Tensor> = {}): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(encodeOnnxModel(model), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const width = Math.max(...batch.map((ids) => ids.length));
    const inputIds = new BigInt64Array(batch.length * width);
    const attentionMask = new BigInt64Array(batch.length * width);
    const positionIds = new BigInt64Array(batch.length * width);
    batch.forEach((ids, row) => {
      const pad = width - ids.length;
      ids.forEach((id, k) => {
        inputIds[row * width + pad + k] = BigInt(id);
        attentionMask[row * width + pad + k] = 1n;
        positionIds[row * width + pad + k] = BigInt(k);
      });
      for (let k = 0; k < pad; k++) positionIds[row * width + k] = 1n; // what transformers.js feeds pad slots
    });
    const feeds: Record<string, ort.Tensor> = {
      ...extraFeeds,
      input_ids: new ort.Tensor('int64', inputIds, [batch.length, width]),
      attention_mask: new ort.Tensor('int64', attentionMask, [batch.length, width]),
      position_ids: new ort.Tensor('int64', positionIds, [batch.length, width]),
    };
    for (let layer = 0; layer < shape.numLayers; layer++) {
      for (const kind of ['key', 'value']) feeds[`past_key_values.${layer}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [batch.length, shape.numKeyValueHeads, 0, shape.headDim]);
    }
    return await session.run(feeds, outputNames);
  } finally {
    await session.release();
  }
}

export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let max = 0;
  for (let k = 0; k < a.length; k++) max = Math.max(max, Math.abs(a[k] - b[k]));
  return max;
}

/** Every node reads only graph inputs, initializers and values of nodes before it (ONNX requires this order). */
export function expectTopologicallySorted(model: ModelProto): void {
  const graph = model.graph ?? {};
  const known = new Set<string>(['', ...(graph.input ?? []).map((info) => info.name ?? ''), ...(graph.initializer ?? []).map((tensor) => tensor.name ?? '')]);
  for (const node of graph.node ?? []) {
    for (const input of node.input ?? []) expect(known.has(input), `${node.name} reads ${input} before it is produced`).toBe(true);
    for (const output of node.output ?? []) known.add(output);
  }
}
