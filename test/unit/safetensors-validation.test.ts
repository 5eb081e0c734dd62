// One failing input per safetensors header rule (the Rust `safetensors` crate's rules, plus strict JSON),
// each asserting the named error, the file it names and the specific problem.
import { describe, expect, it } from 'vitest';
import { InvalidFileError } from '../../src/base/errors';
import { MemoryByteSource } from '../../src/ports/bytes';
import { ReadRecordingSource } from '../helpers/read-recording-source';
import { readSafetensorsHeader, SAFETENSORS_MAX_HEADER_BYTES } from '../../src/formats/safetensors';

const FILE = 'shard.safetensors';

/** A file made of an 8-byte length, the header text as given (UTF-8), and `dataBytes` zero bytes. */
function fileWithHeader(header: string | Uint8Array, dataBytes = 0, declaredLength?: bigint): Uint8Array {
  const json = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  return out;
}

async function expectInvalid(bytes: Uint8Array, problem: RegExp): Promise<void> {
  const error = await readSafetensorsHeader(new MemoryByteSource(FILE, bytes)).then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(InvalidFileError);
  expect((error as InvalidFileError).data.file).toBe(FILE);
  expect((error as InvalidFileError).message.startsWith(`${FILE}: `)).toBe(true);
  expect((error as InvalidFileError).message).toMatch(problem);
}

const tensor = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });
const headerOf = (entries: Record<string, unknown>) => JSON.stringify(entries);

describe('safetensors header: accepted inputs', () => {
  it('accepts an empty header with no data, a metadata-only header and trailing-space padding', async () => {
    for (const header of ['{}', '{"__metadata__":{"format":"pt"}}', '{}      ']) {
      const parsed = await readSafetensorsHeader(new MemoryByteSource(FILE, fileWithHeader(header)));
      expect(parsed.tensors).toEqual([]);
      expect(parsed.dataStart).toBe(8 + header.length);
    }
  });

  it('sorts tensors by offset whatever their order in the JSON, and keeps zero-size tensors', async () => {
    const header = headerOf({
      b: tensor('F32', [2], [4, 12]),
      empty: tensor('BF16', [0, 5], [0, 0]),
      a: tensor('U8', [4], [0, 4]),
      __metadata__: { note: 'x' },
    });
    const parsed = await readSafetensorsHeader(new MemoryByteSource(FILE, fileWithHeader(header, 12)));
    expect(parsed.tensors.map((t) => t.name)).toEqual(['empty', 'a', 'b']);
    expect(parsed.metadata).toEqual({ note: 'x' });
    expect(parsed.rawHeader.byteLength).toBe(parsed.dataStart);
  });

  it('keeps "__proto__" as a plain tensor name and metadata key', async () => {
    const header = '{"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"__metadata__":{"__proto__":"v"}}';
    const parsed = await readSafetensorsHeader(new MemoryByteSource(FILE, fileWithHeader(header, 1)));
    expect(parsed.tensors[0].name).toBe('__proto__');
    expect(Object.keys(parsed.metadata!)).toEqual(['__proto__']);
  });
});

