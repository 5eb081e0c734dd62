/**
 * Rows kernel, pass 2 of E ← E − α (E r) rᵀ: E[row, column] − (α · s[row]) · r[column], with s from the
 * rows-dot pass. One invocation per output u32 word (see packed-write.ts).
 */
import { kernelProgram, paramsStructWgsl, type GpuProgram } from './program';
import { linearIndexWgsl, storageCodecWgsl, type StorageDType } from './wgsl-storage';
import { packedWriteMainWgsl, packedWriteWgsl } from './packed-write';

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
${packedWriteMainWgsl}`;
  return kernelProgram('rows-apply', dtype, code, ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage']);
}
