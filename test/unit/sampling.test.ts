import { describe, expect, it } from 'vitest';
import { argMax, chooseToken, createSeededRandom, nucleusDistribution } from '../../src/core/sampling';

/** Probabilities in float64 from a handful of logits; exact to rounding. */
const PROBABILITY_TOLERANCE = 1e-12;

describe('createSeededRandom', () => {
  it('repeats its sequence for a seed, differs across seeds, stays in [0, 1)', () => {
    const a = createSeededRandom(42);
    const b = createSeededRandom(42);
    const c = createSeededRandom(43);
    const first = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(first);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(first);
    expect(first.every((value) => value >= 0 && value < 1)).toBe(true);
    const mean = first.reduce((sum, value) => sum + value, 0) / first.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05); // 1000 uniforms: σ of the mean ≈ 0.009
  });

  it('rejects a non-integer seed', () => {
    expect(() => createSeededRandom(1.5)).toThrow(/integer/);
  });
});

describe('argMax', () => {
  it('takes the first of tied maxima, like PyTorch', () => {
    expect(argMax([1, 3, 3, 2])).toBe(1);
    expect(argMax([-5])).toBe(0);
  });
});

describe('nucleusDistribution', () => {
  it('applies temperature as softmax(x / T)', () => {
    const logits = [2, 1, 0];
    const { tokens, probabilities } = nucleusDistribution(logits, { temperature: 0.5, topP: 1 });
    const weights = logits.map((value) => Math.exp(value / 0.5));
    const total = weights.reduce((sum, value) => sum + value, 0);
    expect(Array.from(tokens)).toEqual([0, 1, 2]);
    tokens.forEach((token, index) => expect(Math.abs(probabilities[index]! - weights[token]! / total)).toBeLessThan(PROBABILITY_TOLERANCE));
  });

  it('keeps the smallest set of most likely tokens reaching top-p, renormalized', () => {
    // probabilities 0.5, 0.3, 0.2 (from logs): top-p 0.7 keeps two tokens, 0.8 keeps two, 0.81 keeps three.
    const logits = [Math.log(0.2), Math.log(0.5), Math.log(0.3)];
    const two = nucleusDistribution(logits, { temperature: 1, topP: 0.7 });
    expect(Array.from(two.tokens)).toEqual([1, 2]);
    expect(two.probabilities[0]).toBeCloseTo(0.5 / 0.8, 12);
    expect(nucleusDistribution(logits, { temperature: 1, topP: 0.8 }).tokens.length).toBe(2);
    expect(nucleusDistribution(logits, { temperature: 1, topP: 0.81 }).tokens.length).toBe(3);
    expect(Array.from(nucleusDistribution(logits, { temperature: 1, topP: 1e-9 }).tokens)).toEqual([1]);
  });

  it('rejects settings outside their ranges', () => {
    expect(() => nucleusDistribution([0, 1], { temperature: 0, topP: 1 })).toThrow(/greedy/);
    expect(() => nucleusDistribution([0, 1], { temperature: 1, topP: 1.5 })).toThrow(/top-p/);
    expect(() => nucleusDistribution([0, 1], { temperature: -1, topP: 1 })).toThrow(/temperature/);
  });
});

describe('chooseToken', () => {
  it('is argmax at temperature 0 and never calls the generator', () => {
    const random = () => {
      throw new Error('greedy decoding must not draw random numbers');
    };
    expect(chooseToken([0.1, 5, 2], { temperature: 0, topP: 1 }, random)).toBe(1);
  });

  it('draws tokens with the nucleus probabilities (frequencies over 20,000 seeded draws)', () => {
    const logits = [Math.log(0.6), Math.log(0.3), Math.log(0.1)];
    const random = createSeededRandom(7);
    const counts = [0, 0, 0];
    const draws = 20_000;
    for (let i = 0; i < draws; i++) counts[chooseToken(logits, { temperature: 1, topP: 1 }, random)]!++;
    // Binomial σ ≤ sqrt(0.25 / 20000) ≈ 0.0035; 5σ bounds.
    [0.6, 0.3, 0.1].forEach((expected, token) => expect(Math.abs(counts[token]! / draws - expected)).toBeLessThan(0.018));
  });

  it('never picks a token outside the nucleus', () => {
    const logits = [Math.log(0.2), Math.log(0.5), Math.log(0.3)];
    const random = createSeededRandom(3);
    for (let i = 0; i < 2000; i++) expect(chooseToken(logits, { temperature: 1, topP: 0.7 }, random)).not.toBe(0);
  });
});
