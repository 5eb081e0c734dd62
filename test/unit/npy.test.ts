// .npy reading against files written by numpy itself, plus hostile headers: pickles (object arrays),
// oversized headers, structured dtypes, truncation, and header syntax the literal parser must refuse.
import { describe, expect, it } from 'vitest';
import { InvalidFileError } from '../../src/base/errors';
import { npyToFloat64, NPY_MAX_HEADER_BYTES, parseNpy } from '../../src/formats/npy';

// Written by numpy 2.4.6 (np.save / np.lib.format.write_array), hex-encoded: real reference files for the reader.
export const NUMPY_WRITTEN_NPY_HEX = {
  f4: '934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000c03f000000c00000803e',
  f8: '934e554d5059010076007b276465736372273a20273c6638272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000f83f00000000000000c0000000000000d03f',
  f2: '934e554d5059010076007b276465736372273a20273c6632272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a003e00c00034',
  bigEndianF4: '934e554d5059010076007b276465736372273a20273e6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a3fc00000c00000003e800000',
  fortran2x3: '934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a20547275652c20277368617065273a2028322c2033292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000803f00008040000000400000a040000040400000c040',
  c2x3: '934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000803f0000004000004040000080400000a0400000c040',
  objectArray: '934e554d5059010076007b276465736372273a20277c4f272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a80049590000000000000008c166e756d70792e5f636f72652e6d756c74696172726179948c0c5f7265636f6e7374727563749493948c056e756d7079948c076e6461727261799493944b0085944301629487945294284b014b02859468038c0564747970659493948c024f3894898887945294284b038c017c944e4e4e4affffffff4affffffff4b3f749462895d94284b018c016194657494622e',
  int64: '934e554d5059010076007b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a01000000000000000200000000000000',
  version2F4: '934e554d50590200740000007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000c03f000000c00000803e',
  structured: '934e554d5059010076007b276465736372273a205b282761272c20273c663427292c20282762272c20273c693427295d2c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c292c207d202020202020202020202020202020202020202020202020202020202020202020202020200a00000000000000000000000000000000',
} as const;

const fromHex = (hex: string) => Uint8Array.from(hex.match(/../g)!, (pair) => parseInt(pair, 16));
const numpyFile = (key: keyof typeof NUMPY_WRITTEN_NPY_HEX) => fromHex(NUMPY_WRITTEN_NPY_HEX[key]);

/** A version-1 .npy file with the given header text (padded as numpy does) and data bytes. */
function npyWithHeader(headerText: string, data: Uint8Array = new Uint8Array(0), declaredLength?: number): Uint8Array {
  const padded = headerText.padEnd(Math.ceil((headerText.length + 11) / 64) * 64 - 11, ' ') + '\n';
  const header = new TextEncoder().encode(padded);
  const out = new Uint8Array(10 + header.byteLength + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, declaredLength ?? header.byteLength, true);
  out.set(header, 10);
  out.set(data, 10 + header.byteLength);
  return out;
}

function expectInvalid(bytes: Uint8Array, problem: RegExp, decode = false): void {
  let error: unknown = null;
  try {
    const array = parseNpy('d.npy', bytes);
    if (decode) npyToFloat64('d.npy', array);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(InvalidFileError);
  expect((error as Error).message).toMatch(/^d\.npy: /);
  expect((error as Error).message).toMatch(problem);
}

describe('.npy files written by numpy', () => {
  it('reads float32, float64, float16 and big-endian float32 vectors', () => {
    for (const key of ['f4', 'f8', 'f2', 'bigEndianF4', 'version2F4'] as const) {
      const array = parseNpy(key, numpyFile(key));
      expect(array.shape).toEqual([3]);
      expect([...npyToFloat64(key, array)]).toEqual([1.5, -2, 0.25]);
    }
  });

  it('reads a C-ordered 2-D array and transposes a Fortran-ordered one into row-major', () => {
    const c = parseNpy('c', numpyFile('c2x3'));
    const fortran = parseNpy('f', numpyFile('fortran2x3'));
    expect(fortran.fortranOrder).toBe(true);
    expect(c.shape).toEqual([2, 3]);
    expect([...npyToFloat64('c', c)]).toEqual([1, 2, 3, 4, 5, 6]); // [row, column]
    expect([...npyToFloat64('f', fortran)]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('never loads an object array (a pickle), and refuses integer and structured dtypes', () => {
    expectInvalid(numpyFile('objectArray'), /Python object array \(a pickle\); pickles are never loaded/);
    expectInvalid(numpyFile('int64'), /dtype "<i8"; a direction must be float16, float32 or float64/, true);
    expectInvalid(numpyFile('structured'), /structured or missing .npy dtype/);
  });
});

describe('hostile .npy headers', () => {
  const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

  it('wrong magic, unknown version, truncation in the preamble and header', () => {
    expectInvalid(new TextEncoder().encode('PK\u0003\u0004 not numpy'), /no \\x93NUMPY magic/);
    const version9 = numpyFile('f4');
    version9[6] = 9;
    expectInvalid(version9, /unsupported .npy format version 9.0/);
    expectInvalid(numpyFile('f4').subarray(0, 40), /truncated inside its .npy header/);
  });

  it('a header length over the cap is refused before decoding it', () => {
    expectInvalid(npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f32([1]), NPY_MAX_HEADER_BYTES + 1), /over the 10000-byte limit/);
  });

  it('data shorter or longer than the shape says', () => {
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    expectInvalid(npyWithHeader(header, f32([1, 2])), /needs 12 data bytes but the file has 8 \(truncated\)/);
    expectInvalid(npyWithHeader(header, f32([1, 2, 3, 4])), /needs 12 data bytes but the file has 16$/);
    expectInvalid(npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", f32([1])), /needs 73786976294838206464 data bytes/);
  });

  it('header syntax that is not a plain literal: code, calls, duplicates, deep nesting, bad values', () => {
    expectInvalid(npyWithHeader("__import__('os').system('x')"), /not a plain dict literal/);
    expectInvalid(npyWithHeader("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", f32([1])), /duplicate key descr/);
    expectInvalid(npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': ((((((1,),),),),),)}", f32([1])), /nested too deeply/);
    expectInvalid(npyWithHeader("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", f32([1])), /no fortran_order True\/False/);
    expectInvalid(npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", f32([1])), /not a plain dict literal/);
    expectInvalid(npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': ('1',)}", f32([1])), /shape is not a tuple of non-negative integers/);
    expectInvalid(npyWithHeader("['descr']"), /header is not a dict/);
    expectInvalid(npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} extra"), /trailing characters/);
  });

  it('accepts the older Python 2 long-integer shape form', () => {
    const array = parseNpy('d.npy', npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }", f32([3, 4])));
    expect([...npyToFloat64('d.npy', array)]).toEqual([3, 4]);
  });
});
