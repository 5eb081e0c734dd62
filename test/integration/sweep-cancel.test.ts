/**
 * A cancelled layer sweep keeps what it measured: with `keepFinished` (the panel's sweep), a cancel after the
 * first layer returns that layer's row — the same figures as a sweep of that layer alone — and names the layers
 * not reached; a cancel before any layer finished, or without `keepFinished` (the CLI), still throws.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/base/errors';
import { EvaluationSession } from '../../src/engine/evaluate';
import type { Conversation } from '../../src/engine/generate';
import { sweepLayers } from '../../src/engine/layer-sweep';
import { openNodeModelFolder } from '../../src/platform/node-files';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO = path.join(ROOT, 'public/models/demo');
const PROMPTS = path.join(ROOT, 'public/prompts');

const readPrompts = async (file: string, count: number): Promise<Conversation[]> =>
  (await readFile(path.join(PROMPTS, file), 'utf8'))
    .trim()
    .split('\n')
    .slice(0, count)
    .map((line) => JSON.parse(line) as { prompt: string; system?: string })
    .map((row) => [...(row.system ? [{ role: 'system' as const, content: row.system }] : []), { role: 'user' as const, content: row.prompt }]);

/** A unit vector along coordinate `axis`: a valid direction row that leaves the planted one alone. */
function axis(size: number, index: number): Float32Array {
  const row = new Float32Array(size);
  row[index] = 1;
  return row;
}

let session: EvaluationSession;
let directions: Float32Array[];
let prompts: { harmful: Conversation[]; harmless: Conversation[] };
beforeAll(async () => {
  session = await EvaluationSession.open(await openNodeModelFolder(DEMO));
  const planted = (JSON.parse(await readFile(path.join(DEMO, 'planted_direction.json'), 'utf8')) as { direction: number[] }).direction;
  const norm = Math.hypot(...planted);
  // [layer] → [dModel]: layer 1 an axis, layer 2 the planted direction, layer 3 another axis.
  directions = [new Float32Array(planted.length), axis(planted.length, 0), Float32Array.from(planted, (value) => value / norm), axis(planted.length, 1)];
  prompts = { harmful: await readPrompts('harmful.test.jsonl', 4), harmless: await readPrompts('harmless.test.jsonl', 4) };
});
afterAll(async () => {
  await session?.dispose();
});

describe('layer sweep cancel', () => {
  it('keeps the finished layers, with the figures a sweep of that layer alone gives', async () => {
    const controller = new AbortController();
    const partial = await sweepLayers(session, directions, prompts, {
      candidateLayers: [2, 1, 3],
      maxNewTokens: 8,
      keepFinished: true,
      signal: controller.signal,
      onProgress: (event) => {
        if (event.status === 'progress' && event.detail === 'layer 2 done') controller.abort();
      },
    });
    expect(partial.rows.map((row) => row.layer)).toEqual([2]);
    expect(partial.cancelled).toEqual({ notSwept: [1, 3] });
    expect(partial.recommendation?.layer).toBe(2);

    const alone = await sweepLayers(session, directions, prompts, { candidateLayers: [2], maxNewTokens: 8 });
    expect(alone.cancelled).toBeUndefined();
    expect(partial.rows[0]!.refusalRate).toBe(alone.rows[0]!.refusalRate);
    expect(partial.rows[0]!.klFirstToken).toBe(alone.rows[0]!.klFirstToken);
    expect(partial.baseRefusalRate).toBe(alone.baseRefusalRate);
  });

  it('still throws when cancelled before any layer finished, or without keepFinished', async () => {
    const early = new AbortController();
    early.abort();
    await expect(sweepLayers(session, directions, prompts, { candidateLayers: [2, 1], maxNewTokens: 8, keepFinished: true, signal: early.signal })).rejects.toThrow(CancelledError);

    const late = new AbortController();
    const cli = sweepLayers(session, directions, prompts, {
      candidateLayers: [2, 1],
      maxNewTokens: 8,
      signal: late.signal,
      onProgress: (event) => {
        if (event.status === 'progress' && event.detail === 'layer 2 done') late.abort();
      },
    });
    await expect(cli).rejects.toThrow(CancelledError);
  });
});
