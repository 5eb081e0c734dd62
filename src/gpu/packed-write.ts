/**
 * The write half shared by the element-wise kernels: invocation `word` computes `edited_value` (a double-f32,
 * see wgsl-double-float.ts) for the one or two elements its u32 word holds and stores the rounded bits.
 * Elements past `count` (the padding half of an odd-length 16-bit chunk) are written as zero and cut off on
 * readback.
 */
import { doubleFloatWgsl } from './wgsl-double-float';
import { WORKGROUP_SIZE, type StorageDType } from './wgsl-storage';

/**
 * Entry point of the element-wise edits (rows-apply, columns-apply): one invocation per u32 word of the
 * [rows, cols] chunk. Needs linearIndexWgsl and packedWriteWgsl.
 */
export const packedWriteMainWgsl = /* wgsl */ `
@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  write_word(linear_index(global, groups), params.rows * params.cols);
}
`;

export function packedWriteWgsl(dtype: StorageDType): string {
  return doubleFloatWgsl + subtractUpdateWgsl + encodeDoubleWgsl(dtype) + packedWriteBody(dtype);
}

/**
 * value − delta in double-f32, except as in the CPU twin: a zero delta or a zero scale leaves the value alone
 * (keeping −0 as −0, and α = 0 exact even where a dot product overflowed); non-finite operands take plain f32
 * math, where the error-free transformations would turn Inf into NaN.
 */
const subtractUpdateWgsl = /* wgsl */ `
fn subtract_update(value: f32, delta: vec2<f32>) -> vec2<f32> {
  if (params.scale == 0.0 || delta.x == 0.0) {
    return vec2<f32>(value, 0.0);
  }
  if (!is_finite_f32(value) || !is_finite_f32(delta.x)) {
    return vec2<f32>(value - delta.x, 0.0);
  }
  return df_add(vec2<f32>(value, 0.0), -delta);
}
fn scale_double() -> vec2<f32> {
  return vec2<f32>(params.scale, params.scale_low);
}
`;

/** F32 storage takes hi (hi + lo rounded to nearest); 16-bit storage rounds to odd first, then RNE. */
function encodeDoubleWgsl(dtype: StorageDType): string {
  if (dtype === 'F32') {
    return /* wgsl */ `
fn encode_double(value: vec2<f32>) -> u32 {
  return bitcast<u32>(value.x);
}
`;
  }
  return /* wgsl */ `
fn encode_double(value: vec2<f32>) -> u32 {
  return encode_bits(bitcast<f32>(round_to_odd_bits(value)));
}
`;
}

function packedWriteBody(dtype: StorageDType): string {
  if (dtype === 'F32') {
    return /* wgsl */ `
fn write_word(word: u32, count: u32) {
  if (word >= count) {
    return;
  }
  destination[word] = encode_double(edited_value(word));
}
`;
  }
  return /* wgsl */ `
fn write_word(word: u32, count: u32) {
  let first = word * 2u;
  if (first >= count) {
    return;
  }
  let low = encode_double(edited_value(first));
  var high = 0u;
  if (first + 1u < count) {
    high = encode_double(edited_value(first + 1u));
  }
  destination[word] = (low & 0xffffu) | (high << 16u);
}
`;
}
