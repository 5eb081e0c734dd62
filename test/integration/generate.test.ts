/**
 * Generation on toy-llama (a model that learned to refuse) through transformers.js: greedy output equals the
 * PyTorch reference, streaming, batching, seeded sampling, cancellation and the context check.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanguageModel, loadGenerationTokenizer, type Conversation, type GenerationTokenizer } from '../../src/engine/generate';
import { EvaluationSession } from '../../src/engine/evaluate';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { CancelledError, InvalidInputError } from '../../src/base/errors';
import { TOY_LLAMA_DIR } from '../helpers/fixtures';

const TOY = TOY_LLAMA_DIR;
const reference = JSON.parse(readFileSync(`${TOY}/REFERENCE.json`, 'utf8')) as {
  direction: number[];
  samples: Record<string, { messages: Conversation; base: string; abliterated: string }[]>;
};
const prompts = (file: string): Conversation[] =>
  readFileSync(`${TOY}/prompts/${file}`, 'utf8').trim().split('\n').map((line) => JSON.parse(line).messages as Conversation);

let tokenizer: GenerationTokenizer;
let model: LanguageModel;

beforeAll(async () => {
  const folder = await openNodeModelFolder(TOY);
  tokenizer = await loadGenerationTokenizer(folder);
  model = await LanguageModel.load(folder, tokenizer);
});
afterAll(async () => {
  await model?.dispose();
});

describe('greedy generation on toy-llama', () => {
  it('reproduces the PyTorch reference replies for harmful and harmless prompts', async () => {
    const samples = [...reference.samples.harmful!, ...reference.samples.harmless!];
    expect(samples.length).toBeGreaterThanOrEqual(6);
    for (const sample of samples) {
      const generation = await model.generate(sample.messages, { maxNewTokens: 48 });
      expect(generation.text).toBe(sample.base);
      expect(generation.finishReason).toBe('eos');
    }
  });

  it('streams text deltas that add up to the reply, one event per generated token', async () => {
    const pieces: string[] = [];
    const generation = await model.generate(reference.samples.harmless![0]!.messages, { onToken: (event) => pieces.push(event.text) });
    expect(pieces.length).toBe(generation.tokenIds.length);
    expect(pieces.join('')).toBe(generation.text);
  });

  it('gives the same replies batched (left-padded) as one at a time', async () => {
    const mixed = [...prompts('harmful_test.jsonl').slice(0, 5), ...prompts('shell_agent_test.jsonl').slice(0, 5)];
    const batched = await model.generateBatch(mixed, { batchSize: 10 });
    for (const [index, conversation] of mixed.entries()) {
      const single = await model.generate(conversation);
      expect(batched[index]!.tokenIds).toEqual(single.tokenIds);
    }
  });

  it('reproduces the reference abliterated replies with the hook graph of the reference direction', async () => {
    const session = await EvaluationSession.open(await openNodeModelFolder(TOY));
    const ablated = await session.loadAblated({ direction: Float32Array.from(reference.direction), scale: 1, targets: ['embed', 'attn', 'mlp'] });
    try {
      for (const sample of [...reference.samples.harmful!, ...reference.samples.harmless!]) {
        expect((await ablated.generate(sample.messages)).text).toBe(sample.abliterated);
      }
    } finally {
      await ablated.dispose();
      await session.dispose();
    }
  });
});

describe('sampling', () => {
  const conversation = prompts('harmless_test.jsonl')[3]!;

  it('is reproducible for a seed and varies across seeds', async () => {
    const first = await model.generate(conversation, { temperature: 1.5, seed: 11 });
    const again = await model.generate(conversation, { temperature: 1.5, seed: 11 });
    expect(again.tokenIds).toEqual(first.tokenIds);
    const others = await Promise.all([12, 13, 14, 15].map((seed) => model.generate(conversation, { temperature: 1.5, seed })));
    expect(others.some((other) => other.text !== first.text)).toBe(true);
  });

  it('equals greedy decoding when top-p keeps only the most likely token', async () => {
    const greedy = await model.generate(conversation);
    const nucleus = await model.generate(conversation, { temperature: 1, topP: 1e-9, seed: 5 });
    expect(nucleus.tokenIds).toEqual(greedy.tokenIds);
  });

  it('rejects invalid settings with a clear error', async () => {
    await expect(model.generate(conversation, { temperature: -1 })).rejects.toThrow(InvalidInputError);
    await expect(model.generate(conversation, { topP: 0 })).rejects.toThrow(/top-p/);
    await expect(model.generate(conversation, { maxNewTokens: 0 })).rejects.toThrow(/max new tokens/);
  });
});

describe('cancellation and limits', () => {
  it('stops generation promptly when the signal fires mid-reply', async () => {
    const controller = new AbortController();
    let streamed = 0;
    const pending = model.generate(prompts('harmless_test.jsonl')[0]!, {
      maxNewTokens: 200,
      signal: controller.signal,
      onToken: () => {
        streamed++;
        if (streamed === 2) controller.abort();
      },
    });
    await expect(pending).rejects.toThrow(CancelledError);
    // The abort is seen at the next step's stopping check: at most one more token after the one that aborted.
    expect(streamed).toBeLessThanOrEqual(3);
  });

  it('does not start when the signal has already fired', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(model.generate(prompts('harmless_test.jsonl')[0]!, { signal: controller.signal })).rejects.toThrow(CancelledError);
    await expect(model.generateBatch(prompts('harmless_test.jsonl').slice(0, 3), { signal: controller.signal })).rejects.toThrow(CancelledError);
  });

  it('refuses a prompt longer than the context (max_position_embeddings 256) with a clear error', async () => {
    const long: Conversation = [{ role: 'user', content: Array.from({ length: 300 }, () => 'please').join(' ') }];
    expect(tokenizer.encodeConversation(long).length).toBeGreaterThan(256);
    await expect(model.generate(long)).rejects.toThrow(/is \d+ tokens long, but the model's context \(max_position_embeddings\) is 256 tokens/);
    await expect(model.nextTokenLogits([long])).rejects.toThrow(InvalidInputError);
  });

  it('cuts the reply budget to the room left in the context', async () => {
    const nearlyFull: Conversation = [{ role: 'user', content: Array.from({ length: 245 }, () => 'please').join(' ') }];
    const length = tokenizer.encodeConversation(nearlyFull).length;
    expect(length).toBeLessThan(256);
    const generation = await model.generate(nearlyFull, { maxNewTokens: 48 });
    expect(generation.tokenIds.length).toBeLessThanOrEqual(256 - length);
    expect(['eos', 'context']).toContain(generation.finishReason);
  });
});
