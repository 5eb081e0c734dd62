/**
 * A compute program is plain data: WGSL source plus the binding layout. Building one is a pure function of the
 * storage dtype, so the cache key never contains a shape: rows, columns, offsets and the scale travel in a
 * uniform buffer and one compiled pipeline serves every tensor of that dtype (the onnxruntime-web rule).
 */
export type GpuBindingKind = 'uniform' | 'read-only-storage' | 'storage';

export interface GpuProgram {
  readonly name: string;
  /** Kernel name and dtype; never a shape. */
  readonly cacheKey: string;
  readonly code: string;
  /** Binding kinds in binding order (group 0, bindings 0..n-1). */
  readonly bindings: readonly GpuBindingKind[];
}

/** A kernel's program for one storage dtype; the cache key is the kernel's name and the dtype, never a shape. */
export function kernelProgram(name: string, dtype: string, code: string, bindings: readonly GpuBindingKind[]): GpuProgram {
  return { name, cacheKey: `${name}:${dtype}`, code, bindings };
}

/** Every kernel here uses the same 16-byte uniform block, so one packer serves all of them. */
export interface KernelParams {
  rows: number;
  cols: number;
  /** First row of this chunk within the whole tensor (indexes the direction for the columns kernels). */
  rowOffset: number;
  scale: number;
}

/** The scale α travels as a double-f32 (scale + scale_low = α to ~48 bits), as the CPU twin uses it in f64. */
export const paramsStructWgsl = /* wgsl */ `
struct Params {
  rows: u32,
  cols: u32,
  row_offset: u32,
  scale: f32,
  scale_low: f32,
  padding0: u32,
  padding1: u32,
  padding2: u32,
}
`;

export const PARAMS_BYTES = 32;

export function packKernelParams(params: KernelParams): ArrayBuffer {
  const buffer = new ArrayBuffer(PARAMS_BYTES);
  const view = new DataView(buffer);
  view.setUint32(0, params.rows, true);
  view.setUint32(4, params.cols, true);
  view.setUint32(8, params.rowOffset, true);
  const high = Math.fround(params.scale);
  view.setFloat32(12, high, true);
  view.setFloat32(16, Math.fround(params.scale - high), true);
  return buffer;
}
