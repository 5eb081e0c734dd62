/**
 * The tokenizer side of generation: chat template with generation prompt → token ids, ids → text, and the
 * ids that end a reply. Loaded once per folder and shared by the base and the ablated model, so both see the
 * same prompt tokens.
 */
import { AutoTokenizer, type PreTrainedTokenizer } from '@huggingface/transformers';
import type { ModelFolder } from '../platform/folder';
import { InvalidFileError, InvalidInputError } from '../protocol/errors';
import { registerModelFiles } from './transformers-files';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
export type Conversation = ChatMessage[];

export interface ChatTokenizer {
  /** The chat template rendered with the generation prompt, tokenized without extra special tokens (as HF does). */
  encodeConversation(conversation: Conversation): number[];
  /** Text of generated ids, special tokens skipped. */
  decode(tokenIds: number[]): string;
  /** Ids that end a reply: generation_config.json's eos_token_id, else config.json's, else the tokenizer's. */
  readonly eosTokenIds: number[];
  /** Left padding for batches (masked out, so its value never matters for the result). */
  readonly padTokenId: number;
}

function idList(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((entry): entry is number => typeof entry === 'number');
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

/** Wraps a transformers.js tokenizer; the folder's configs decide the stop tokens. */
export class TransformersChatTokenizer implements ChatTokenizer {
  constructor(
    private readonly tokenizer: PreTrainedTokenizer,
    readonly eosTokenIds: number[],
    readonly padTokenId: number,
  ) {}

  encodeConversation(conversation: Conversation): number[] {
    const ids = this.tokenizer.apply_chat_template(conversation, { add_generation_prompt: true, tokenize: true, return_tensor: false, return_dict: false });
    return Array.from(ids as unknown as ArrayLike<number>, Number);
  }

  decode(tokenIds: number[]): string {
    return this.tokenizer.decode(tokenIds, { skip_special_tokens: true });
  }
}

export async function loadChatTokenizer(folder: ModelFolder): Promise<ChatTokenizer> {
  const files = folder.list();
  if (!files.includes('tokenizer.json')) throw new InvalidInputError(`${folder.name}: has no tokenizer.json; generation needs the model's tokenizer.`);
  const served = registerModelFiles(folder);
  let tokenizer: PreTrainedTokenizer;
  try {
    tokenizer = await AutoTokenizer.from_pretrained(served.modelId);
  } finally {
    served.release();
  }
  const generationConfig = await readJsonIfPresent(folder, 'generation_config.json');
  const config = await readJsonIfPresent(folder, 'config.json');
  const fromTokenizer = typeof tokenizer.eos_token_id === 'number' ? [tokenizer.eos_token_id] : [];
  const eosTokenIds = [...new Set([...idList(generationConfig?.eos_token_id), ...idList(config?.eos_token_id), ...fromTokenizer])];
  if (eosTokenIds.length === 0) throw new InvalidInputError(`${folder.name}: no end-of-sequence token id in generation_config.json, config.json or the tokenizer; generation would never stop.`);
  const padTokenId = idList(generationConfig?.pad_token_id)[0] ?? idList(config?.pad_token_id)[0] ?? (typeof tokenizer.pad_token_id === 'number' ? tokenizer.pad_token_id : eosTokenIds[0]!);
  if (typeof tokenizer.chat_template !== 'string' && !tokenizer.chat_template) {
    throw new InvalidInputError(`${folder.name}: the tokenizer has no chat template; prompts cannot be formatted as a chat.`);
  }
  return new TransformersChatTokenizer(tokenizer, eosTokenIds, padTokenId);
}
