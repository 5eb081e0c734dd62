/**
 * Capture engine: chat-templated prompts → batched forward passes of the capture graph (the model's own ONNX
 * with the residual stream of every layer as extra outputs, src/model/capture-graph.ts, cut down to those
 * outputs) → residuals at the requested token positions for every prompt and layer, plus float64 per-layer sums.
 *
 * Runs over the OnnxSession interface only (no Node imports): the CLI feeds it onnxruntime-node, the browser
 * worker onnxruntime-web.
 *
 * Padding: negative positions count from the end of the prompt, so batches are left-padded (position −1 is
 * the last column of every row, as in transformers.js generation); non-negative positions count from the start,
 * so batches are right-padded (causal attention never looks right, so real tokens are unaffected).
 */
import { float16BitsToFloat32 } from '../core/dtypes';
import { accumulateInto } from '../core/statistics';
import { checkedExternalData, decodeOnnxModel, encodeOnnxModel } from '../formats/onnx';
import type { PromptRecord } from '../formats/prompts';
import { buildCaptureGraph, type CaptureGraph } from '../model/capture-graph';
import { pruneToOutputs } from '../model/graph-prune';
import type { OnnxModelInput, OnnxSession, OnnxSessionFactory, OnnxTensor, OnnxValueInfo } from '../ports/onnx-session';
import { isOnnxElementType, zeroTensorData } from '../ports/onnx-session';
import { InvalidInputError, UnsupportedModelError, throwIfAborted } from '../base/errors';
import { ProgressReporter, type LongCallOptions } from '../base/progress';
import { createYielder } from './run-pacing';
import { padBatch, type ChatTokenizer, type PaddedBatch } from './tokenize';

export const DEFAULT_CAPTURE_BATCH_SIZE = 8;

export interface CaptureSession {
  session: OnnxSession;
  /** Session of the separate embedding graph when the decoder takes `inputs_embeds` (Qwen3.5 exports). */
  embedSession: OnnxSession | null;
  outputNames: string[]; // L + 1 activation outputs, index = layer
  layerCount: number; // L + 1
  positions: number[];
  style: string;
  notes: string[];
  release(): Promise<void>;
}

export interface OpenCaptureOptions {
  /** Token positions, all negative (from the end, −1 = last prompt token) or all non-negative (from the start). */
  positions?: number[];
  /** The embedding graph (`onnx/embed_tokens*.onnx`) when the decoder takes `inputs_embeds`. */
  embedding?: OnnxModelInput;
  /** Blocks per config.json; the residual finder checks it finds exactly that many. */
  numLayers?: number;
}

export function checkPositions(positions: readonly number[]): void {
  if (positions.length === 0) throw new InvalidInputError('at least one token position is needed (e.g. -1, the last prompt token)');
  for (const position of positions) {
    if (!Number.isInteger(position)) throw new InvalidInputError(`token position ${position} is not an integer`);
  }
  const negative = positions.filter((position) => position < 0).length;
  if (negative !== 0 && negative !== positions.length) {
    throw new InvalidInputError(`token positions ${positions.join(', ')} mix counting from the end (negative) and from the start; capture them in two runs`);
  }
}

/**
 * The graph the capture engine runs: the capture graph cut down to its residual outputs. The engine fetches
 * nothing else, and onnxruntime would otherwise still compute the final norm, the LM head, full-vocabulary
 * logits and the cache outputs on every batch (src/model/graph-prune.ts).
 */
export function engineCaptureGraph(capture: CaptureGraph): CaptureGraph {
  return { ...capture, model: pruneToOutputs(capture.model, capture.outputNames).model };
}

