import { describe, expect, it } from 'vitest';
import {
  bfloat16BitsToFloat32,
  decodeToFloat64,
  encodeFromFloat64,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from '../../src/core/dtypes';
import { mulberry32 } from '../../src/core/random';

/**
 * Independent reference rounding: the nearest of all finite values of a 16-bit format (ties to the even
 * bit pattern), found by binary search over the sorted table; beyond the largest value by half an ulp → Inf.
 */
function referenceRounder(decode: (bits: number) => number, maxFiniteBits: number, ulpAtMax: number) {
  const positives: { value: number; bits: number }[] = [];
  for (let bits = 0; bits <= maxFiniteBits; bits++) positives.push({ value: decode(bits), bits });
  const maxFinite = positives[positives.length - 1].value;
  return (x: number): number => {
    const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
    const magnitude = Math.abs(x);
    if (magnitude >= maxFinite + ulpAtMax / 2) return sign | (maxFiniteBits + 1); // overflow threshold → Inf
    let low = 0;
    let high = positives.length - 1;
    while (high - low > 1) {
      const middle = (low + high) >> 1;
      if (positives[middle].value <= magnitude) low = middle;
      else high = middle;
    }
    const below = positives[low];
    const above = positives[high];
    if (magnitude <= below.value) return sign | below.bits;
    const distanceBelow = magnitude - below.value;
    const distanceAbove = above.value - magnitude;
    if (distanceBelow < distanceAbove) return sign | below.bits;
    if (distanceAbove < distanceBelow) return sign | above.bits;
    return sign | ((below.bits & 1) === 0 ? below.bits : above.bits);
  };
}

function randomDoubles(count: number, seed: number, minExponent: number, maxExponent: number): number[] {
  const random = mulberry32(seed);
  const values: number[] = [];
  for (let i = 0; i < count; i++) {
    const exponent = minExponent + random() * (maxExponent - minExponent);
    // Two random draws give a full 53-bit significand, so values fall between the 16-bit grid points.
    const significand = 1 + random() + random() * 2 ** -26;
    values.push((random() < 0.5 ? -1 : 1) * significand * 2 ** Math.floor(exponent));
  }
  return values;
}

describe('bfloat16', () => {
  it('round-trips all 65,536 bit patterns (NaNs stay NaN)', () => {
    let nanCount = 0;
    for (let bits = 0; bits < 65536; bits++) {
      const value = bfloat16BitsToFloat32(bits);
      const back = float32ToBfloat16Bits(value);
      if (Number.isNaN(value)) {
        nanCount++;
        expect(Number.isNaN(bfloat16BitsToFloat32(back))).toBe(true);
      } else if (back !== bits) {
        throw new Error(`bf16 0x${bits.toString(16)} → ${value} → 0x${back.toString(16)}`);
      }
    }
    expect(nanCount).toBe(2 * 127); // exponent all ones, mantissa ≠ 0, both signs
  });

  it('rounds ties to even and rounds a float64 once (no double rounding through float32)', () => {
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie between 1 and 1+2^-7 → even (1)
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie between odd and even → even (up)
    expect(float32ToBfloat16Bits(-(1 + 2 ** -8))).toBe(0xbf80);
    // Just above the midpoint, by less than float32 can hold: float32 first would land on the tie and go down.
    expect(float32ToBfloat16Bits(1 + 2 ** -8 + 2 ** -40)).toBe(0x3f81);
    expect(float32ToBfloat16Bits(1 + 2 ** -8 - 2 ** -40)).toBe(0x3f80);
    expect(float32ToBfloat16Bits(Infinity)).toBe(0x7f80);
    expect(float32ToBfloat16Bits(-Infinity)).toBe(0xff80);
    expect(float32ToBfloat16Bits(1e39)).toBe(0x7f80); // beyond float32: overflow to Inf
    expect(float32ToBfloat16Bits(-0)).toBe(0x8000);
    expect(Number.isNaN(bfloat16BitsToFloat32(float32ToBfloat16Bits(NaN)))).toBe(true);
  });

  it('matches an exhaustive nearest-value search on 100,000 random float64 values, subnormals included', () => {
    const reference = referenceRounder(bfloat16BitsToFloat32, 0x7f7f, 2 ** (127 - 7));
    const values = [...randomDoubles(50_000, 1, -140, 128), ...randomDoubles(50_000, 2, -3, 3)];
    for (const x of values) {
      const expected = reference(x);
      const actual = float32ToBfloat16Bits(x);
      if (actual !== expected) throw new Error(`bf16(${x}) = 0x${actual.toString(16)}, expected 0x${expected.toString(16)}`);
    }
  });
});

describe('float16', () => {
  it('round-trips all 65,536 bit patterns (NaNs stay NaN)', () => {
    let nanCount = 0;
    for (let bits = 0; bits < 65536; bits++) {
      const value = float16BitsToFloat32(bits);
      const back = float32ToFloat16Bits(value);
      if (Number.isNaN(value)) {
        nanCount++;
        expect(Number.isNaN(float16BitsToFloat32(back))).toBe(true);
      } else if (back !== bits) {
        throw new Error(`f16 0x${bits.toString(16)} → ${value} → 0x${back.toString(16)}`);
      }
    }
    expect(nanCount).toBe(2 * 1023);
  });

  it('rounds ties to even, keeps subnormals and overflows to Inf', () => {
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -40)).toBe(0x3c01);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(65519.99)).toBe(0x7bff);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // the tie above the max rounds to even = Inf
    expect(float32ToFloat16Bits(-1e6)).toBe(0xfc00);
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0x0000); // tie with zero → even (zero)
    expect(float32ToFloat16Bits(2 ** -25 + 2 ** -60)).toBe(0x0001);
    expect(float32ToFloat16Bits(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 subnormal units → 2
    expect(float32ToFloat16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the smallest normal
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float32ToFloat16Bits(1e-30)).toBe(0x0000);
  });

  it('matches an exhaustive nearest-value search on 100,000 random float64 values', () => {
    const reference = referenceRounder(float16BitsToFloat32, 0x7bff, 2 ** (15 - 10));
    const values = [...randomDoubles(50_000, 3, -27, 17), ...randomDoubles(50_000, 4, -3, 3)];
    for (const x of values) {
      const expected = reference(x);
      const actual = float32ToFloat16Bits(x);
      if (actual !== expected) throw new Error(`f16(${x}) = 0x${actual.toString(16)}, expected 0x${expected.toString(16)}`);
    }
  });
});

