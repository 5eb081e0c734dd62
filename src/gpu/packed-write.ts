/**
 * The write half shared by the element-wise kernels: invocation `word` computes `edited_value` for the one or
 * two elements its u32 word holds and stores the RNE-rounded bits. Elements past `count` (the padding half of
 * an odd-length 16-bit chunk) are written as zero and cut off on readback.
 */
import type { StorageDType } from './wgsl-storage';

export function packedWriteWgsl(dtype: StorageDType): string {
  return subtractUpdateWgsl + packedWriteBody(dtype);
}

/**
 * value − delta, except that a zero delta or a zero scale leaves the value alone, as in the CPU twin: that keeps
 * −0 as −0 (−0 − (−0) would give +0), and α = 0 exact even where an f32 dot product overflowed to Inf
 * (0 · Inf would be NaN).
 */
const subtractUpdateWgsl = /* wgsl */ `
fn subtract_update(value: f32, delta: f32) -> f32 {
  if (params.scale == 0.0 || delta == 0.0) {
    return value;
  }
  return value - delta;
}
`;

function packedWriteBody(dtype: StorageDType): string {
  if (dtype === 'F32') {
    return /* wgsl */ `
fn write_word(word: u32, count: u32) {
  if (word >= count) {
    return;
  }
  destination[word] = encode_bits(edited_value(word));
}
`;
  }
  return /* wgsl */ `
fn write_word(word: u32, count: u32) {
  let first = word * 2u;
  if (first >= count) {
    return;
  }
  let low = encode_bits(edited_value(first));
  var high = 0u;
  if (first + 1u < count) {
    high = encode_bits(edited_value(first + 1u));
  }
  destination[word] = (low & 0xffffu) | (high << 16u);
}
`;
}
