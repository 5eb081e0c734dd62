/**
 * Text generation through transformers.js, on the model's own ONNX graph or on a graph built from it (the hook
 * graph of an ablation), with one tokenizer shared by both so base and ablated see identical token ids.
 *
 * transformers.js runs the decoding loop (KV cache, position ids from the attention mask, per-architecture
 * inputs such as Qwen3.5's embedding session); we only steer it: our own seeded sampling step (a logits
 * processor), an AbortSignal stopping criterion, a streamer that emits text deltas, and a context check up
 * front. The graph reaches transformers.js through transformers-files.ts, which works the same in Node and in
 * a browser worker: no file-system code here.
 */
import { AutoModelForCausalLM, Tensor, type PreTrainedModel } from '@huggingface/transformers';
import { decodeOnnxModel, encodeOnnxModel, type ModelProto } from '../formats/onnx';
import type { ExternalDataFile } from '../ports/onnx-session';
import { externalDataFiles } from './external-data';
import type { ModelFolder } from '../ports/folder';
import { CancelledError, InvalidInputError, throwIfAborted } from '../base/errors';
import { ProgressReporter, type LongCallOptions } from '../base/progress';
import type { Conversation, GenerationTokenizer } from './chat-tokenizer';
import { readWholeFile, registerModelFiles } from './transformers-files';
import { LeftPaddingGuard, correctTextOnlyRopeDeltas } from './transformers-workarounds';
import { paceModelSessions } from './run-pacing';
import { supplyGraphInputs, type GraphInputSupply } from './graph-inputs';
import { findOnnxGraphFiles } from '../formats/onnx-files';

import { AbortCriterion, DeltaStreamer, processorList, resolveSampling, streamerOption, SeededSamplingProcessor, type SamplingOptions, type TokenEvent } from './generation-steering';

export { loadGenerationTokenizer } from './chat-tokenizer';
export { DEFAULT_MAX_NEW_TOKENS, type SamplingOptions, type TokenEvent } from './generation-steering';
export type { ChatMessage, Conversation, GenerationTokenizer } from './chat-tokenizer';

/** Prompts per forward pass in batch calls; small models are bound by per-step overhead, so batching pays. */
export const DEFAULT_BATCH_SIZE = 16;
/** transformers.js names graph files `<session><suffix>.onnx`; the suffix says which dtype to ask for. */
const DTYPE_SUFFIXES: readonly [string, string][] = [
  ['_q4f16', 'q4f16'],
  ['_fp16', 'fp16'],
  ['_quantized', 'q8'],
  ['_int8', 'int8'],
  ['_uint8', 'uint8'],
  ['_bnb4', 'bnb4'],
  ['_q4', 'q4'],
];

function dtypeOfGraphFile(path: string): string {
  const stem = path.slice(path.lastIndexOf('/') + 1, -'.onnx'.length);
  return DTYPE_SUFFIXES.find(([suffix]) => stem.endsWith(suffix))?.[1] ?? 'fp32';
}

/** The graph capture uses (findOnnxGraphFiles), so generation and the direction come from the same export. */
function defaultGraphPath(files: readonly string[]): string | null {
  return findOnnxGraphFiles(files)?.decoder ?? null;
}

export interface GenerateOptions extends LongCallOptions, SamplingOptions {
  onToken?: (event: TokenEvent) => void;
}

export interface BatchGenerateOptions extends LongCallOptions, SamplingOptions {
  batchSize?: number;
}

export type FinishReason = 'eos' | 'max-new-tokens' | 'context';

export interface Generation {
  text: string;
  tokenIds: number[];
  promptTokenCount: number;
  finishReason: FinishReason;
}

export interface LoadModelOptions extends LongCallOptions {
  /** A graph to run instead of the folder's own (e.g. the hook graph); its external data comes from the folder. */
  graph?: ModelProto;
  /** Folder-relative path of the ONNX graph; default: the graph capture would pick (onnx/model.onnx first). */
  onnxFile?: string;
  /** transformers.js device: 'cpu' in Node, 'wasm' or 'webgpu' in a browser. Default: transformers.js's choice. */
  device?: string;
  /** The graph's external data, found once (externalDataFiles), so loading many hook graphs finds and checks it once. */
  externalData?: ExternalDataFile[];
  /** Graph inputs transformers.js does not fill (the recipe hook graph's numbers), fed on every forward pass. */
  graphInputs?: GraphInputSupply;
}

export function contextLengthOf(config: Record<string, unknown>): number | null {
  const text = (config.text_config as Record<string, unknown> | undefined) ?? config;
  const value = text.max_position_embeddings ?? config.max_position_embeddings;
  return typeof value === 'number' && value > 0 ? value : null;
}

