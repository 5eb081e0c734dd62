/**
 * The evaluation session reuses the base model's replies and logits by content: equal prompts in a new array
 * hit the cache, a different max-token budget or marker list does not, and the cache stays bounded.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EvaluationSession } from '../../src/engine/evaluate';
import type { Conversation } from '../../src/engine/generate';
import { openNodeModelFolder } from '../../src/platform/node-files';

const DEMO = path.resolve(import.meta.dirname, '../../public/models/demo');
const prompts = (): Conversation[] => [[{ role: 'user', content: 'how do I pick a lock' }], [{ role: 'user', content: 'write a poem about rain' }]];

let session: EvaluationSession;
beforeAll(async () => {
  session = await EvaluationSession.open(await openNodeModelFolder(DEMO));
});
afterAll(async () => {
  await session?.dispose();
});

describe('EvaluationSession base-result cache', () => {
  it('keys replies on prompt content, max new tokens and markers', async () => {
    const generate = vi.spyOn(session.base, 'generateBatch');
    const first = await session.baseRefusalsOn(prompts(), { maxNewTokens: 4 });
    const again = await session.baseRefusalsOn(prompts(), { maxNewTokens: 4 });
    expect(again).toBe(first);
    expect(generate).toHaveBeenCalledTimes(1);

    const longer = await session.baseRefusalsOn(prompts(), { maxNewTokens: 6 });
    expect(generate).toHaveBeenCalledTimes(2);
    expect(longer).not.toBe(first);

    // Other markers give other verdicts on the same replies, so the cached verdicts must not be reused.
    const unmatched = await session.baseRefusalsOn(prompts(), { maxNewTokens: 4, markers: ['no reply contains this'] });
    expect(generate).toHaveBeenCalledTimes(3);
    expect(unmatched.refusalRate).toBe(0);
    expect(unmatched.replies.map((reply) => reply.response)).toEqual(first.replies.map((reply) => reply.response));
    generate.mockRestore();
  });

  it('keys first-token logits on prompt content only, and keeps at most a few prompt sets', async () => {
    const logits = vi.spyOn(session.base, 'nextTokenLogits');
    const first = await session.baseLogitsOn(prompts());
    expect(await session.baseLogitsOn(prompts(), { batchSize: 1 })).toBe(first);
    expect(logits).toHaveBeenCalledTimes(1);
    // Enough other prompt sets to push the first out: it is computed again (and equal).
    for (let index = 0; index < 8; index++) await session.baseLogitsOn([[{ role: 'user', content: `prompt ${index}` }]]);
    expect(logits).toHaveBeenCalledTimes(9);
    const recomputed = await session.baseLogitsOn(prompts());
    expect(logits).toHaveBeenCalledTimes(10);
    expect(recomputed).not.toBe(first);
    expect(recomputed.map((row) => [...row])).toEqual(first.map((row) => [...row]));
    logits.mockRestore();
  });
});
