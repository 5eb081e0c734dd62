/**
 * Independent checks for `abliterate ablate` integration tests: a minimal safetensors reader, float decoders,
 * ulp distances and the orthogonalization formulas, all written here in plain float64 so the tests do not
 * trust src/core/orthogonalize or src/core/dtypes.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `env`: extra environment variables (ABLITERATE_TSX=1 runs the CLI through tsx instead of its bundle). */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO_ROOT, 'bin/abliterate.mjs'), ...args], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface RawTensor {
  dtype: string;
  shape: number[];
  begin: number; // absolute file offset
  end: number;
}

export interface RawShard {
  headerBytes: Buffer; // 8 + N
  tensors: Map<string, RawTensor>;
  bytes: Buffer;
}

export async function readRawShard(file: string): Promise<RawShard> {
  const bytes = await fs.readFile(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const json = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const tensors = new Map<string, RawTensor>();
  for (const [name, info] of Object.entries(json)) {
    if (name === '__metadata__') continue;
    tensors.set(name, { dtype: info.dtype, shape: info.shape, begin: 8 + headerLength + info.data_offsets[0], end: 8 + headerLength + info.data_offsets[1] });
  }
  return { headerBytes: bytes.subarray(0, 8 + headerLength), tensors, bytes };
}

export function decodeValues(bytes: Buffer, dtype: string): Float64Array {
  if (dtype === 'F32') {
    const out = new Float64Array(bytes.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
    return out;
  }
  const out = new Float64Array(bytes.byteLength / 2);
  const scratch = Buffer.alloc(4);
  for (let i = 0; i < out.length; i++) {
    const bits = bytes.readUInt16LE(i * 2);
    if (dtype === 'BF16') {
      scratch.writeUInt32LE(bits * 65536, 0);
      out[i] = scratch.readFloatLE(0);
    } else {
      const sign = bits & 0x8000 ? -1 : 1;
      const exponent = (bits >> 10) & 0x1f;
      const mantissa = bits & 0x3ff;
      out[i] = exponent === 0 ? sign * mantissa * 2 ** -24 : exponent === 31 ? (mantissa ? NaN : sign * Infinity) : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
    }
  }
  return out;
}

/** Unit in the last place of `value` in a float format with `mantissaBits` stored bits and minimum normal exponent. */
export function ulpOf(value: number, dtype: string): number {
  const [mantissaBits, minExponent] = dtype === 'F32' ? [23, -126] : dtype === 'F16' ? [10, -14] : [7, -126];
  const magnitude = Math.abs(value);
  if (magnitude === 0) return 2 ** (minExponent - mantissaBits);
  let exponent = Math.floor(Math.log2(magnitude));
  if (2 ** exponent > magnitude) exponent -= 1;
  if (2 ** (exponent + 1) <= magnitude) exponent += 1;
  return 2 ** (Math.max(exponent, minExponent) - mantissaBits);
}

/** The largest |actual − expected| in ulps of the stored dtype (at the expected value's magnitude). */
export function worstUlpError(actual: Float64Array, expected: Float64Array, dtype: string): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / ulpOf(expected[i], dtype));
  }
  return worst;
}

/** W [rows = dModel, cols]: W − α r (rᵀW), float64. */
export function expectedColumns(values: Float64Array, rows: number, cols: number, direction: ArrayLike<number>, scale: number): Float64Array {
  const projection = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) projection[j] += direction[i] * values[i * cols + j];
  const out = new Float64Array(values.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j] = values[i * cols + j] - scale * direction[i] * projection[j];
  return out;
}

/** Each row x [cols = dModel]: x − α (x·r) r, float64 (embedding rows and biases). */
export function expectedRows(values: Float64Array, cols: number, direction: ArrayLike<number>, scale: number): Float64Array {
  const out = new Float64Array(values.length);
  for (let start = 0; start < values.length; start += cols) {
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += values[start + j] * direction[j];
    for (let j = 0; j < cols; j++) out[start + j] = values[start + j] - scale * dot * direction[j];
  }
  return out;
}

export async function sha256OfFile(file: string): Promise<string> {
  return createHash('sha256').update(await fs.readFile(file)).digest('hex');
}

/** Every file under `dir`, relative, '/'-separated, sorted. */
export async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, relative)));
    else out.push(relative);
  }
  return out.sort();
}

export async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

/** A version-1.0 .npy file of little-endian float32 values with the given shape. */
export function encodeNpyFloat32(values: Float32Array, shape: number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(prefix);
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
}
