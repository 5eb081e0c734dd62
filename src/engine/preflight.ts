/**
 * Preflight before a capture: tokenization coverage of the A and B prompts (unknown-token and too-long
 * rates), the chat template as the model sees it with the captured token marked, and the base model's greedy
 * behaviour on a few A and B prompts (refusal on A; refusal and JSON actions on B), with the warnings of
 * core/preflight.ts when the prompts are unreadable or the contrast is not in the model's behaviour.
 */
import { actionRate, classifyAction } from '../core/action';
import { preflightWarnings, type PreflightFigures, type PreflightWarning } from '../core/preflight';
import { classifyRefusal } from '../core/refusal';
import { InvalidInputError } from '../base/errors';
import { ProgressReporter, type LongCallOptions } from '../base/progress';
import { contextLengthOf, type Conversation } from './generate';
import { progressSlice, resolveMarkers, type EvaluationSession } from './evaluate';
import { resolveActionKeys } from './agent-evaluation';
import { createChatTokenizer, loadTokenizerFiles } from './tokenize';

export const DEFAULT_PREFLIGHT_SAMPLES = 4;
export const DEFAULT_PREFLIGHT_MAX_NEW_TOKENS = 32;

export interface PreflightSettings {
  /** Prompts per set whose base replies are generated (spread over the set). */
  samplePrompts?: number;
  maxNewTokens?: number;
  /** The capture's token position (−1 = last prompt token). */
  position?: number;
  markers?: readonly string[];
  actionKeys?: readonly string[];
}

export interface PreflightSample {
  set: 'A' | 'B';
  messages: Conversation;
  response: string;
  refused: boolean;
  action: boolean;
}

export interface PreflightReport {
  figures: PreflightFigures;
  counts: { prompts: number; tokens: number; unknownTokens: number; tooLong: number; sampledA: number; sampledB: number };
  /** The first A prompt, templated: one decoded piece per token, and the index the capture reads. */
  template: { tokens: string[]; capturedIndex: number; unknownIndices: number[] };
  unknownToken: string | null;
  contextLength: number | null;
  samples: PreflightSample[];
  warnings: PreflightWarning[];
}

/** The id of the tokenizer's unknown token (WordLevel/WordPiece/BPE `unk_token`, Unigram `unk_id`), or null. */
export function unknownTokenOf(tokenizerJson: Record<string, unknown>): { id: number; token: string } | null {
  const model = (tokenizerJson.model ?? {}) as Record<string, unknown>;
  const vocab = model.vocab;
  if (typeof model.unk_id === 'number' && Array.isArray(vocab)) {
    const entry = vocab[model.unk_id] as unknown;
    return { id: model.unk_id, token: Array.isArray(entry) ? String(entry[0]) : '<unk>' };
  }
  if (typeof model.unk_token !== 'string') return null;
  const token = model.unk_token;
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab) && typeof (vocab as Record<string, unknown>)[token] === 'number') {
    return { id: (vocab as Record<string, number>)[token]!, token };
  }
  const added = (tokenizerJson.added_tokens as { id?: number; content?: string }[] | undefined)?.find((entry) => entry.content === token);
  return typeof added?.id === 'number' ? { id: added.id, token } : null;
}

/** Every `count`-th item spread over the list, deterministically. */
function spread<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  return Array.from({ length: count }, (_, index) => items[Math.floor((index * items.length) / count)]!);
}

export async function runPreflight(
  session: EvaluationSession,
  prompts: { harmful: readonly Conversation[]; harmless: readonly Conversation[] },
  options: PreflightSettings & LongCallOptions = {},
): Promise<PreflightReport> {
  if (prompts.harmful.length === 0 || prompts.harmless.length === 0) throw new InvalidInputError('The preflight needs prompts in both A and B.');
  const reporter = new ProgressReporter('preflight', options.onProgress);
  const markers = resolveMarkers(options.markers);
  const actionKeys = resolveActionKeys(options.actionKeys);
  const files = await loadTokenizerFiles(session.folder);
  const chat = createChatTokenizer(files);
  const unknown = unknownTokenOf(files.tokenizerJson);
  const contextLength = contextLengthOf(JSON.parse(await session.folder.readText('config.json')) as Record<string, unknown>);

  let tokens = 0;
  let unknownTokens = 0;
  const fits = (conversation: Conversation) => {
    const ids = chat.encodeChat(conversation);
    tokens += ids.length;
    if (unknown) unknownTokens += ids.filter((id) => id === unknown.id).length;
    return contextLength === null || ids.length < contextLength;
  };
  const fittingA = prompts.harmful.filter(fits);
  const fittingB = prompts.harmless.filter(fits);
  const all = prompts.harmful.length + prompts.harmless.length;
  const tooLong = all - fittingA.length - fittingB.length;

  const firstIds = chat.encodeChat(prompts.harmful[0]!);
  const position = options.position ?? -1;
  const capturedIndex = position < 0 ? firstIds.length + position : position;
  const template = {
    tokens: firstIds.map((id) => chat.decode([id])),
    capturedIndex: Math.min(Math.max(capturedIndex, 0), firstIds.length - 1),
    unknownIndices: unknown ? firstIds.flatMap((id, index) => (id === unknown.id ? [index] : [])) : [],
  };
  reporter.report(0.05, 'tokenization checked');

  const count = options.samplePrompts ?? DEFAULT_PREFLIGHT_SAMPLES;
  const sampleA = spread(fittingA, count);
  const sampleB = spread(fittingB, count);
  const maxNewTokens = options.maxNewTokens ?? DEFAULT_PREFLIGHT_MAX_NEW_TOKENS;
  const generations = sampleA.length + sampleB.length === 0 ? [] : await session.base.generateBatch([...sampleA, ...sampleB], {
    maxNewTokens,
    ...(options.signal ? { signal: options.signal } : {}),
    onProgress: progressSlice(reporter, 0.05, 1, 'base replies'),
  });
  const samples: PreflightSample[] = generations.map((generation, index) => ({
    set: index < sampleA.length ? 'A' : 'B',
    messages: index < sampleA.length ? sampleA[index]! : sampleB[index - sampleA.length]!,
    response: generation.text,
    refused: classifyRefusal(generation.text, markers).refused,
    action: classifyAction(generation.text, actionKeys).action,
  }));
  const rate = (set: 'A' | 'B', flag: 'refused' | 'action') => {
    const part = samples.filter((sample) => sample.set === set);
    return part.length === 0 ? 0 : part.filter((sample) => sample[flag]).length / part.length;
  };
  const figures: PreflightFigures = {
    unknownTokenRate: unknown && tokens > 0 ? unknownTokens / tokens : null,
    truncationRate: tooLong / all,
    refusalRateA: rate('A', 'refused'),
    refusalRateB: rate('B', 'refused'),
    actionRateB: sampleB.length ? actionRate(samples.filter((sample) => sample.set === 'B')) : 0,
  };
  reporter.done();
  return {
    figures,
    counts: { prompts: all, tokens, unknownTokens, tooLong, sampledA: sampleA.length, sampledB: sampleB.length },
    template,
    unknownToken: unknown?.token ?? null,
    contextLength,
    samples,
    warnings: preflightWarnings(figures),
  };
}
