/**
 * Bias kernel: b ← b − α r (r·b) for an out-projection's bias b [dModel]. A bias is short (dModel elements),
 * so one workgroup does it all in a single dispatch: a strided dot product, a tree reduction in workgroup
 * memory (double-f32 throughout), then every invocation writes its share of the output words. `params.cols` is the length of b.
 */
import { kernelProgram, paramsStructWgsl, type GpuProgram } from './program';
import { workgroupSumWgsl } from './wgsl-double-float';
import { storageCodecWgsl, WORKGROUP_SIZE, type StorageDType } from './wgsl-storage';
import { packedWriteWgsl } from './packed-write';

export function createBiasProgram(dtype: StorageDType): GpuProgram {
  const perWord = dtype === 'F32' ? 1 : 2;
  const code = /* wgsl */ `
${paramsStructWgsl}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> source: array<u32>;       // b [dModel], packed ${dtype}
@group(0) @binding(2) var<storage, read> direction: array<f32>;    // r [dModel]
@group(0) @binding(3) var<storage, read_write> destination: array<u32>; // b' [dModel], packed ${dtype}
${storageCodecWgsl(dtype)}
${workgroupSumWgsl(WORKGROUP_SIZE)}var<private> coefficient: vec2<f32>;
${packedWriteWgsl(dtype)}
fn edited_value(index: u32) -> vec2<f32> {
  return subtract_update(load_value(index), df_mul_f32(coefficient, direction[index]));
}
@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(local_invocation_index) lane: u32) {
  var sum = vec2<f32>(0.0, 0.0);
  for (var index = lane; index < params.cols; index = index + ${WORKGROUP_SIZE}u) {
    sum = df_add(sum, two_prod(load_value(index), direction[index]));
  }
  let total = workgroup_sum(lane, sum);
  // As the twin: coefficient = α · (r·b), delta = coefficient · r[index].
  coefficient = df_mul(scale_double(), total);
  let words = (params.cols + ${perWord - 1}u) / ${perWord}u;
  for (var word = lane; word < words; word = word + ${WORKGROUP_SIZE}u) {
    write_word(word, params.cols);
  }
}
`;
  return kernelProgram('bias', dtype, code, ['uniform', 'read-only-storage', 'read-only-storage', 'storage']);
}
