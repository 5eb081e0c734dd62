/**
 * Two corrections to transformers.js 4.3.1's generation for the Qwen-VL family (Qwen2-VL … Qwen3-VL, Qwen3.5),
 * found by generating with a Qwen3.5-style export against a float64 reference (test/integration/genai-eval.test.ts).
 *
 * 1. Text-only mRoPE positions. During generation each new token's position is `past_length + rope_delta`, with the per-row delta computed
 * at prefill. Hugging Face defines delta = max(prefill position of the row) + 1 − prefill length, so the first
 * new token of a prompt with n real tokens gets position n. transformers.js's `_get_text_only_rope_index` adds
 * the length instead of subtracting it, so every token after the first generated one sat 2·length positions too
 * far and Qwen3.5 replies drifted after one token (the multimodal branch of the same class subtracts correctly).
 * The prefill positions themselves are right, so the delta is recomputed from them: the fix stays correct if a
 * later transformers.js release repairs the formula.
 *
 * 2. Padding during cached decoding. The multimodal forward (`generic_text_to_text_forward`) rebuilds the
 *    attention mask of every single-token step as ones over the whole past, so the left padding of a batch is
 *    attended from the second generated token on and shorter prompts of a batch get different replies than
 *    alone. LeftPaddingGuard puts the zeros back in every attention mask the model's sessions receive.
 */
import { Tensor } from '@huggingface/transformers';

type TextOnlyRopeIndex = (inputIds: Tensor, attentionMask?: Tensor | null) => [Tensor, Tensor];

/**
 * Rope deltas [batch, 1] from prefill position ids [3, batch, sequence]: the largest position of a real token
 * + 1 − sequence length (HF's formula, except that HF also counts the 1 it writes into padding slots, which
 * would misplace the reply of a one-token prompt). Without a mask every slot counts, as in HF.
 */
export function textOnlyRopeDeltas(positionIds: Tensor, attentionMask?: Tensor | null): Tensor {
  const [axes, batch, length] = positionIds.dims as [number, number, number];
  if (positionIds.dims.length !== 3 || axes !== 3) throw new RangeError(`mRoPE position ids must be [3, batch, sequence], got [${positionIds.dims.join(', ')}]`);
  const data = positionIds.data as BigInt64Array;
  const mask = attentionMask && attentionMask.dims[0] === batch && attentionMask.dims[1] === length ? (attentionMask.data as BigInt64Array) : null; // [batch, sequence]
  const deltas = new BigInt64Array(batch);
  for (let row = 0; row < batch; row++) {
    let max: bigint | null = null;
    for (let axis = 0; axis < 3; axis++) {
      for (let column = 0; column < length; column++) {
        if (mask && mask[row * length + column] === 0n) continue;
        const value = data[(axis * batch + row) * length + column];
        if (max === null || value > max) max = value;
      }
    }
    deltas[row] = (max ?? -1n) + 1n - BigInt(length);
  }
  return new Tensor('int64', deltas, [batch, 1]);
}

/**
 * Replaces the model's text-only rope deltas with HF's; returns false (and changes nothing) for models
 * without mRoPE. Call once after `from_pretrained`.
 */
export function correctTextOnlyRopeDeltas(model: object): boolean {
  const target = model as { _get_text_only_rope_index?: TextOnlyRopeIndex };
  const original = target._get_text_only_rope_index;
  if (typeof original !== 'function') return false;
  target._get_text_only_rope_index = function (this: unknown, inputIds: Tensor, attentionMask?: Tensor | null): [Tensor, Tensor] {
    const [positionIds] = original.call(this, inputIds, attentionMask);
    return [positionIds, textOnlyRopeDeltas(positionIds, attentionMask)];
  };
  return true;
}

interface MaskedFeeds {
  attention_mask?: { dims: readonly number[]; data: unknown };
}

interface RunnableSession {
  inputNames?: readonly string[];
  run: (feeds: MaskedFeeds, ...rest: unknown[]) => Promise<unknown>;
}

/**
 * While `during(padding, work)` runs, the first `padding[row]` columns of every attention mask fed to the model's
 * sessions are zero: left padding stays masked however transformers.js rebuilt the mask. Masks already right
 * (every non-multimodal model) are left as they were.
 */
export class LeftPaddingGuard {
  private padding: readonly number[] | null = null;

  constructor(model: object) {
    const sessions = (model as { sessions?: Record<string, RunnableSession> }).sessions ?? {};
    for (const session of Object.values(sessions)) {
      if (!session.inputNames?.includes('attention_mask')) continue;
      const run = session.run.bind(session);
      session.run = (feeds: MaskedFeeds, ...rest: unknown[]) => {
        this.mask(feeds);
        return run(feeds, ...rest);
      };
    }
  }

  async during<T>(padding: readonly number[], work: () => Promise<T>): Promise<T> {
    this.padding = padding;
    try {
      return await work();
    } finally {
      this.padding = null;
    }
  }

  private mask(feeds: MaskedFeeds): void {
    const mask = feeds.attention_mask;
    const padding = this.padding;
    if (!padding || !mask || mask.dims.length !== 2 || mask.dims[0] !== padding.length || !(mask.data instanceof BigInt64Array)) return;
    const columns = mask.dims[1];
    const data = mask.data; // [batch, total sequence]
    padding.forEach((pad, row) => data.fill(0n, row * columns, row * columns + Math.min(pad, columns)));
  }
}
