/**
 * Next-token choice for generation: greedy argmax, or seeded temperature / top-p (nucleus) sampling.
 * Pure and deterministic: the same logits, options and seed always give the same token, in Node and in the
 * browser, whatever else runs concurrently (transformers.js samples from one global PRNG, so two chats
 * generating side by side would steal each other's random numbers; we keep one generator per generation).
 */

import { mulberry32 } from './random';

export class SamplingOptionError extends Error {
  override name = 'SamplingOptionError';
}

export interface SamplingSettings {
  /** 0 (or absent) means greedy decoding. */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 keeps every token. */
  topP: number;
}

/** A seeded generator (mulberry32) for one generation: floats in [0, 1); the seed must be an integer. */
export function createSeededRandom(seed: number): () => number {
  if (!Number.isInteger(seed)) throw new SamplingOptionError(`seed ${seed} must be an integer.`);
  return mulberry32(seed);
}

export function checkSamplingSettings(settings: SamplingSettings): void {
  const { temperature, topP } = settings;
  if (!Number.isFinite(temperature) || temperature < 0) throw new SamplingOptionError(`temperature ${temperature} must be a finite number ≥ 0 (0 = greedy).`);
  if (!Number.isFinite(topP) || topP <= 0 || topP > 1) throw new SamplingOptionError(`top-p ${topP} must be in (0, 1].`);
}

/** Index of the largest logit; the lowest index wins a tie, as in transformers.js and PyTorch argmax. */
export function argMax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/**
 * Probabilities after temperature and top-p, in float64, as (token, probability) pairs sorted by
 * probability (descending; ties by token index) and renormalized over the kept nucleus.
 */
export function nucleusDistribution(logits: ArrayLike<number>, settings: SamplingSettings): { tokens: Int32Array; probabilities: Float64Array } {
  checkSamplingSettings(settings);
  if (settings.temperature === 0) throw new SamplingOptionError('temperature 0 is greedy decoding; it has no distribution to sample.');
  const count = logits.length;
  let max = -Infinity;
  for (let i = 0; i < count; i++) if (logits[i]! > max) max = logits[i]!;
  if (!Number.isFinite(max)) throw new SamplingOptionError('the logits have no finite maximum; the model produced unusable output.');
  const weights = new Float64Array(count); // [vocab], unnormalized exp((x − max) / T)
  let total = 0;
  for (let i = 0; i < count; i++) {
    const weight = Math.exp((logits[i]! - max) / settings.temperature);
    weights[i] = Number.isNaN(weight) ? 0 : weight;
    total += weights[i]!;
  }
  const order = Array.from({ length: count }, (_, index) => index).sort((a, b) => weights[b]! - weights[a]! || a - b);
  let kept = 0;
  let cumulative = 0;
  // Keep the smallest prefix whose mass reaches top-p (at least one token), as HF's TopPLogitsWarper does.
  while (kept < count && (kept === 0 || cumulative < settings.topP * total)) {
    cumulative += weights[order[kept]!]!;
    kept++;
  }
  const tokens = Int32Array.from(order.slice(0, kept));
  const probabilities = Float64Array.from(tokens, (token) => weights[token]! / cumulative);
  return { tokens, probabilities };
}

/** Chooses the next token: argmax for temperature 0, else one draw from the nucleus distribution. */
export function chooseToken(logits: ArrayLike<number>, settings: SamplingSettings, random: () => number): number {
  checkSamplingSettings(settings);
  if (settings.temperature === 0) return argMax(logits);
  const { tokens, probabilities } = nucleusDistribution(logits, settings);
  let remaining = random();
  for (let i = 0; i < tokens.length; i++) {
    remaining -= probabilities[i]!;
    if (remaining < 0) return tokens[i]!;
  }
  return tokens[tokens.length - 1]!; // rounding left a sliver of mass: the last kept token takes it
}
