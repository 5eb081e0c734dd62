/**
 * The kernel call list (src/engine/kernel-ops.ts) that every CPU backend runs: each call, with its result
 * written into a new buffer and written in place over the chunk it was given, gives the reference twins' bytes
 * (src/core/orthogonalize.ts, norm-preserving.ts). In place, the returned bytes are the chunk itself; a
 * misaligned chunk cannot hold its result in place and gets a new buffer with the same bytes.
 */
import { describe, expect, it } from 'vitest';
import { encodeElementsInto, type FloatDType } from '../../src/core/dtypes';
import { applyColumnsNormPreserving, applyRowsNormPreserving, normPreservingFactors, projectColumnsWithNorms, squaredLength } from '../../src/core/norm-preserving';
import { applyBias, applyColumns, applyRows, projectColumns } from '../../src/core/orthogonalize';
import { mulberry32 } from '../../src/core/random';
import { kernelBackend, runKernel, type KernelRequest } from '../../src/engine/kernel-ops';
import { cpuInPlaceOrthogonalizeBackend, cpuOrthogonalizeBackend } from '../../src/engine/orthogonalize-backend';

const DTYPES: FloatDType[] = ['F32', 'F16', 'BF16'];
const ROWS = 19; // dModel of the columns edits
const COLS = 37;

function storedMatrix(rows: number, cols: number, dtype: FloatDType, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const values = Float64Array.from({ length: rows * cols }, () => (random() - 0.5) * 0.3);
  const bytes = new Uint8Array(rows * cols * (dtype === 'F32' ? 4 : 2));
  encodeElementsInto(values, values.length, dtype, dtype === 'F32' ? new Float32Array(bytes.buffer) : new Uint16Array(bytes.buffer), 0);
  return bytes;
}

function unit(length: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  const values = Float32Array.from({ length }, (_, i) => (i % 4 === 0 ? 0 : random() - 0.5)); // zero rows stay untouched
  const norm = Math.sqrt(values.reduce((sum, value) => sum + value * value, 0));
  return values.map((value) => value / norm);
}

function misalignedCopy(bytes: Uint8Array): Uint8Array {
  const holder = new Uint8Array(bytes.byteLength + 1);
  holder.set(bytes, 1);
  return holder.subarray(1);
}

/** Every call that writes stored bytes, with the twin's expected bytes computed from the untouched input. */
function cases(dtype: FloatDType): { request: Omit<KernelRequest, 'chunk'>; input: Uint8Array; expected: Uint8Array }[] {
  const columns = storedMatrix(ROWS, COLS, dtype, 11); // [dModel, cols]
  const embedding = storedMatrix(COLS, ROWS, dtype, 12); // [vocab, dModel]
  const direction = unit(ROWS, 13); // [dModel]
  const projection = projectColumns(columns, dtype, 0, ROWS, COLS, direction); // [cols]
  const { projection: npProjection, squaredNorms } = projectColumnsWithNorms(columns, dtype, 0, ROWS, COLS, direction);
  const sumProjection = new Float64Array(COLS).map((_, j) => 0 + npProjection[j]); // summed into zeros, as the engine does
  const sumNorms = new Float64Array(COLS).map((_, j) => 0 + squaredNorms[j]);
  const w = 0.8;
  const factors = normPreservingFactors(sumProjection, sumNorms, squaredLength(direction), w);
  const base = { dtype, rowStart: 0, direction };
  return [
    { request: { ...base, op: 'applyColumns', rows: ROWS, cols: COLS, projection, scale: 0.7 }, input: columns, expected: applyColumns(columns, dtype, 0, ROWS, COLS, direction, projection, 0.7) },
    { request: { ...base, op: 'orthogonalizeColumns', rows: ROWS, cols: COLS, scale: 1 }, input: columns, expected: applyColumns(columns, dtype, 0, ROWS, COLS, direction, projection, 1) },
    { request: { ...base, op: 'applyRows', rows: COLS, cols: ROWS, scale: 1.3 }, input: embedding, expected: applyRows(embedding, dtype, COLS, ROWS, direction, 1.3) },
    { request: { ...base, op: 'applyBias', rows: 1, cols: ROWS, scale: 1 }, input: embedding.subarray(0, embedding.byteLength / COLS), expected: applyBias(embedding.subarray(0, embedding.byteLength / COLS), dtype, direction, 1) },
    {
      request: { ...base, op: 'applyColumnsNormPreserving', rows: ROWS, cols: COLS, projection: sumProjection, factors, scale: w },
      input: columns,
      expected: applyColumnsNormPreserving(columns, dtype, 0, ROWS, COLS, direction, sumProjection, factors, w),
    },
    { request: { ...base, op: 'orthogonalizeColumnsNormPreserving', rows: ROWS, cols: COLS, scale: w }, input: columns, expected: applyColumnsNormPreserving(columns, dtype, 0, ROWS, COLS, direction, sumProjection, factors, w) },
    { request: { ...base, op: 'applyRowsNormPreserving', rows: COLS, cols: ROWS, scale: w }, input: embedding, expected: applyRowsNormPreserving(embedding, dtype, COLS, ROWS, direction, w) },
  ];
}

