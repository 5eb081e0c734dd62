/**
 * WGSL snippets shared by the orthogonalization kernels: how a tensor stored as BF16, F16 or F32 is read from
 * and written to a `array<u32>` storage buffer.
 *
 * Why u32 words: WebGPU without `shader-f16` (SwiftShader, many laptops) has no 16-bit storage type, so two
 * 16-bit values share one little-endian u32 word (element 2w in the low half of word w). A kernel that writes
 * 16-bit values must own whole words, never half of one, or two invocations would race on the same word.
 *
 * Math is f32; a result is rounded once to nearest-even into the stored type with integer bit manipulation,
 * matching src/core/dtypes.ts bit for bit (the unit tests check the encoders over every 16-bit pattern).
 */

export type StorageDType = 'F32' | 'F16' | 'BF16';

/** 128 invocations: the default limit of compatibility-mode devices (core devices allow 256), so one size fits all. */
export const WORKGROUP_SIZE = 128;

export function isStorageDType(dtype: string): dtype is StorageDType {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}

export function bytesPerElement(dtype: StorageDType): number {
  return dtype === 'F32' ? 4 : 2;
}

export function elementsPerWord(dtype: StorageDType): number {
  return dtype === 'F32' ? 1 : 2;
}

/** Decoders and RNE encoders of one storage type, as WGSL functions `decode_bits(u32) -> f32` / `encode_bits(f32) -> u32`. */
const codecs: Record<StorageDType, string> = {
  F32: /* wgsl */ `
fn decode_bits(bits: u32) -> f32 { return bitcast<f32>(bits); }
fn encode_bits(value: f32) -> u32 { return bitcast<u32>(value); }
`,
  BF16: /* wgsl */ `
fn decode_bits(bits: u32) -> f32 { return bitcast<f32>(bits << 16u); }
fn encode_bits(value: f32) -> u32 {
  let bits = bitcast<u32>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    // NaN stays NaN: keep sign and top payload bits, force the quiet bit so truncation cannot make it Inf.
    return (bits >> 16u) | 0x0040u;
  }
  // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then truncate.
  return (bits + 0x7fffu + ((bits >> 16u) & 1u)) >> 16u;
}
`,
  F16: /* wgsl */ `
fn decode_bits(bits: u32) -> f32 {
  let sign = (bits & 0x8000u) << 16u;
  let exponent = (bits >> 10u) & 0x1fu;
  let mantissa = bits & 0x3ffu;
  if (exponent == 0u) {
    // Subnormal or zero: mantissa * 2^-24 is exact in f32.
    let magnitude = f32(mantissa) * bitcast<f32>(0x33800000u);
    return bitcast<f32>(sign | bitcast<u32>(magnitude));
  }
  if (exponent == 31u) {
    return bitcast<f32>(sign | 0x7f800000u | (mantissa << 13u));
  }
  return bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
}
fn encode_bits(value: f32) -> u32 {
  let bits = bitcast<u32>(value);
  let sign = (bits >> 16u) & 0x8000u;
  let magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {
    // Quiet NaN keeping the top payload bits, as src/core/dtypes.ts does.
    return sign | 0x7e00u | ((magnitude & 0x7fffffu) >> 13u);
  }
  // 65520 and above round to Inf (65504 is the largest half; the tie at 65520 goes to the even Inf).
  if (magnitude >= 0x477ff000u) {
    return sign | 0x7c00u;
  }
  if (magnitude < 0x38800000u) {
    // Below the smallest normal half: a subnormal with unit 2^-24, rounded to nearest-even by hand.
    let exponent = magnitude >> 23u;
    if (exponent < 102u) {
      return sign; // below 2^-25: rounds to (signed) zero
    }
    let significand = (magnitude & 0x7fffffu) | 0x800000u;
    let shift = 126u - exponent; // 14..24
    var quotient = significand >> shift;
    let remainder = significand & ((1u << shift) - 1u);
    let halfway = 1u << (shift - 1u);
    if (remainder > halfway || (remainder == halfway && (quotient & 1u) == 1u)) {
      quotient = quotient + 1u;
    }
    return sign | quotient;
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest-even; a mantissa carry
  // correctly bumps the exponent.
  let rounded = magnitude + 0xfffu + ((magnitude >> 13u) & 1u);
  return sign | ((rounded - 0x38000000u) >> 13u);
}
`,
};

/**
 * `load_value(index)` reads element `index` of `source`, `pack_word(word, low, high)` builds an output word.
 * The caller declares `source: array<u32>` and decides how many elements it writes per invocation.
 */
export function storageCodecWgsl(dtype: StorageDType): string {
  const load =
    dtype === 'F32'
      ? /* wgsl */ `
fn load_value(index: u32) -> f32 { return decode_bits(source[index]); }
`
      : /* wgsl */ `
fn load_value(index: u32) -> f32 {
  let word = source[index >> 1u];
  return decode_bits((word >> ((index & 1u) * 16u)) & 0xffffu);
}
`;
  return codecs[dtype] + load;
}

/**
 * Linear invocation index over a 2-D grid: dispatches above maxComputeWorkgroupsPerDimension (65535) spill
 * into y, so a 150k-row embedding still fits one dispatch.
 */
export const linearIndexWgsl = /* wgsl */ `
fn linear_index(global: vec3<u32>, groups: vec3<u32>) -> u32 {
  return global.x + global.y * groups.x * ${WORKGROUP_SIZE}u;
}
fn linear_group(group: vec3<u32>, groups: vec3<u32>) -> u32 {
  return group.x + group.y * groups.x;
}
`;
