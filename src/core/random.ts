/**
 * The one seeded pseudo-random generator of the project: mulberry32. It uses only 32-bit integer operations
 * (Math.imul, shifts, xor), so the same seed gives bit-identical numbers in every JavaScript engine: splits,
 * sampled tokens and the bundled demo model's weights reproduce across Node and browsers.
 */

/** mulberry32 seeded with `seed >>> 0` (so any number is accepted; only its low 32 bits matter). Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
