/**
 * KL divergence between next-token distributions given as logits (docs/definitions.md "KL": first generated token,
 * KL(base ‖ ablated), mean over prompts = batchmean). Pure math in float64.
 *
 * Logits of real models reach |x| ~ 30–100; softmax in float32 then loses the tail probabilities that KL
 * weights by log-ratios. We therefore take log-softmax in float64 with the max subtracted (log-sum-exp),
 * and never exponentiate a log-ratio.
 */

export class KLInputError extends Error {
  override name = 'KLInputError';
}

/** log softmax(logits) in float64, stable for any finite logits. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  const length = logits.length;
  if (length === 0) throw new KLInputError('log-softmax of an empty logit vector.');
  let max = -Infinity;
  let argMax = 0;
  for (let i = 0; i < length; i++) {
    const value = logits[i]!;
    if (Number.isNaN(value) || value === Infinity) throw new KLInputError(`logit ${i} is ${value}; the model produced non-finite output.`);
    if (value > max) {
      max = value;
      argMax = i;
    }
  }
  if (max === -Infinity) throw new KLInputError('every logit is -Infinity; the distribution is empty.');
  // Σ exp(x − max) = 1 + rest; log1p(rest) keeps the small probabilities of a peaked distribution that
  // log(1 + rest) would round away (KL between two confident models lives in exactly those digits).
  let rest = 0;
  for (let i = 0; i < length; i++) if (i !== argMax) rest += Math.exp(logits[i]! - max);
  const logSum = Math.log1p(rest);
  const result = new Float64Array(length);
  for (let i = 0; i < length; i++) result[i] = logits[i]! - max - logSum;
  return result;
}

/**
 * KL(P ‖ Q) = Σ p (log p − log q) for one pair of logit vectors over the same vocabulary.
 * Tokens with p = 0 contribute 0 (the 0·log 0 convention); q = 0 where p > 0 gives +Infinity, honestly.
 */
export function klDivergenceFromLogits(baseLogits: ArrayLike<number>, ablatedLogits: ArrayLike<number>): number {
  if (baseLogits.length !== ablatedLogits.length) {
    throw new KLInputError(`KL needs logits over the same vocabulary: ${baseLogits.length} vs ${ablatedLogits.length}.`);
  }
  const logP = logSoftmax(baseLogits);
  const logQ = logSoftmax(ablatedLogits);
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]!);
    if (p === 0) continue;
    kl += p * (logP[i]! - logQ[i]!);
  }
  // Rounding can leave a tiny negative value for identical inputs; KL is non-negative by definition.
  return Math.max(0, kl);
}

/**
 * Mean of per-prompt KL(base ‖ ablated) ("batchmean"). Each argument holds one logit row per prompt,
 * given as separate rows: [prompt][vocab].
 */
export function meanKLDivergence(baseRows: readonly ArrayLike<number>[], ablatedRows: readonly ArrayLike<number>[]): { mean: number; perPrompt: number[] } {
  if (baseRows.length !== ablatedRows.length) throw new KLInputError(`KL needs as many base rows as ablated rows: ${baseRows.length} vs ${ablatedRows.length}.`);
  if (baseRows.length === 0) throw new KLInputError('mean KL of zero prompts is undefined; give at least one prompt.');
  const perPrompt = baseRows.map((row, index) => klDivergenceFromLogits(row, ablatedRows[index]!));
  return { mean: perPrompt.reduce((sum, value) => sum + value, 0) / perPrompt.length, perPrompt };
}
