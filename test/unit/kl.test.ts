import { describe, expect, it } from 'vitest';
import { klDivergenceFromLogits, logSoftmax, meanKLDivergence } from '../../src/core/kl';

/** Tolerance for float64 sums over a handful of terms. */
const FLOAT64_TOLERANCE = 1e-12;

/** Bernoulli KL in closed form: an independent check of the general formula. */
function bernoulliKL(p: number, q: number): number {
  return p * Math.log(p / q) + (1 - p) * Math.log((1 - p) / (1 - q));
}

describe('logSoftmax', () => {
  it('matches log(exp(x)/Σexp) for small logits', () => {
    const logits = [0.5, -1, 2, 0];
    const denominator = logits.reduce((sum, value) => sum + Math.exp(value), 0);
    const result = logSoftmax(logits);
    logits.forEach((value, index) => expect(result[index]).toBeCloseTo(Math.log(Math.exp(value) / denominator), 14));
  });

  it('is stable for huge logits where naive exp overflows', () => {
    const result = logSoftmax([1000, 1000 + Math.log(3)]);
    expect(result[0]).toBeCloseTo(Math.log(1 / 4), 12);
    expect(result[1]).toBeCloseTo(Math.log(3 / 4), 12);
  });

  it('rejects NaN and +Infinity and all -Infinity', () => {
    expect(() => logSoftmax([0, Number.NaN])).toThrow(/logit 1 is NaN/);
    expect(() => logSoftmax([Infinity, 0])).toThrow(/Infinity/);
    expect(() => logSoftmax([-Infinity, -Infinity])).toThrow(/empty/);
  });
});

describe('klDivergenceFromLogits', () => {
  it('equals the Bernoulli closed form for two-token vocabularies', () => {
    // logits [0, t] give p(token 1) = sigmoid(t)
    const sigmoid = (t: number) => 1 / (1 + Math.exp(-t));
    for (const [a, b] of [[0.3, -1.2], [2, 2.5], [-4, 3]] as const) {
      const expected = bernoulliKL(1 - sigmoid(a), 1 - sigmoid(b));
      expect(Math.abs(klDivergenceFromLogits([0, a], [0, b]) - expected)).toBeLessThan(FLOAT64_TOLERANCE);
    }
  });

  it('is zero for identical and for shifted logits (softmax is shift-invariant)', () => {
    const logits = Float32Array.from([1, 2, 3, -5]);
    expect(klDivergenceFromLogits(logits, logits)).toBe(0);
    expect(klDivergenceFromLogits([1, 2, 3, -5], [101, 102, 103, 95])).toBeLessThan(FLOAT64_TOLERANCE);
  });

  it('is asymmetric and measures base ‖ ablated (base weights the log-ratio)', () => {
    const base = [5, 0, 0];
    const ablated = [0, 0, 0];
    const forward = klDivergenceFromLogits(base, ablated);
    const reverse = klDivergenceFromLogits(ablated, base);
    const partition = base.reduce((sum, logit) => sum + Math.exp(logit), 0);
    const p = base.map((logit) => Math.exp(logit) / partition); // softmax written out, not the code under test
    const expected = p.reduce((sum, pi) => sum + pi * Math.log(pi / (1 / 3)), 0);
    expect(Math.abs(forward - expected)).toBeLessThan(FLOAT64_TOLERANCE);
    expect(Math.abs(forward - reverse)).toBeGreaterThan(0.1);
  });

  it('keeps precision for peaked real-model logits where float32 softmax would round tail mass to zero', () => {
    // base puts ~e^-60 on token 1; ablated puts ~e^-20 there: the exact KL is dominated by token 0 terms.
    const base = [60, 0];
    const ablated = [20, 0];
    // Closed form with log1p so the reference itself does not underflow: log p0 = −log1p(e^−60), log p1 = −60 + log p0.
    const logP0 = -Math.log1p(Math.exp(-60));
    const logQ0 = -Math.log1p(Math.exp(-20));
    const expected = Math.exp(logP0) * (logP0 - logQ0) + Math.exp(-60 + logP0) * (-60 + logP0 - (-20 + logQ0));
    expect(klDivergenceFromLogits(base, ablated)).toBeCloseTo(expected, 15);
    expect(klDivergenceFromLogits(base, ablated)).toBeGreaterThan(0);
  });

  it('is +Infinity when the ablated model rules out a token the base model can emit', () => {
    expect(klDivergenceFromLogits([0, 0], [0, -Infinity])).toBe(Infinity);
    expect(klDivergenceFromLogits([0, -Infinity], [0, 0])).toBeCloseTo(Math.log(2), 14);
  });

  it('rejects vocabularies of different size', () => {
    expect(() => klDivergenceFromLogits([0, 1], [0, 1, 2])).toThrow(/same vocabulary/);
  });
});

describe('meanKLDivergence', () => {
  it('averages per-prompt KL over prompts (batchmean)', () => {
    const base = [[0, 0.3], [0, 2]];
    const ablated = [[0, -1.2], [0, 2.5]];
    const { mean, perPrompt } = meanKLDivergence(base, ablated);
    expect(perPrompt).toHaveLength(2);
    expect(Math.abs(mean - (perPrompt[0]! + perPrompt[1]!) / 2)).toBeLessThan(FLOAT64_TOLERANCE);
    expect(() => meanKLDivergence([], [])).toThrow(/zero prompts/);
    expect(() => meanKLDivergence([[0]], [])).toThrow(/as many/);
  });
});