/** A causal language model (one ONNX graph) ready to generate and to score next tokens. */
export class LanguageModel {
  private constructor(
    private readonly model: PreTrainedModel,
    readonly tokenizer: GenerationTokenizer,
    /** max_position_embeddings, or null when the config does not say. */
    readonly contextLength: number | null,
    private readonly releaseFiles: () => void,
    private readonly paddingGuard: LeftPaddingGuard,
  ) {}

  /** Loads `folder`'s graph (or `options.graph` in its place) into transformers.js. */
  static async load(folder: ModelFolder, tokenizer: GenerationTokenizer, options: LoadModelOptions = {}): Promise<LanguageModel> {
    throwIfAborted(options.signal);
    const progress = new ProgressReporter('load model', options.onProgress);
    const files = folder.list();
    if (!files.includes('config.json')) throw new InvalidInputError(`${folder.name}: has no config.json; a model folder needs one for generation.`);
    const onnxFile = options.onnxFile ?? defaultGraphPath(files);
    if (!onnxFile || !files.includes(onnxFile)) {
      const graphs = files.filter((path) => path.endsWith('.onnx'));
      throw new InvalidInputError(`${folder.name}: has no ONNX graph${onnxFile ? ` at ${onnxFile}` : ''}${graphs.length ? ` (found ${graphs.join(', ')})` : ''}; generation needs the transformers.js export in onnx/.`);
    }
    const dtype = dtypeOfGraphFile(onnxFile);
    const graphBytes = options.graph ? encodeOnnxModel(options.graph) : await readWholeFile(folder, onnxFile);
    // The graph is decoded only to learn which external-data files it needs, when the caller has not read them.
    const externalData = options.externalData ?? (await externalDataFiles(folder, onnxFile, options.graph ?? decodeOnnxModel(`${folder.name}/${onnxFile}`, graphBytes)));
    progress.report(0.3, 'graph read');
    throwIfAborted(options.signal);
    // The graph is served under its own name, so transformers.js picks it by dtype suffix as it would on disk.
    const served = registerModelFiles(folder, new Map([[onnxFile, graphBytes]]));
    try {
      const config = JSON.parse(await folder.readText('config.json')) as Record<string, unknown>;
      const model = await AutoModelForCausalLM.from_pretrained(served.modelId, {
        dtype: dtype as 'fp32',
        ...(options.device ? { device: options.device as 'cpu' } : {}),
        session_options: externalData.length ? { externalData } : {},
      });
      correctTextOnlyRopeDeltas(model); // Qwen3.5 and the Qwen-VL family: see transformers-workarounds.ts
      if (options.graphInputs) {
        try {
          supplyGraphInputs(model, options.graphInputs);
        } catch (error) {
          await model.dispose();
          throw error;
        }
      }
      paceModelSessions(model);
      progress.done();
      return new LanguageModel(model, tokenizer, contextLengthOf(config), served.release, new LeftPaddingGuard(model));
    } catch (error) {
      served.release();
      throw error;
    }
  }

  async dispose(): Promise<void> {
    this.releaseFiles();
    await this.model.dispose();
  }

  /** Encodes a conversation with the generation prompt and checks it fits the context. */
  encodePrompt(conversation: Conversation, label = 'the prompt'): number[] {
    const ids = this.tokenizer.encodeConversation(conversation);
    if (ids.length === 0) throw new InvalidInputError(`${label} encodes to no tokens.`);
    if (this.contextLength !== null && ids.length >= this.contextLength) {
      throw new InvalidInputError(
        `${label} is ${ids.length} tokens long, but the model's context (max_position_embeddings) is ${this.contextLength} tokens, leaving no room for a reply; shorten it.`,
      );
    }
    return ids;
  }

  /** Generates a reply to one conversation, streaming text deltas to `onToken`. */
  async generate(conversation: Conversation, options: GenerateOptions = {}): Promise<Generation> {
    const promptIds = this.encodePrompt(conversation);
    const [generation] = await this.runGeneration([promptIds], options, options.onToken);
    return generation!;
  }

  /** Generates replies for many conversations, `batchSize` at a time (left-padded). */
  async generateBatch(conversations: Conversation[], options: BatchGenerateOptions = {}): Promise<Generation[]> {
    const prompts = conversations.map((conversation, index) => this.encodePrompt(conversation, `prompt #${index + 1}`));
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    const progress = new ProgressReporter('generate', options.onProgress);
    const results: Generation[] = [];
    for (let start = 0; start < prompts.length; start += batchSize) {
      throwIfAborted(options.signal);
      // Each batch's seed is offset by its first prompt's index: a rerun with the same batch size repeats every reply.
      results.push(...(await this.runGeneration(prompts.slice(start, start + batchSize), { ...options, seed: (options.seed ?? 0) + start })));
      progress.report(results.length / prompts.length, `${results.length}/${prompts.length} prompts`);
    }
    progress.done();
    return results;
  }