/** Decodes the model's graph, adds the residual outputs, drops what they do not need and opens a session on the result. */
export async function openCaptureSession(factory: OnnxSessionFactory, model: OnnxModelInput, options: OpenCaptureOptions = {}): Promise<CaptureSession> {
  const positions = options.positions ?? [-1];
  checkPositions(positions);
  const decoded = decodeOnnxModel(model.name, model.bytes);
  checkedExternalData(model.name, '', decoded, new Set((model.externalData ?? []).map((file) => file.path)));
  if (options.embedding) {
    checkedExternalData(options.embedding.name, '', decodeOnnxModel(options.embedding.name, options.embedding.bytes), new Set((options.embedding.externalData ?? []).map((file) => file.path)));
  }
  const capture = engineCaptureGraph(buildCaptureGraph(decoded, { positions, ...(options.numLayers ? { numLayers: options.numLayers } : {}) }));
  const residual = capture.residual;
  if (residual.inputsEmbeds && !options.embedding) {
    throw new UnsupportedModelError(`${model.name} takes inputs_embeds; the embedding graph (onnx/embed_tokens*.onnx) is needed too`);
  }
  const session = await factory.create({ ...model, bytes: encodeOnnxModel(capture.model) });
  let embedSession: OnnxSession | null = null;
  try {
    if (residual.inputsEmbeds && options.embedding) embedSession = await factory.create(options.embedding);
  } catch (error) {
    await session.release();
    throw error;
  }
  return {
    session,
    embedSession,
    outputNames: capture.outputNames,
    layerCount: capture.outputNames.length,
    positions: [...positions],
    style: residual.style,
    notes: residual.notes,
    async release() {
      await session.release();
      await embedSession?.release();
    },
  };
}

export interface CaptureOptions extends LongCallOptions {
  batchSize?: number;
  /** Names the prompt set in progress and errors ("harmful"). */
  label?: string;
  /** Keep per-prompt activations (needed for AUC); false keeps only the float64 sums. */
  keepActivations?: boolean;
}

export interface CaptureResult {
  label: string;
  promptCount: number;
  positions: number[];
  layerCount: number; // L + 1
  hiddenSize: number;
  activations: Float32Array | null; // [prompt, position, layer, dModel]
  sums: Float64Array; // [position, layer, dModel], over prompts
  tokenCounts: number[]; // [prompt]
}

/** Activations at one captured position as [prompt, layer, dModel] (no copy when only one position was captured). */
export function activationsAtPosition(result: CaptureResult, positionIndex = 0): Float32Array {
  if (!result.activations) throw new InvalidInputError(`the ${result.label} capture kept no per-prompt activations`);
  if (positionIndex < 0 || positionIndex >= result.positions.length) throw new InvalidInputError(`position index ${positionIndex} out of range`);
  const block = result.layerCount * result.hiddenSize;
  if (result.positions.length === 1) return result.activations;
  const out = new Float32Array(result.promptCount * block); // [prompt, layer, dModel]
  for (let prompt = 0; prompt < result.promptCount; prompt++) {
    const start = (prompt * result.positions.length + positionIndex) * block;
    out.set(result.activations.subarray(start, start + block), prompt * block);
  }
  return out;
}

