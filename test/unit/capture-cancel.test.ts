/**
 * A capture of thousands of prompts moves its progress bar and answers Cancel while it is still applying the chat
 * template, before any forward pass: the UI's Cancel must not wait for the whole set to be tokenized.
 */
import { describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/base/errors';
import type { Progress } from '../../src/base/progress';
import { captureActivations, type CaptureSession } from '../../src/engine/capture';
import type { ChatTokenizer } from '../../src/engine/tokenize';
import type { PromptRecord } from '../../src/formats/prompts';
import type { OnnxSession } from '../../src/ports/onnx-session';

const PROMPTS = 5000;
const HIDDEN = 3;

function fakeTokenizer(counter: { calls: number }): ChatTokenizer {
  return {
    encodeChat(messages) {
      counter.calls++;
      return [1, 2, messages[0].content.length % 7, 4];
    },
    renderChat: (messages) => messages.map((message) => message.content).join('\n'),
    decode: (ids) => ids.join(' '),
    padTokenId: 0,
  };
}

/** One layer output per name, each row's residual equal to its first token id (enough to see rows land). */
function fakeCapture(runs: { count: number }): CaptureSession {
  const session = {
    inputs: [{ name: 'input_ids', type: 'int64', dims: [-1, -1] }],
    outputs: [],
    async run(feeds: Record<string, { dims: readonly number[] }>) {
      runs.count++;
      const rows = feeds.input_ids.dims[0];
      const result: Record<string, { type: 'float32'; dims: number[]; data: Float32Array }> = {};
      for (const name of ['h0', 'h1']) result[name] = { type: 'float32', dims: [rows, 1, HIDDEN], data: new Float32Array(rows * HIDDEN).fill(1) };
      return result;
    },
    async release() {},
  } as unknown as OnnxSession;
  return { session, embedSession: null, outputNames: ['h0', 'h1'], layerCount: 2, positions: [-1], style: 'fake', notes: [], release: async () => {} };
}

const prompts: PromptRecord[] = Array.from({ length: PROMPTS }, (_, index) => ({ messages: [{ role: 'user', content: `prompt ${index}` }] }));

describe('capture of a large prompt set', () => {
  it('reports progress while tokenizing and stops there when cancelled: no forward pass, not every prompt tokenized', async () => {
    const counter = { calls: 0 };
    const runs = { count: 0 };
    const controller = new AbortController();
    const events: Progress[] = [];
    const capture = captureActivations(fakeCapture(runs), fakeTokenizer(counter), prompts, {
      label: 'harmful',
      signal: controller.signal,
      onProgress: (event) => {
        events.push(event);
        // Cancel at the first sign of life, as a user who clicks Cancel when the bar starts to move.
        if (event.status === 'progress' && event.fraction > 0) controller.abort();
      },
    });
    await expect(capture).rejects.toBeInstanceOf(CancelledError);
    expect(runs.count).toBe(0);
    expect(counter.calls).toBeGreaterThan(0);
    expect(counter.calls).toBeLessThan(PROMPTS);
    expect(events.some((event) => event.status === 'progress' && event.detail?.includes('tokenized'))).toBe(true);
  });

  it('without a cancel, tokenizes every prompt once and ends at fraction 1 with fractions that never go back', async () => {
    const counter = { calls: 0 };
    const runs = { count: 0 };
    const fractions: number[] = [];
    const result = await captureActivations(fakeCapture(runs), fakeTokenizer(counter), prompts.slice(0, 300), {
      label: 'harmful',
      batchSize: 64,
      onProgress: (event) => event.status === 'progress' && fractions.push(event.fraction),
    });
    expect(counter.calls).toBe(300);
    expect(runs.count).toBe(Math.ceil(300 / 64));
    expect(result.promptCount).toBe(300);
    expect(fractions.at(-1)).toBe(1);
    for (let index = 1; index < fractions.length; index++) expect(fractions[index]).toBeGreaterThanOrEqual(fractions[index - 1]);
  });
});
