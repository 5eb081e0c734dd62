/**
 * How we steer transformers.js's decoding loop (src/engine/generate.ts): our own seeded sampling step as a
 * logits processor, an AbortSignal as a stopping criterion, a streamer that emits text deltas, and the checks
 * on the sampling options.
 */
import { BaseStreamer, LogitsProcessor, LogitsProcessorList, StoppingCriteria, type Tensor, type TextStreamer } from '@huggingface/transformers';
import { InvalidInputError } from '../base/errors';
import { chooseToken, createSeededRandom, checkSamplingSettings, SamplingOptionError } from '../core/sampling';
import type { GenerationTokenizer } from './chat-tokenizer';

/** The CLI's and the eval panel's default length: long enough for a refusal sentence to appear. */
export const DEFAULT_MAX_NEW_TOKENS = 48;

export interface SamplingOptions {
  maxNewTokens?: number;
  /** 0 or absent: greedy. */
  temperature?: number;
  topP?: number;
  /** Seeds the sampler; the same seed, prompt and graph give the same text. Default 0. */
  seed?: number;
  /** End-of-sequence is suppressed until this many new tokens (0 or absent: off), as HF's min_new_tokens. */
  minNewTokens?: number;
}

export interface TokenEvent {
  /** The new text since the previous event (decoding whole prefixes, so multi-token characters come out whole). */
  text: string;
  tokenId: number;
  index: number;
}

export class AbortCriterion extends StoppingCriteria {
  constructor(private readonly signal: AbortSignal | undefined) {
    super();
  }
  override _call(inputIds: number[][]): boolean[] {
    return inputIds.map(() => Boolean(this.signal?.aborted));
  }
}

/**
 * Picks every row's next token itself (seeded, per-generation PRNG) and leaves only that token finite, so
 * transformers.js's greedy sampler takes it. Also stops rows whose own budget ran out by forcing EOS.
 */
export class SeededSamplingProcessor extends LogitsProcessor {
  private readonly random: () => number;
  constructor(
    private readonly temperature: number,
    private readonly topP: number,
    seed: number,
  ) {
    super();
    this.random = createSeededRandom(seed);
  }
  override _call(_inputIds: bigint[][], logits: Tensor): Tensor {
    const [rows, vocabulary] = [logits.dims[0]!, logits.dims.at(-1)!];
    const data = logits.data as Float32Array; // [row, vocab]
    for (let row = 0; row < rows; row++) {
      const slice = data.subarray(row * vocabulary, (row + 1) * vocabulary);
      const token = chooseToken(slice, { temperature: this.temperature, topP: this.topP }, this.random);
      slice.fill(-Infinity);
      slice[token] = 0;
    }
    return logits;
  }
}

/** generate() takes extra logits processors as a LogitsProcessorList, which it spreads into its own list. */
export function processorList(...processors: LogitsProcessor[]): LogitsProcessorList {
  const list = new LogitsProcessorList();
  list.extend(processors);
  return list;
}

/**
 * transformers.js types generate()'s `streamer` twice, as BaseStreamer in its parameters and as TextStreamer in
 * GenerationConfig, and intersects the two; at run time it only calls put() and end(), which any BaseStreamer has.
 */
export function streamerOption(streamer: BaseStreamer): TextStreamer {
  return streamer as TextStreamer;
}

/** Streams decoded text deltas of a single-row generation; ignores the prompt and stops at EOS. */
export class DeltaStreamer extends BaseStreamer {
  private seenPrompt = false;
  private readonly tokens: number[] = [];
  private emitted = '';
  private finished = false;
  constructor(
    private readonly tokenizer: GenerationTokenizer,
    private readonly onToken: (event: TokenEvent) => void,
  ) {
    super();
  }
  override put(value: bigint[][]): void {
    if (!this.seenPrompt) {
      this.seenPrompt = true;
      return;
    }
    if (this.finished) return;
    const tokenId = Number(value[0]![0]);
    if (this.tokenizer.eosTokenIds.includes(tokenId)) {
      this.finished = true;
      return;
    }
    this.tokens.push(tokenId);
    const text = this.tokenizer.decode(this.tokens);
    // A token that ends mid-character decodes to U+FFFD; wait for the rest instead of emitting garbage.
    if (text.endsWith('\uFFFD')) return;
    const delta = text.startsWith(this.emitted) ? text.slice(this.emitted.length) : text;
    this.emitted = text;
    this.onToken({ text: delta, tokenId, index: this.tokens.length - 1 });
  }
  override end(): void {}
}

export function resolveSampling(options: SamplingOptions): { maxNewTokens: number; minNewTokens: number; temperature: number; topP: number; seed: number } {
  const maxNewTokens = options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new InvalidInputError(`max new tokens ${maxNewTokens} must be a whole number ≥ 1.`);
  const minNewTokens = options.minNewTokens ?? 0;
  if (!Number.isInteger(minNewTokens) || minNewTokens < 0) throw new InvalidInputError(`min new tokens ${minNewTokens} must be a whole number ≥ 0.`);
  const settings = { temperature: options.temperature ?? 0, topP: options.topP ?? 1 };
  try {
    checkSamplingSettings(settings);
  } catch (error) {
    if (error instanceof SamplingOptionError) throw new InvalidInputError(error.message);
    throw error;
  }
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new InvalidInputError(`seed ${seed} must be an integer.`);
  return { maxNewTokens, minNewTokens, ...settings, seed };
}