describe('safetensors header: one failing input per rule', () => {
  it('file shorter than the 8-byte length', () => expectInvalid(new Uint8Array(5), /5 bytes, too short/));

  it('header length over the 100 MB cap, refused before any allocation or read of it', async () => {
    const bytes = fileWithHeader('{}', 0, BigInt(SAFETENSORS_MAX_HEADER_BYTES + 1));
    await expectInvalid(bytes, /100000001-byte header, over the 100000000-byte limit/);
    const recording = new ReadRecordingSource(new MemoryByteSource(FILE, bytes));
    await expect(readSafetensorsHeader(recording)).rejects.toThrow(InvalidFileError);
    expect(recording.largestRead).toBe(8);
  });

  it('header length with the high 32 bits set (2^63)', () =>
    expectInvalid(fileWithHeader('{}', 0, 1n << 63n), /9223372036854775808-byte header, over/));

  it('header length under the cap but past the end of the file, refused before reading it', async () => {
    const bytes = fileWithHeader('{}', 0, 5000n);
    await expectInvalid(bytes, /declares a 5000-byte header but the file is only 10 bytes/);
    const recording = new ReadRecordingSource(new MemoryByteSource(FILE, bytes));
    await expect(readSafetensorsHeader(recording)).rejects.toThrow(InvalidFileError);
    expect(recording.largestRead).toBe(8);
  });

  it('header that is not UTF-8', () => expectInvalid(fileWithHeader(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8/));

  it('header not starting with { (a byte-order mark, leading space, an array)', async () => {
    await expectInvalid(fileWithHeader('\uFEFF{}'), /must be a JSON object starting with '\{'/);
    await expectInvalid(fileWithHeader(' {}'), /starting with '\{'/);
    await expectInvalid(fileWithHeader('[]'), /starting with '\{'/);
  });

  it('empty header', () => expectInvalid(fileWithHeader(''), /starting with '\{'/));
  it('truncated JSON', () => expectInvalid(fileWithHeader('{"a":{"dtype":"F32"'), /not valid JSON: .*at character/));
  it('trailing garbage after the object', () => expectInvalid(fileWithHeader('{} x'), /trailing characters/));
  it('JSON with a trailing comma', () => expectInvalid(fileWithHeader('{"__metadata__":{},}'), /expected a string key/));
  it('control character inside a name', () => expectInvalid(fileWithHeader('{"a\u0001":1}'), /control character/));
  it('lone surrogate escape in a name', () => expectInvalid(fileWithHeader('{"\\ud800":1}'), /lone high surrogate/));
  it('nesting deep enough to overflow a recursive parser', () =>
    expectInvalid(fileWithHeader(`{"a":${'['.repeat(100_000)}`), /nesting deeper than 64/));

  it('duplicate tensor names (JSON.parse would keep the last silently)', () => {
    const entry = JSON.stringify(tensor('U8', [1], [0, 1]));
    return expectInvalid(fileWithHeader(`{"w":${entry},"w":${entry}}`, 1), /duplicate key "w"/);
  });
  it('duplicate field inside a tensor entry', () =>
    expectInvalid(fileWithHeader('{"w":{"dtype":"U8","dtype":"F32","shape":[1],"data_offsets":[0,1]}}', 1), /duplicate key "dtype"/));

  it('__metadata__ that is not an object', () => expectInvalid(fileWithHeader('{"__metadata__":"pt"}'), /__metadata__ must be an object of strings/));
  it('__metadata__ with a non-string value', () =>
    expectInvalid(fileWithHeader('{"__metadata__":{"step":3}}'), /__metadata__ value for key "step" is not a string/));

  it('tensor entry that is not an object', () => expectInvalid(fileWithHeader('{"w":[1,2]}'), /tensor "w" is not an object/));
  it('missing dtype', () => expectInvalid(fileWithHeader(headerOf({ w: { shape: [1], data_offsets: [0, 1] } }), 1), /tensor "w" has no dtype/));
  it('unknown dtype', () => expectInvalid(fileWithHeader(headerOf({ w: tensor('F4', [1], [0, 1]) }), 1), /unknown dtype "F4"/));
  it('non-string dtype', () => expectInvalid(fileWithHeader('{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}', 4), /unknown dtype a non-string/));
  it('missing shape', () => expectInvalid(fileWithHeader(headerOf({ w: { dtype: 'U8', data_offsets: [0, 1] } }), 1), /has no shape/));
  it('shape not an array', () => expectInvalid(fileWithHeader(headerOf({ w: tensor('U8', 4, [0, 4]) }), 4), /shape must be an array/));
  it('negative dimension', () => expectInvalid(fileWithHeader(headerOf({ w: tensor('U8', [-1], [0, 0]) })), /shape has -1, not a non-negative integer/));
  it('fractional dimension', () => expectInvalid(fileWithHeader('{"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}', 1), /shape has 1.5/));
  it('dimension written as 1.0 or 1e0 (JSON.parse would accept both as 1)', async () => {
    await expectInvalid(fileWithHeader('{"w":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}', 1), /shape has 1.0/);
    await expectInvalid(fileWithHeader('{"w":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}', 1), /shape has 1e0/);
  });
  it('dimension above 2^53 (JSON.parse would round it)', () =>
    expectInvalid(fileWithHeader('{"w":{"dtype":"U8","shape":[9007199254740993],"data_offsets":[0,1]}}', 1), /shape has 9007199254740993/));
  it('string dimension', () => expectInvalid(fileWithHeader(headerOf({ w: tensor('U8', ['4'], [0, 4]) }), 4), /shape has string "4"/));
  it('missing data_offsets', () => expectInvalid(fileWithHeader(headerOf({ w: { dtype: 'U8', shape: [1] } }), 1), /has no data_offsets/));
  it('data_offsets with three entries', () => expectInvalid(fileWithHeader(headerOf({ w: tensor('U8', [1], [0, 1, 2]) }), 1), /data_offsets must be \[begin, end\]/));
  it('negative offset', () => expectInvalid(fileWithHeader(headerOf({ w: tensor('U8', [1], [-1, 0]) }), 1), /data_offsets has -1/));
  it('non-integer offset', () => expectInvalid(fileWithHeader('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1.0]}}', 1), /data_offsets has 1.0/));
  it('end before begin', () => expectInvalid(fileWithHeader(headerOf({ w: tensor('U8', [0], [4, 2]) }), 4), /\[4, 2\] end before they begin/));

  it('first tensor not starting at 0', () => expectInvalid(fileWithHeader(headerOf({ w: tensor('U8', [2], [2, 4]) }), 4), /gap of 2 bytes at the start/));
  it('gap between tensors', () =>
    expectInvalid(
      fileWithHeader(headerOf({ a: tensor('U8', [2], [0, 2]), b: tensor('U8', [2], [3, 5]) }), 5),
      /tensor "b" data_offsets \[3, 5\] leave a gap of 1 bytes after tensor "a"/,
    ));
  it('overlapping tensors', () =>
    expectInvalid(
      fileWithHeader(headerOf({ a: tensor('U8', [4], [0, 4]), b: tensor('U8', [4], [2, 6]) }), 6),
      /tensor "b" data_offsets \[2, 6\] overlap tensor "a" which ends at 4/,
    ));
  it('two tensors sharing the same bytes', () =>
    expectInvalid(
      fileWithHeader(headerOf({ a: tensor('U8', [4], [0, 4]), b: tensor('U8', [4], [0, 4]) }), 4),
      /overlap tensor "a"/,
    ));
  it('byte span different from numel × dtype size', () =>
    expectInvalid(fileWithHeader(headerOf({ w: tensor('BF16', [2, 3], [0, 8]) }), 8), /shape \[2, 3\] of BF16 \(12 bytes\) but data_offsets span 8 bytes/));
  it('shape whose byte count overflows 64 bits does not wrap to the span', () =>
    expectInvalid(
      fileWithHeader(headerOf({ w: tensor('F32', [2 ** 52, 2 ** 52, 2 ** 12], [0, 0]) })),
      new RegExp(`\\(${2n ** 118n} bytes\\) but data_offsets span 0 bytes`),
    ));
  it('data ending before the end of the file (trailing bytes)', () =>
    expectInvalid(fileWithHeader(headerOf({ w: tensor('U8', [2], [0, 2]) }), 5), /ends at byte \d+ but the file is \d+ bytes \(3 unexplained trailing bytes\)/));
  it('data running past the end of the file (truncated shard)', () =>
    expectInvalid(fileWithHeader(headerOf({ w: tensor('F32', [4], [0, 16]) }), 10), /should end at byte \d+ but the file is only \d+ bytes \(truncated\)/));
});