/** The graph's inputs filled for one prefill pass with an empty cache. */
export function buildDecoderFeeds(
  inputs: readonly OnnxValueInfo[],
  batch: PaddedBatch,
  inputsEmbeds: OnnxTensor | null,
): Record<string, OnnxTensor> {
  const { batchSize, sequenceLength } = batch;
  const feeds: Record<string, OnnxTensor> = {};
  for (const input of inputs) {
    const { name, shape } = input;
    if (name === 'input_ids') feeds[name] = { type: 'int64', dims: [batchSize, sequenceLength], data: batch.inputIds };
    else if (name === 'attention_mask') feeds[name] = { type: 'int64', dims: [batchSize, sequenceLength], data: batch.attentionMask };
    else if (name === 'position_ids') {
      if (shape.length === 3) {
        // mRoPE (Qwen-VL family): text-only prompts use the same positions on all three axes (transformers.js).
        const data = new BigInt64Array(3 * batch.positionIds.length);
        for (let axis = 0; axis < 3; axis++) data.set(batch.positionIds, axis * batch.positionIds.length);
        feeds[name] = { type: 'int64', dims: [3, batchSize, sequenceLength], data };
      } else feeds[name] = { type: 'int64', dims: [batchSize, sequenceLength], data: batch.positionIds };
    } else if (name === 'inputs_embeds') {
      if (!inputsEmbeds) throw new UnsupportedModelError('the graph takes inputs_embeds but no embedding graph was given');
      feeds[name] = inputsEmbeds;
    } else if (name === 'token_type_ids') feeds[name] = { type: 'int64', dims: [batchSize, sequenceLength], data: new BigInt64Array(batchSize * sequenceLength) };
    else if (name === 'use_cache_branch') feeds[name] = { type: 'bool', dims: [1], data: new Uint8Array([0]) };
    else if (name === 'num_logits_to_keep' || name === 'logits_to_keep') feeds[name] = { type: 'int64', dims: [], data: new BigInt64Array([1n]) };
    else if (/^past|cache|state/i.test(name)) {
      // Empty past: batch dims take the batch size, sequence-like symbolic dims are 0, fixed dims stay (conv states).
      const dims = shape.map((dim) => {
        if (typeof dim === 'number') return dim;
        if (/batch/i.test(dim)) return batchSize;
        if (/seq|past|total|length/i.test(dim)) return 0;
        throw new UnsupportedModelError(`cannot size the empty cache input ${name}: its dimension "${dim}" is neither a batch nor a sequence dimension`);
      });
      if (!isOnnxElementType(input.type)) throw new UnsupportedModelError(`cache input ${name} has unsupported type ${input.type}`);
      feeds[name] = { type: input.type, dims, data: zeroTensorData(input.type, dims.reduce((a, b) => a * b, 1)) };
    } else {
      throw new UnsupportedModelError(`the graph has an input the capture engine does not know how to fill: ${name} [${shape.join(', ')}]`);
    }
  }
  return feeds;
}

function float32Values(name: string, tensor: OnnxTensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') return Float32Array.from(tensor.data as Uint16Array, float16BitsToFloat32);
  throw new UnsupportedModelError(`capture output ${name} has type ${tensor.type}; expected float32`);
}

async function embed(capture: CaptureSession, batch: PaddedBatch): Promise<OnnxTensor | null> {
  if (!capture.embedSession) return null;
  const inputName = capture.embedSession.inputs[0]?.name ?? 'input_ids';
  const outputs = await capture.embedSession.run({ [inputName]: { type: 'int64', dims: [batch.batchSize, batch.sequenceLength], data: batch.inputIds } });
  const first = Object.values(outputs)[0];
  if (!first) throw new UnsupportedModelError('the embedding graph returned no output');
  return first;
}

/**
 * The share of a capture's progress bar given to applying the chat template: small next to the forward passes of
 * any real model, yet it moves the bar (and lets Cancel in) while a set of thousands of prompts is tokenized.
 */
const TOKENIZE_SHARE = 0.05;
/** Prompts tokenized between two progress reports. */
const TOKENIZE_CHUNK = 128;

async function tokenizeAll(
  tokenizer: ChatTokenizer,
  prompts: readonly PromptRecord[],
  progress: ProgressReporter,
  signal: AbortSignal | undefined,
): Promise<number[][]> {
  const tokens: number[][] = [];
  const yieldNow = createYielder();
  for (let start = 0; start < prompts.length; start += TOKENIZE_CHUNK) {
    await yieldNow();
    throwIfAborted(signal);
    for (const prompt of prompts.slice(start, start + TOKENIZE_CHUNK)) tokens.push(tokenizer.encodeChat(prompt.messages));
    progress.report(TOKENIZE_SHARE * (tokens.length / prompts.length), `${tokens.length}/${prompts.length} prompts tokenized`);
  }
  throwIfAborted(signal);
  return tokens;
}

/**
 * Captures residuals for every prompt. Prompts are batched by token length (less padding); results come back in
 * prompt order. A position outside a prompt is an InvalidInputError naming the set, the prompt and its length.
 */
