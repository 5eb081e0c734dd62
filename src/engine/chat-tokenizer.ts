/**
 * The tokenizer side of generation. Prompts are encoded by the capture engine's tokenizer (tokenize.ts), so
 * generation sees exactly the token ids whose residuals gave the direction; this adds what generation needs
 * on top: the ids that end a reply, and decoding of the reply alone. Loaded once per folder and shared by the
 * base and the ablated model.
 */
import type { PromptMessage } from '../formats/prompts';
import type { ModelFolder } from '../ports/folder';
import { InvalidFileError, InvalidInputError } from '../base/errors';
import { loadChatTokenizer, type ChatTokenizer } from './tokenize';

export type ChatMessage = PromptMessage;
export type Conversation = readonly ChatMessage[];

export interface GenerationTokenizer {
  /** The chat template rendered with the generation prompt, tokenized as capture does. */
  encodeConversation(conversation: Conversation): number[];
  /** Text of generated ids (the caller has already cut the reply at its end-of-sequence token). */
  decode(tokenIds: readonly number[]): string;
  /** Ids that end a reply: generation_config.json's eos_token_id, and config.json's. */
  readonly eosTokenIds: number[];
  /** Left padding for batches (masked out, so its value never changes a result). */
  readonly padTokenId: number;
}

function idList(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((entry): entry is number => Number.isInteger(entry));
  return [];
}

async function readJsonIfPresent(folder: ModelFolder, path: string): Promise<Record<string, unknown> | null> {
  if (!folder.list().includes(path)) return null;
  const text = await folder.readText(path);
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidFileError(`${folder.name}/${path}`, `is not valid JSON (${(error as Error).message}).`);
  }
}

/** Adds stop tokens (from the folder's configs) to a chat tokenizer. */
export function generationTokenizer(chat: ChatTokenizer, eosTokenIds: number[]): GenerationTokenizer {
  return {
    encodeConversation: (conversation) => chat.encodeChat(conversation),
    decode: (tokenIds) => chat.decode(tokenIds),
    eosTokenIds,
    padTokenId: chat.padTokenId,
  };
}

export async function loadGenerationTokenizer(folder: ModelFolder): Promise<GenerationTokenizer> {
  const chat = await loadChatTokenizer(folder);
  const generationConfig = await readJsonIfPresent(folder, 'generation_config.json');
  const config = await readJsonIfPresent(folder, 'config.json');
  const textConfig = (config?.text_config as Record<string, unknown> | undefined) ?? null;
  const eosTokenIds = [...new Set([...idList(generationConfig?.eos_token_id), ...idList(config?.eos_token_id), ...idList(textConfig?.eos_token_id)])];
  if (eosTokenIds.length === 0) {
    throw new InvalidInputError(`${folder.name}: no eos_token_id in generation_config.json or config.json; generation would never stop.`);
  }
  return generationTokenizer(chat, eosTokenIds);
}
