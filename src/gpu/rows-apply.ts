/**
 * Rows kernel, pass 2 of E ← E − α (E r) rᵀ: E[row, column] − (α · s[row]) · r[column], with s from the
 * rows-dot pass. One invocation per output u32 word (see packed-write.ts).
 */
import { paramsStructWgsl, type GpuProgram } from './program';
import { linearIndexWgsl, storageCodecWgsl, WORKGROUP_SIZE, type StorageDType } from './wgsl-storage';
import { packedWriteWgsl } from './packed-write';

export function createRowsApplyProgram(dtype: StorageDType): GpuProgram {
  const code = /* wgsl */ `
${paramsStructWgsl}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> source: array<u32>;       // E chunk [rows, cols], packed ${dtype}
@group(0) @binding(2) var<storage, read> direction: array<f32>;    // r [cols]
@group(0) @binding(3) var<storage, read> dots: array<vec2<f32>>;   // s [rows] as (hi, lo)
@group(0) @binding(4) var<storage, read_write> destination: array<u32>; // E' chunk [rows, cols], packed ${dtype}
${storageCodecWgsl(dtype)}
${linearIndexWgsl}
${packedWriteWgsl(dtype)}
fn edited_value(index: u32) -> vec2<f32> {
  let row = index / params.cols;
  let column = index - row * params.cols;
  // As the twin: coefficient = α · s[row], delta = coefficient · r[column].
  let coefficient = df_mul(scale_double(), dots[row]);
  return subtract_update(load_value(index), df_mul_f32(coefficient, direction[column]));
}
@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  write_word(linear_index(global, groups), params.rows * params.cols);
}
`;
  return {
    name: 'rows-apply',
    cacheKey: `rows-apply:${dtype}`,
    code,
    bindings: ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage'],
  };
}
