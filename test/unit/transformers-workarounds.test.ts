/**
 * The two transformers.js generation corrections for the Qwen-VL family (src/engine/transformers-workarounds.ts),
 * on hand-made tensors: HF's rope deltas from left-padded prefill positions, and the padding guard's masks.
 * End to end (generation equal to a float64 reference) they are exercised by test/integration/genai-eval.test.ts.
 */
import { Tensor } from '@huggingface/transformers';
import { describe, expect, it } from 'vitest';
import { LeftPaddingGuard, correctTextOnlyRopeDeltas, textOnlyRopeDeltas } from '../../src/engine/transformers-workarounds';

/** transformers.js's text-only positions for a left-padded mask: cumulative count − 1, padding filled with 1. */
function prefillPositions(mask: number[][]): Tensor {
  const rows = mask.map((row) => {
    let count = 0;
    return row.map((bit) => (bit ? BigInt(count++) : 1n));
  });
  const flat = rows.flat();
  return new Tensor('int64', BigInt64Array.from([...flat, ...flat, ...flat]), [3, mask.length, mask[0].length]);
}

function maskTensor(mask: number[][]): Tensor {
  return new Tensor('int64', BigInt64Array.from(mask.flat().map(BigInt)), [mask.length, mask[0].length]);
}

describe('text-only mRoPE rope deltas', () => {
  it('gives HF deltas max + 1 − length, so the first new token of a row with n real tokens sits at position n', () => {
    const mask = [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]];
    const deltas = textOnlyRopeDeltas(prefillPositions(mask), maskTensor(mask));
    expect(deltas.dims).toEqual([3, 1]);
    expect(Array.from(deltas.data as BigInt64Array, Number)).toEqual([0, -2, -4]);
    // Decoding uses past_length + delta; past_length is the padded prefill length 5.
    expect(Array.from(deltas.data as BigInt64Array, (delta) => 5 + Number(delta))).toEqual([5, 3, 1]);
    // Without the mask the 1 written into padding counts (HF's formula): the one-token row would start at 2.
    expect(Array.from(textOnlyRopeDeltas(prefillPositions(mask)).data as BigInt64Array, Number)).toEqual([0, -2, -3]);
  });

  it('replaces the deltas of a model that has the text-only index and leaves its positions alone', () => {
    const positions = prefillPositions([[0, 1, 1]]);
    const model = { _get_text_only_rope_index: (_ids?: Tensor, _mask?: Tensor) => [positions, new Tensor('int64', BigInt64Array.from([7n]), [1, 1])] as [Tensor, Tensor] };
    expect(correctTextOnlyRopeDeltas(model)).toBe(true);
    const [kept, deltas] = model._get_text_only_rope_index(undefined, maskTensor([[0, 1, 1]]));
    expect(kept).toBe(positions);
    expect(Array.from(deltas.data as BigInt64Array, Number)).toEqual([-1]); // real positions 0, 1: max 1, + 1 − 3
    expect(correctTextOnlyRopeDeltas({})).toBe(false);
  });

  it('rejects positions that are not [3, batch, sequence]', () => {
    expect(() => textOnlyRopeDeltas(new Tensor('int64', new BigInt64Array(4), [2, 2]))).toThrow(RangeError);
  });
});

describe('LeftPaddingGuard', () => {
  function fakeModel() {
    const seen: number[][] = [];
    const session = {
      inputNames: ['inputs_embeds', 'attention_mask'],
      async run(feeds: { attention_mask?: { dims: number[]; data: BigInt64Array } }) {
        seen.push(Array.from(feeds.attention_mask?.data ?? [], Number));
        return {};
      },
    };
    const embed = { inputNames: ['input_ids'], run: async () => ({}) };
    return { model: { sessions: { decoder_model_merged: session, embed_tokens: embed } }, session, seen };
  }
  const allOnes = (rows: number, columns: number) => ({ attention_mask: { dims: [rows, columns], data: new BigInt64Array(rows * columns).fill(1n) } });

  it('zeroes each row’s left padding in every mask while active, as transformers.js’s cached steps rebuild it as ones', async () => {
    const { model, session, seen } = fakeModel();
    const guard = new LeftPaddingGuard(model);
    await guard.during([0, 2], async () => {
      await session.run(allOnes(2, 4)); // prefill-sized
      await session.run(allOnes(2, 5)); // one decode step later
    });
    expect(seen).toEqual([
      [1, 1, 1, 1, 0, 0, 1, 1],
      [1, 1, 1, 1, 1, 0, 0, 1, 1, 1],
    ]);
  });

  it('changes nothing outside `during`, for another batch size, or for sessions without a mask', async () => {
    const { model, session, seen } = fakeModel();
    const guard = new LeftPaddingGuard(model);
    await session.run(allOnes(1, 3));
    await guard.during([1, 1], () => session.run(allOnes(3, 2)));
    await expect(guard.during([1], () => model.sessions.embed_tokens.run())).resolves.toEqual({});
    expect(seen).toEqual([[1, 1, 1], [1, 1, 1, 1, 1, 1]]);
  });
});
