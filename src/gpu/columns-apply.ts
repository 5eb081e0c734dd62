/**
 * Columns kernel, pass 2 of W ← W − α r (rᵀW): W[row, column] − (α · r[rowOffset + row]) · p[column] over one
 * chunk of whole rows, with p the full projection (all chunks summed), in double-f32. One invocation owns one output u32
 * word: two 16-bit elements or one F32 element, so no two invocations ever write the same word. An odd
 * element count leaves the high half of the last word as padding, which the caller cuts off.
 */
import { kernelProgram, paramsStructWgsl, type GpuProgram } from './program';
import { linearIndexWgsl, storageCodecWgsl, type StorageDType } from './wgsl-storage';
import { packedWriteMainWgsl, packedWriteWgsl } from './packed-write';

export function createColumnsApplyProgram(dtype: StorageDType): GpuProgram {
  const code = /* wgsl */ `
${paramsStructWgsl}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> source: array<u32>;       // W chunk [rows, cols], packed ${dtype}
@group(0) @binding(2) var<storage, read> direction: array<f32>;    // r [dModel]
@group(0) @binding(3) var<storage, read> projection: array<vec2<f32>>; // p [cols] as (hi, lo)
@group(0) @binding(4) var<storage, read_write> destination: array<u32>; // W' chunk [rows, cols], packed ${dtype}
${storageCodecWgsl(dtype)}
${linearIndexWgsl}
${packedWriteWgsl(dtype)}
fn edited_value(index: u32) -> vec2<f32> {
  let row = index / params.cols;
  let column = index - row * params.cols;
  // As the twin: coefficient = α · r[row], delta = coefficient · p[column].
  let coefficient = df_mul_f32(scale_double(), direction[params.row_offset + row]);
  return subtract_update(load_value(index), df_mul(coefficient, projection[column]));
}
${packedWriteMainWgsl}`;
  return kernelProgram('columns-apply', dtype, code, ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage']);
}
