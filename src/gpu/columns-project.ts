/**
 * Columns kernel, pass 1 of W ← W − α r (rᵀW) for an out-projection W [dModel, in] (rows index the residual
 * stream): the partial projection p = rᵀW over one chunk of whole rows, p[column] = Σ_row r[rowOffset + row] ·
 * W[row, column]. One invocation per column walks down its column, so neighbouring invocations read
 * neighbouring elements. The sum is Kahan-compensated f32: the CPU twin accumulates in f64, and the
 * compensation keeps the GPU's p within a few f32 ulps of it. Partials of successive chunks are added in f64
 * by the caller.
 */
import { paramsStructWgsl, type GpuProgram } from './program';
import { linearIndexWgsl, storageCodecWgsl, WORKGROUP_SIZE, type StorageDType } from './wgsl-storage';

export function createColumnsProjectProgram(dtype: StorageDType): GpuProgram {
  const code = /* wgsl */ `
${paramsStructWgsl}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> source: array<u32>;          // W chunk [rows, cols], packed ${dtype}
@group(0) @binding(2) var<storage, read> direction: array<f32>;       // r [dModel]
@group(0) @binding(3) var<storage, read_write> projection: array<f32>; // p [cols]
${storageCodecWgsl(dtype)}
${linearIndexWgsl}
@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let column = linear_index(global, groups);
  if (column >= params.cols) {
    return;
  }
  var sum = 0.0;
  var compensation = 0.0;
  for (var row = 0u; row < params.rows; row = row + 1u) {
    let term = direction[params.row_offset + row] * load_value(row * params.cols + column) - compensation;
    let next = sum + term;
    compensation = (next - sum) - term;
    sum = next;
  }
  projection[column] = sum;
}
`;
  return {
    name: 'columns-project',
    cacheKey: `columns-project:${dtype}`,
    code,
    bindings: ['uniform', 'read-only-storage', 'read-only-storage', 'storage'],
  };
}