export async function captureActivations(
  capture: CaptureSession,
  tokenizer: ChatTokenizer,
  prompts: readonly PromptRecord[],
  options: CaptureOptions = {},
): Promise<CaptureResult> {
  const label = options.label ?? 'prompts';
  const batchSize = options.batchSize ?? DEFAULT_CAPTURE_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidInputError(`batch size must be a positive integer, got ${batchSize}`);
  if (prompts.length === 0) throw new InvalidInputError(`the ${label} set has no prompts`);
  const positions = capture.positions;
  const fromEnd = positions[0] < 0;
  const progress = new ProgressReporter(`capture ${label}`, options.onProgress);

  const tokens = await tokenizeAll(tokenizer, prompts, progress, options.signal);
  // Checked on the shortest prompt before any forward pass, so the error names the range that fits every prompt.
  const shortest = tokens.reduce((best, ids, index) => (ids.length < tokens[best].length ? index : best), 0);
  const shortestLength = tokens[shortest].length;
  for (const position of positions) {
    if (fromEnd ? -position > shortestLength : position >= shortestLength) {
      throw new InvalidInputError(
        `token position ${position} is outside ${label} prompt ${shortest + 1} (${shortestLength} tokens after the chat template, the shortest of the set); positions from ${-shortestLength} to -1 or 0 to ${shortestLength - 1} fit every prompt`,
        { position, prompt: shortest, tokens: shortestLength },
      );
    }
  }

  const order = tokens.map((_, index) => index).sort((a, b) => tokens[a].length - tokens[b].length || a - b);
  const keep = options.keepActivations ?? true;
  const layerCount = capture.layerCount;
  let hiddenSize = 0;
  let activations: Float32Array | null = null;
  let sums: Float64Array | null = null;
  let done = 0;
  // In a browser worker the runs below settle as microtasks: without a turn of the event loop now and then, a
  // Cancel would wait for the whole set.
  const yieldNow = createYielder();
  for (let start = 0; start < order.length; start += batchSize) {
    await yieldNow();
    throwIfAborted(options.signal);
    const members = order.slice(start, start + batchSize);
    const batch = padBatch(members.map((index) => tokens[index]), tokenizer.padTokenId, fromEnd ? 'left' : 'right');
    const feeds = buildDecoderFeeds(capture.session.inputs, batch, await embed(capture, batch));
    const outputs = await capture.session.run(feeds, capture.outputNames);
    throwIfAborted(options.signal);
    capture.outputNames.forEach((name, layer) => {
      const tensor = outputs[name];
      if (!tensor) throw new UnsupportedModelError(`the capture graph did not return ${name}`);
      const [rows, columns, width] = tensor.dims; // [batch, positions, dModel]
      if (tensor.dims.length !== 3 || rows !== members.length || columns !== positions.length) {
        throw new UnsupportedModelError(`capture output ${name} has shape [${tensor.dims.join(', ')}], expected [${members.length}, positions, dModel]`);
      }
      if (!hiddenSize) {
        hiddenSize = width;
        sums = new Float64Array(positions.length * layerCount * hiddenSize); // [position, layer, dModel]
        if (keep) activations = new Float32Array(prompts.length * positions.length * layerCount * hiddenSize);
      } else if (width !== hiddenSize) throw new UnsupportedModelError(`capture output ${name} has width ${width}, layer 0 had ${hiddenSize}`);
      const values = float32Values(name, tensor);
      members.forEach((promptIndex, row) => {
        for (let positionIndex = 0; positionIndex < positions.length; positionIndex++) {
          const source = (row * columns + positionIndex) * width;
          const sumStart = (positionIndex * layerCount + layer) * width;
          accumulateInto((sums as Float64Array).subarray(sumStart, sumStart + width), values, source);
          if (activations) {
            const target = ((promptIndex * positions.length + positionIndex) * layerCount + layer) * width;
            activations.set(values.subarray(source, source + width), target);
          }
        }
      });
    });
    done += members.length;
    progress.report(TOKENIZE_SHARE + (1 - TOKENIZE_SHARE) * (done / prompts.length), `${done}/${prompts.length} prompts`);
  }
  progress.done();
  return {
    label,
    promptCount: prompts.length,
    positions: [...positions],
    layerCount,
    hiddenSize,
    activations,
    sums: sums as unknown as Float64Array,
    tokenCounts: tokens.map((ids) => ids.length),
  };
}