describe.each(DTYPES)('kernel calls ≡ reference twins, %s', (dtype) => {
  it.each(cases(dtype).map((c) => [c.request.op, c] as const))('%s: new buffer, in place, and misaligned in place', (_, { request, input, expected }) => {
    const intact = input.slice();
    const fresh = runKernel({ ...request, chunk: input }, false) as Uint8Array;
    expect(Buffer.from(fresh).equals(Buffer.from(expected))).toBe(true);
    expect(Buffer.from(input).equals(Buffer.from(intact))).toBe(true); // not in place: the input is untouched

    const chunk = input.slice();
    const inPlace = runKernel({ ...request, chunk }, true) as Uint8Array;
    expect(Buffer.from(inPlace).equals(Buffer.from(expected))).toBe(true);
    if (request.op !== 'applyBias') expect(inPlace).toBe(chunk); // written over the chunk it was given

    const odd = misalignedCopy(input);
    const oddResult = runKernel({ ...request, chunk: odd }, true) as Uint8Array;
    expect(Buffer.from(oddResult).equals(Buffer.from(expected))).toBe(true);
  });

  it('pass 1 calls return the twins’ partials', () => {
    const columns = storedMatrix(ROWS, COLS, dtype, 21);
    const direction = unit(ROWS, 22);
    const projection = runKernel({ op: 'projectColumns', chunk: columns, dtype, rowStart: 0, rows: ROWS, cols: COLS, direction, scale: 1 }, true) as Float64Array;
    expect(Array.from(projection)).toEqual(Array.from(projectColumns(columns, dtype, 0, ROWS, COLS, direction)));
    const withNorms = runKernel({ op: 'projectColumnsWithNorms', chunk: columns, dtype, rowStart: 0, rows: ROWS, cols: COLS, direction, scale: 1 }, true);
    const twin = projectColumnsWithNorms(columns, dtype, 0, ROWS, COLS, direction);
    expect(withNorms).toEqual(twin);
  });
});

describe('backends built from the call list', () => {
  it('the in-place CPU backend writes over the chunk, the shared one never does', async () => {
    const embedding = storedMatrix(COLS, ROWS, 'BF16', 31);
    const direction = unit(ROWS, 32);
    const expected = applyRows(embedding, 'BF16', COLS, ROWS, direction, 1);
    const kept = embedding.slice();
    expect(Buffer.from(await cpuOrthogonalizeBackend.applyRows(kept, 'BF16', COLS, ROWS, direction, 1)).equals(Buffer.from(expected))).toBe(true);
    expect(Buffer.from(kept).equals(Buffer.from(embedding))).toBe(true);
    const overwritten = embedding.slice();
    expect(await cpuInPlaceOrthogonalizeBackend.applyRows(overwritten, 'BF16', COLS, ROWS, direction, 1)).toBe(overwritten);
    expect(Buffer.from(overwritten).equals(Buffer.from(expected))).toBe(true);
  });

  it('a call missing its projection is refused with the call named', async () => {
    const backend = kernelBackend('test', async (request) => runKernel({ ...request, projection: undefined }, false));
    await expect(backend.applyColumns(new Uint8Array(4), 'BF16', 0, 1, 2, new Float32Array(1), new Float64Array(2), 1)).rejects.toThrow(/applyColumns: the request has no projection/);
  });
});
