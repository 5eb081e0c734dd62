// Pure direction checks: length, finiteness, zero, and unit normalization that neither overflows nor underflows.
import { describe, expect, it } from 'vitest';
import { checkedUnitDirection, DirectionError, euclideanNorm } from '../../src/core/direction';

/** Float64 unit vectors are exact to a few ulps of 1. */
const UNIT_NORM_TOLERANCE = 4e-16;

function naiveNorm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return Math.sqrt(sum);
}

function errorOf(run: () => unknown): DirectionError {
  try {
    run();
  } catch (error) {
    if (error instanceof DirectionError) return error;
    throw error;
  }
  throw new Error('expected a DirectionError');
}

describe('checkedUnitDirection', () => {
  it('normalizes to unit length and keeps the direction (matches a naive computation in range)', () => {
    const values = [3, -4, 12, 0.5, -0.25];
    const unit = checkedUnitDirection(values, 5, 'r.json');
    const norm = naiveNorm(values);
    values.forEach((value, index) => expect(unit[index]).toBeCloseTo(value / norm, 15));
    expect(Math.abs(naiveNorm(unit) - 1)).toBeLessThan(UNIT_NORM_TOLERANCE);
  });

  it('handles magnitudes whose squares overflow or underflow float64', () => {
    for (const magnitude of [1e200, 1e-200, 5e-324, 1.7e308]) {
      const unit = checkedUnitDirection([magnitude, -magnitude, magnitude, 0], 4, 'x');
      expect(Math.abs(naiveNorm(unit) - 1)).toBeLessThan(UNIT_NORM_TOLERANCE);
      expect(unit[0]).toBeCloseTo(0.5773502691896258, 15); // 1/√3
      expect(unit[1]).toBeCloseTo(-0.5773502691896258, 15);
    }
    expect(euclideanNorm([1e200, 1e200])).toBeCloseTo(Math.SQRT2 * 1e200, -185);
    expect(euclideanNorm([3e-320, 4e-320]) / 5e-320).toBeCloseTo(1, 2);
  });

  it('accepts typed arrays', () => {
    const unit = checkedUnitDirection(Float32Array.from([0, 2, 0]), 3, 'x');
    expect([...unit]).toEqual([0, 1, 0]);
  });

  it('refuses a wrong length, naming the source and both lengths', () => {
    const error = errorOf(() => checkedUnitDirection([1, 2, 3], 4, 'dir.npy'));
    expect(error.problem).toBe('length');
    expect(error.message).toBe("dir.npy: direction has 3 entries but the model's hidden size is 4");
  });

  it('refuses NaN and ±Inf, naming the entry', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const error = errorOf(() => checkedUnitDirection([1, bad, 3], 3, 'd'));
      expect(error.problem).toBe('non-finite');
      expect(error.index).toBe(1);
      expect(error.message).toBe(`d: direction entry 1 is ${bad} (must be finite)`);
    }
  });

  it('refuses an all-zero direction (including negative zeros)', () => {
    const error = errorOf(() => checkedUnitDirection([0, -0, 0], 3, 'z'));
    expect(error.problem).toBe('zero');
    expect(error.message).toMatch(/^z: direction is all zeros/);
  });
});
