/**
 * Rows kernel, pass 1 of E ← E − α (E r) rᵀ for the embedding E [vocab, dModel]: s[row] = Σ_column E[row,
 * column] · r[column]. One workgroup per row: its WORKGROUP_SIZE invocations stride over the row and a tree reduction in
 * workgroup memory adds their sums, all in double-f32 (exact products, ~48-bit sums).
 */
import { kernelProgram, paramsStructWgsl, type GpuProgram } from './program';
import { doubleFloatWgsl, workgroupSumWgsl } from './wgsl-double-float';
import { linearIndexWgsl, storageCodecWgsl, WORKGROUP_SIZE, type StorageDType } from './wgsl-storage';

export function createRowsDotProgram(dtype: StorageDType): GpuProgram {
  const code = /* wgsl */ `
${paramsStructWgsl}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> source: array<u32>;     // E chunk [rows, cols], packed ${dtype}
@group(0) @binding(2) var<storage, read> direction: array<f32>;  // r [cols]
@group(0) @binding(3) var<storage, read_write> dots: array<vec2<f32>>; // s [rows] as (hi, lo)
${storageCodecWgsl(dtype)}
${doubleFloatWgsl}
${linearIndexWgsl}
${workgroupSumWgsl(WORKGROUP_SIZE)}@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let row = linear_group(group, groups);
  var sum = vec2<f32>(0.0, 0.0);
  if (row < params.rows) {
    let start = row * params.cols;
    for (var column = lane; column < params.cols; column = column + ${WORKGROUP_SIZE}u) {
      sum = df_add(sum, two_prod(load_value(start + column), direction[column]));
    }
  }
  let total = workgroup_sum(lane, sum);
  if (lane == 0u && row < params.rows) {
    dots[row] = total;
  }
}
`;
  return kernelProgram('rows-dot', dtype, code, ['uniform', 'read-only-storage', 'read-only-storage', 'storage']);
}
