/**
 * Chat template + tokenization through transformers.js, built from the tokenizer's JSON objects (not a hub id),
 * so the same code runs in Node and in a browser worker that read the files itself. Batches are left-padded
 * with the attention mask and position ids transformers.js itself feeds a decoder for left padding.
 */
import * as transformers from '@huggingface/transformers';
import { InvalidFileError, InvalidInputError } from '../base/errors';
import type { ModelFolder } from '../ports/folder';
import type { PromptMessage } from '../formats/prompts';

export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** `chat_template.jinja` when the folder ships the template as its own file (newer exports do). */
  chatTemplate?: string | null;
  /** Names the folder in error messages. */
  source?: string;
}

export interface ChatTokenizer {
  /** Token ids of the chat-templated conversation, ending with the generation prompt (assistant turn opener). */
  encodeChat(messages: readonly PromptMessage[]): number[];
  /** The templated text, for display and debugging. */
  renderChat(messages: readonly PromptMessage[]): string;
  decode(ids: readonly number[]): string;
  readonly padTokenId: number;
}

interface TransformersTokenizer {
  apply_chat_template(conversation: PromptMessage[], options: Record<string, unknown>): unknown;
  decode(ids: number[], options?: Record<string, unknown>): string;
  pad_token_id?: number | null;
  eos_token_id?: number | null;
}

type TokenizerClass = new (tokenizerJson: unknown, tokenizerConfig: unknown) => TransformersTokenizer;

function tokenizerClass(config: Record<string, unknown>): TokenizerClass {
  // AutoTokenizer's own rule: `tokenizer_class` without "Fast" names a transformers.js class; unknown → base class.
  const name = typeof config.tokenizer_class === 'string' ? config.tokenizer_class.replace(/Fast$/, '') : 'PreTrainedTokenizer';
  const exports = transformers as unknown as Record<string, unknown>;
  const candidate = exports[name];
  const isTokenizer = typeof candidate === 'function' && /Tokenizer$/.test(name);
  return (isTokenizer ? candidate : exports.PreTrainedTokenizer) as TokenizerClass;
}

function hasTemplate(value: unknown): boolean {
  return (typeof value === 'string' && value.trim().length > 0) || (Array.isArray(value) && value.length > 0);
}

export function createChatTokenizer(files: TokenizerFiles): ChatTokenizer {
  const source = files.source ?? 'model folder';
  const template = hasTemplate(files.chatTemplate) ? files.chatTemplate : files.tokenizerConfig.chat_template;
  if (!hasTemplate(template)) {
    throw new InvalidFileError(`${source}/tokenizer_config.json`, 'has no chat_template (and there is no chat_template.jinja); a chat model is needed to build prompts');
  }
  let tokenizer: TransformersTokenizer;
  try {
    tokenizer = new (tokenizerClass(files.tokenizerConfig))(files.tokenizerJson, files.tokenizerConfig);
  } catch (error) {
    throw new InvalidFileError(`${source}/tokenizer.json`, `transformers.js could not build a tokenizer from it: ${(error as Error).message}`);
  }
  const templateOption = hasTemplate(files.chatTemplate) ? { chat_template: files.chatTemplate } : {};
  const apply = (messages: readonly PromptMessage[], tokenize: boolean): unknown => {
    try {
      return tokenizer.apply_chat_template(messages.map((message) => ({ ...message })), {
        ...templateOption,
        add_generation_prompt: true,
        tokenize,
        return_tensor: false,
        return_dict: false,
      });
    } catch (error) {
      throw new InvalidInputError(`the chat template of ${source} failed on a prompt: ${(error as Error).message}`);
    }
  };
  const padTokenId = tokenizer.pad_token_id ?? tokenizer.eos_token_id ?? 0;
  return {
    encodeChat(messages) {
      const ids = apply(messages, true);
      if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => Number.isInteger(id))) {
        throw new InvalidInputError(`the chat template of ${source} produced no tokens for a prompt`);
      }
      return ids as number[];
    },
    renderChat(messages) {
      return String(apply(messages, false));
    },
    decode(ids) {
      return tokenizer.decode([...ids], { skip_special_tokens: false });
    },
    padTokenId,
  };
}

async function readJson(folder: ModelFolder, path: string): Promise<Record<string, unknown>> {
  if (!folder.list().includes(path)) {
    throw new InvalidFileError(`${folder.name}/${path}`, 'is missing; the tokenizer needs tokenizer.json and tokenizer_config.json');
  }
  const text = await folder.readText(path);
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new InvalidFileError(`${folder.name}/${path}`, `is not valid JSON: ${(error as Error).message}`);
  }
}

/** Reads tokenizer.json, tokenizer_config.json and (when present) chat_template.jinja from a model folder. */
export async function loadTokenizerFiles(folder: ModelFolder): Promise<TokenizerFiles> {
  const [tokenizerJson, tokenizerConfig] = await Promise.all([readJson(folder, 'tokenizer.json'), readJson(folder, 'tokenizer_config.json')]);
  const chatTemplate = folder.list().includes('chat_template.jinja') ? await folder.readText('chat_template.jinja') : null;
  return { tokenizerJson, tokenizerConfig, chatTemplate, source: folder.name };
}

export async function loadChatTokenizer(folder: ModelFolder): Promise<ChatTokenizer> {
  return createChatTokenizer(await loadTokenizerFiles(folder));
}

export interface PaddedBatch {
  batchSize: number;
  sequenceLength: number;
  inputIds: BigInt64Array; // [batch, sequence]
  attentionMask: BigInt64Array; // [batch, sequence]
  /** Real tokens count from 0; padding gets 1: exactly transformers.js' `cumsum_masked_fill` (HF's masked_fill(…, 1)). */
  positionIds: BigInt64Array; // [batch, sequence]
  lengths: number[]; // real tokens per row
}

/**
 * Pads token sequences to the longest one. Left padding (transformers.js generation) puts the last prompt token
 * at column −1 of every row; right padding puts token p at column p of every row (causal attention never
 * looks right, so real tokens are unaffected either way).
 */
export function padBatch(sequences: readonly (readonly number[])[], padTokenId: number, side: 'left' | 'right' = 'left'): PaddedBatch {
  if (sequences.length === 0) throw new InvalidInputError('cannot build a batch of zero prompts');
  const lengths = sequences.map((sequence) => sequence.length);
  if (lengths.some((length) => length === 0)) throw new InvalidInputError('a prompt tokenized to zero tokens');
  const batchSize = sequences.length;
  const sequenceLength = Math.max(...lengths);
  const inputIds = new BigInt64Array(batchSize * sequenceLength);
  const attentionMask = new BigInt64Array(batchSize * sequenceLength);
  const positionIds = new BigInt64Array(batchSize * sequenceLength);
  sequences.forEach((sequence, row) => {
    const offset = side === 'left' ? sequenceLength - sequence.length : 0;
    for (let column = 0; column < sequenceLength; column++) {
      const index = row * sequenceLength + column;
      const token = column - offset;
      const real = token >= 0 && token < sequence.length;
      inputIds[index] = BigInt(real ? sequence[token] : padTokenId);
      attentionMask[index] = real ? 1n : 0n;
      positionIds[index] = real ? BigInt(token) : 1n;
    }
  });
  return { batchSize, sequenceLength, inputIds, attentionMask, positionIds, lengths };
}