  /**
   * The logits of the first generated token (the next token after the generation prompt) for each
   * conversation, from one forward pass per batch. Returns one row per conversation: [prompt][vocab].
   */
  async nextTokenLogits(conversations: Conversation[], options: LongCallOptions & { batchSize?: number } = {}): Promise<Float32Array[]> {
    const prompts = conversations.map((conversation, index) => this.encodePrompt(conversation, `prompt #${index + 1}`));
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    const progress = new ProgressReporter('first-token logits', options.onProgress);
    const rows: Float32Array[] = [];
    for (let start = 0; start < prompts.length; start += batchSize) {
      throwIfAborted(options.signal);
      const inputs = this.leftPadded(prompts.slice(start, start + batchSize));
      const outputs = (await this.model(inputs)) as { logits: Tensor };
      const logits = outputs.logits.to('float32'); // [batch, sequence, vocab]
      const [batch, sequence, vocabulary] = logits.dims as [number, number, number];
      const data = logits.data as Float32Array;
      // Left padding puts every prompt's last token at the last position.
      for (let row = 0; row < batch; row++) {
        const offset = (row * sequence + sequence - 1) * vocabulary;
        rows.push(data.slice(offset, offset + vocabulary));
      }
      progress.report(rows.length / prompts.length);
    }
    progress.done();
    return rows;
  }

  private leftPadded(prompts: number[][]): { input_ids: Tensor; attention_mask: Tensor } {
    const length = Math.max(...prompts.map((ids) => ids.length));
    const ids = new BigInt64Array(prompts.length * length); // [batch, sequence]
    const mask = new BigInt64Array(prompts.length * length); // [batch, sequence]
    prompts.forEach((prompt, row) => {
      const pad = length - prompt.length;
      for (let i = 0; i < length; i++) {
        ids[row * length + i] = BigInt(i < pad ? this.tokenizer.padTokenId : prompt[i - pad]!);
        mask[row * length + i] = i < pad ? 0n : 1n;
      }
    });
    return {
      input_ids: new Tensor('int64', ids, [prompts.length, length]),
      attention_mask: new Tensor('int64', mask, [prompts.length, length]),
    };
  }

  private async runGeneration(prompts: number[][], options: SamplingOptions & LongCallOptions, onToken?: (event: TokenEvent) => void): Promise<Generation[]> {
    throwIfAborted(options.signal);
    const { maxNewTokens, minNewTokens, temperature, topP, seed } = resolveSampling(options);
    const longest = Math.max(...prompts.map((ids) => ids.length));
    // A budget that would run past the context is cut to fit; the reply then ends with finishReason 'context'.
    const room = this.contextLength === null ? maxNewTokens : this.contextLength - longest;
    const budget = Math.min(maxNewTokens, room);
    const inputs = this.leftPadded(prompts);
    const eos = this.tokenizer.eosTokenIds;
    const padding = prompts.map((ids) => longest - ids.length);
    const output = (await this.paddingGuard.during(padding, () => this.model.generate({
      ...inputs,
      max_new_tokens: budget,
      ...(minNewTokens > 0 ? { min_new_tokens: Math.min(minNewTokens, budget) } : {}),
      do_sample: false, // greedy in transformers.js; sampling happens in our processor
      num_beams: 1,
      repetition_penalty: 1,
      eos_token_id: eos,
      pad_token_id: this.tokenizer.padTokenId,
      ...(temperature > 0 ? { logits_processor: processorList(new SeededSamplingProcessor(temperature, topP, seed)) } : {}),
      stopping_criteria: [new AbortCriterion(options.signal)],
      ...(onToken ? { streamer: streamerOption(new DeltaStreamer(this.tokenizer, onToken)) } : {}),
    }))) as Tensor;
    if (options.signal?.aborted) throw new CancelledError('Generation cancelled.');
    const width = output.dims[1]!;
    const all = output.data as BigInt64Array; // [batch, padded prompt + generated]
    const paddedPrompt = inputs.input_ids.dims[1]!;
    return prompts.map((prompt, row) => {
      const generated: number[] = [];
      let finishReason: FinishReason = budget < maxNewTokens ? 'context' : 'max-new-tokens';
      for (let i = paddedPrompt; i < width; i++) {
        const token = Number(all[row * width + i]);
        // Batch rows keep decoding until every row has stopped: cut each at its own first EOS.
        if (eos.includes(token)) {
          finishReason = 'eos';
          break;
        }
        generated.push(token);
      }
      return { text: this.tokenizer.decode(generated), tokenIds: generated, promptTokenCount: prompt.length, finishReason };
    });
  }
}