describe('array codecs', () => {
  it('encode then decode is the rounded value, little-endian, for each dtype', () => {
    const values = [0, -0, 1, -2.5, 3.140625, 1e-3, 65504, -1e-7];
    const f32 = encodeFromFloat64(values, 'F32');
    expect(f32.byteLength).toBe(32);
    expect(new DataView(f32.buffer).getFloat32(8, true)).toBe(1);
    expect(Array.from(decodeToFloat64(f32, 'F32'))).toEqual(values.map(Math.fround));
    const bf16 = encodeFromFloat64(values, 'BF16');
    expect(new DataView(bf16.buffer).getUint16(4, true)).toBe(0x3f80);
    expect(Array.from(decodeToFloat64(bf16, 'BF16'))).toEqual(values.map((v) => bfloat16BitsToFloat32(float32ToBfloat16Bits(v))));
    const f16 = encodeFromFloat64(values, 'F16');
    expect(new DataView(f16.buffer).getUint16(4, true)).toBe(0x3c00);
    expect(Array.from(decodeToFloat64(f16, 'F16'))).toEqual(values.map((v) => float16BitsToFloat32(float32ToFloat16Bits(v))));
  });

  it('decodes misaligned byte views', () => {
    const backing = new Uint8Array(9);
    backing.set(encodeFromFloat64([1.5, -2], 'F32'), 1);
    expect(Array.from(decodeToFloat64(backing.subarray(1), 'F32'))).toEqual([1.5, -2]);
    expect(() => decodeToFloat64(new Uint8Array(3), 'BF16')).toThrow(RangeError);
  });
});
