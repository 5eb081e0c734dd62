/**
 * Columns kernel, pass 1 of W ← W − α r (rᵀW) for an out-projection W [dModel, in] (rows index the residual
 * stream): the partial projection p = rᵀW over one chunk of whole rows, p[column] = Σ_row r[rowOffset + row] ·
 * W[row, column]. One invocation per column walks down its column, so neighbouring invocations read
 * neighbouring elements. Each product is split exactly (two_prod) and summed in double-f32, so p carries
 * ~48 bits like the CPU twin's f64 sum; the caller adds hi + lo, and the partials of successive chunks, in f64.
 */
import { kernelProgram, paramsStructWgsl, type GpuProgram } from './program';
import { doubleFloatWgsl } from './wgsl-double-float';
import { linearIndexWgsl, storageCodecWgsl, WORKGROUP_SIZE, type StorageDType } from './wgsl-storage';

export function createColumnsProjectProgram(dtype: StorageDType): GpuProgram {
  const code = /* wgsl */ `
${paramsStructWgsl}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> source: array<u32>;          // W chunk [rows, cols], packed ${dtype}
@group(0) @binding(2) var<storage, read> direction: array<f32>;       // r [dModel]
@group(0) @binding(3) var<storage, read_write> projection: array<vec2<f32>>; // p [cols] as (hi, lo)
${storageCodecWgsl(dtype)}
${doubleFloatWgsl}
${linearIndexWgsl}
@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let column = linear_index(global, groups);
  if (column >= params.cols) {
    return;
  }
  var sum = vec2<f32>(0.0, 0.0);
  for (var row = 0u; row < params.rows; row = row + 1u) {
    sum = df_add(sum, two_prod(direction[params.row_offset + row], load_value(row * params.cols + column)));
  }
  projection[column] = sum;
}
`;
  return kernelProgram('columns-project', dtype, code, ['uniform', 'read-only-storage', 'read-only-storage', 'storage']);
}
