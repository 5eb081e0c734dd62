/**
 * Double-f32 arithmetic in WGSL: a value is an unevaluated sum hi + lo of two f32 (|lo| ≤ ulp(hi)/2), about 48
 * significant bits, built from error-free transformations (Dekker / Knuth two-sum, Veltkamp split). WGSL has
 * no f64, and the CPU twin computes in f64 and rounds once; carrying the rounding errors along lets the
 * kernels land on the twin's rounding for all but values within ~2^-46 of a rounding boundary.
 *
 * The last step rounds hi + lo to an f32 *to odd* (truncate, set the last bit when inexact), exactly as
 * src/core/dtypes.ts does from f64: the storage encoder's round-to-nearest-even to BF16/F16 is then the
 * correctly rounded result, with no double-rounding error.
 */
export const doubleFloatWgsl = /* wgsl */ `
fn is_finite_f32(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}
fn two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = a + b;
  let v = s - a;
  return vec2<f32>(s, (a - (s - v)) + (b - v));
}
fn quick_two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = a + b;
  return vec2<f32>(s, b - (s - a));
}
fn split_f32(a: f32) -> vec2<f32> {
  let t = 4097.0 * a; // 2^12 + 1: halves of 12 bits, whose products are exact in f32
  let high = t - (t - a);
  return vec2<f32>(high, a - high);
}
fn two_prod(a: f32, b: f32) -> vec2<f32> {
  let p = a * b;
  let x = split_f32(a);
  let y = split_f32(b);
  return vec2<f32>(p, ((x.x * y.x - p) + x.x * y.y + x.y * y.x) + x.y * y.y);
}
fn df_add(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let s = two_sum(a.x, b.x);
  let t = two_sum(a.y, b.y);
  let u = quick_two_sum(s.x, s.y + t.x);
  return quick_two_sum(u.x, u.y + t.y);
}
fn df_mul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let p = two_prod(a.x, b.x);
  return quick_two_sum(p.x, p.y + (a.x * b.y + a.y * b.x));
}
fn df_mul_f32(a: vec2<f32>, b: f32) -> vec2<f32> {
  let p = two_prod(a.x, b);
  return quick_two_sum(p.x, p.y + a.y * b);
}
/** f32 bits of hi + lo rounded to odd (hi is already hi + lo rounded to nearest). */
fn round_to_odd_bits(value: vec2<f32>) -> u32 {
  var bits = bitcast<u32>(value.x);
  if (value.y != 0.0 && is_finite_f32(value.x)) {
    if ((value.y < 0.0) != (value.x < 0.0)) {
      bits = bits - 1u; // one step toward zero: the truncation
    }
    bits = bits | 1u;
  }
  return bits;
}
`;

/**
 * `workgroup_sum(lane, value)`: the double-f32 sum of every lane's value, by a tree reduction in workgroup
 * memory (the reductions of rows-dot and bias). It holds barriers, so call it from uniform control flow; every
 * lane gets the sum. Needs doubleFloatWgsl and WORKGROUP_SIZE lanes (a power of two).
 */
export function workgroupSumWgsl(workgroupSize: number): string {
  return /* wgsl */ `
var<workgroup> lane_sums: array<vec2<f32>, ${workgroupSize}>;
fn workgroup_sum(lane: u32, value: vec2<f32>) -> vec2<f32> {
  lane_sums[lane] = value;
  workgroupBarrier();
  for (var stride = ${workgroupSize / 2}u; stride > 0u; stride = stride >> 1u) {
    if (lane < stride) {
      lane_sums[lane] = df_add(lane_sums[lane], lane_sums[lane + stride]);
    }
    workgroupBarrier();
  }
  return lane_sums[0];
}
`;
}
