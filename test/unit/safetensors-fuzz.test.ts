// Fuzz: ≥ 10,000 mutated safetensors files (seeded: bit flips, truncations, length-field changes, textual and
// structural JSON edits). Each must either parse to a header that passes an independent invariant check, or
// be refused with a named WorkbenchError — never a TypeError/RangeError, never a hang, and never a read
// (hence an allocation) larger than the file itself.
import { describe, expect, it } from 'vitest';
import { InvalidFileError, WorkbenchError } from '../../src/base/errors';
import { MemoryByteSource } from '../../src/ports/bytes';
import { ReadRecordingSource } from '../helpers/read-recording-source';
import {
  dtypeByteSize,
  encodeSafetensors,
  readSafetensorsHeader,
  SAFETENSORS_DTYPES,
  SAFETENSORS_MAX_HEADER_BYTES,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsHeader,
} from '../../src/formats/safetensors';
import { mulberry32 } from '../../src/core/random';

const FUZZ_CASES = 12_000;
const SEED = 0x5afe7e50;

/** mulberry32: small, seeded, good enough to drive mutations reproducibly. */
function createRandom(seed: number) {
  const next = mulberry32(seed);
  const integer = (maxExclusive: number) => Math.floor(next() * maxExclusive);
  const pick = <T>(items: readonly T[]): T => items[integer(items.length)];
  return { next, integer, pick };
}
type Random = ReturnType<typeof createRandom>;
/** Header JSON the fuzzer rewrites with values of the wrong type on purpose, and reads back field by field. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type LooseJson = Record<string, any>;

function randomValidFile(random: Random): Uint8Array {
  const entries: SafetensorsEntry[] = [];
  const count = random.integer(6);
  for (let index = 0; index < count; index++) {
    const dtype = random.pick(SAFETENSORS_DTYPES) as SafetensorsDType;
    const shape = Array.from({ length: random.integer(4) }, () => random.integer(4));
    const bytes = shape.reduce((product, dimension) => product * dimension, dtypeByteSize(dtype));
    entries.push({ name: random.pick(['w', 'model.layers.0.mlp.down_proj.weight', 'é名', `t${index}`]) + index, dtype, shape, data: new Uint8Array(bytes) });
  }
  const metadata = random.next() < 0.5 ? { format: 'pt', [`k${random.integer(9)}`]: 'v' } : undefined;
  return encodeSafetensors(entries, metadata);
}

const TOKENS = ['"', '{', '}', '[', ']', ',', ':', '-1', '0', '1.0', '1e9', '9007199254740993', 'null', 'true', '"F32"', '"BF16"', '"__metadata__"', '\\u', '\\ud800', 'é', ' ', '"dtype"', '"shape"', '"data_offsets"', '[0,0]', '[]'];

function mutateJsonText(random: Random, text: string): string {
  const at = random.integer(text.length + 1);
  switch (random.integer(4)) {
    case 0: // delete a span
      return text.slice(0, at) + text.slice(Math.min(text.length, at + 1 + random.integer(8)));
    case 1: // insert a token
      return text.slice(0, at) + random.pick(TOKENS) + text.slice(at);
    case 2: // duplicate a span (duplicate keys, repeated entries)
      return text.slice(0, at) + text.slice(at, at + random.integer(40)) + text.slice(at);
    default: // nudge a number
      return text.replace(/\d+/g, (digits) => (random.next() < 0.2 ? String(Math.max(0, Number(digits) + random.integer(5) - 2)) : digits));
  }
}

function mutateStructure(random: Random, header: LooseJson): void {
  const names = Object.keys(header).filter((name) => name !== '__metadata__');
  const name = names.length > 0 ? random.pick(names) : null;
  const entry = name ? header[name] : null;
  switch (random.integer(7)) {
    case 0:
      if (entry) entry.dtype = random.pick([...SAFETENSORS_DTYPES, 'F4', 'f32', 7]);
      break;
    case 1:
      if (entry && entry.shape.length > 0) entry.shape[random.integer(entry.shape.length)] += random.pick([1, -1, 2 ** 40, 0.5]);
      break;
    case 2:
      if (entry) entry.data_offsets[random.integer(2)] += random.pick([1, -1, 8, 2 ** 53]);
      break;
    case 3:
      if (entry) entry.data_offsets.reverse();
      break;
    case 4:
      if (entry) delete entry[random.pick(['dtype', 'shape', 'data_offsets'])];
      break;
    case 5:
      header[`extra${random.integer(3)}`] = { dtype: 'U8', shape: [random.integer(3)], data_offsets: [0, random.integer(3)] };
      break;
    default:
      header.__metadata__ = random.pick([{ a: 'b' }, { a: 1 }, 'x', null, []]);
  }
}

function withHeaderText(file: Uint8Array, text: string): Uint8Array {
  const oldLength = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const json = new TextEncoder().encode(text);
  const data = file.subarray(8 + oldLength);
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

function mutate(random: Random, original: Uint8Array): Uint8Array {
  let file: Uint8Array = original.slice();
  const rounds = 1 + random.integer(3);
  for (let round = 0; round < rounds; round++) {
    const headerLength = file.byteLength >= 8 ? Number(new DataView(file.buffer).getBigUint64(0, true)) : 0;
    const headerEnd = Math.min(file.byteLength, 8 + Math.min(headerLength, 1 << 20));
    switch (random.integer(6)) {
      case 0: {
        // bit flips, mostly in the header
        const flips = 1 + random.integer(4);
        for (let flip = 0; flip < flips; flip++) {
          const at = random.next() < 0.9 ? random.integer(Math.max(1, headerEnd)) : random.integer(Math.max(1, file.byteLength));
          if (at < file.byteLength) file[at] ^= 1 << random.integer(8);
        }
        break;
      }
      case 1:
        file = file.slice(0, random.integer(file.byteLength + 1));
        break;
      case 2: {
        if (file.byteLength < 8) break;
        const view = new DataView(file.buffer);
        const choice = random.integer(4);
        const value =
          choice === 0
            ? BigInt(Math.max(0, headerLength + random.integer(17) - 8))
            : choice === 1
              ? BigInt(random.integer(file.byteLength + 64))
              : choice === 2
                ? BigInt(SAFETENSORS_MAX_HEADER_BYTES + random.integer(3) - 1)
                : BigInt.asUintN(64, BigInt(random.integer(2 ** 32)) * BigInt(random.integer(2 ** 32)));
        view.setBigUint64(0, value, true);
        break;
      }
      case 3: {
        if (headerEnd <= 8) break;
        const text = new TextDecoder().decode(file.subarray(8, headerEnd));
        file = withHeaderText(file, mutateJsonText(random, text));
        break;
      }
      case 4: {
        let header: LooseJson;
        try {
          header = JSON.parse(new TextDecoder().decode(file.subarray(8, headerEnd)));
        } catch {
          break;
        }
        if (typeof header !== 'object' || header === null || Array.isArray(header)) break;
        try {
          mutateStructure(random, header); // the header may already be mangled by an earlier round
        } catch {
          break;
        }
        file = withHeaderText(file, JSON.stringify(header));
        break;
      }
      default: {
        // change the data section's length
        const delta = random.integer(9) - 4;
        const resized = new Uint8Array(Math.max(0, file.byteLength + delta));
        resized.set(file.subarray(0, resized.byteLength));
        file = resized;
      }
    }
  }
  return file;
}

/** Checks an accepted header against the raw bytes, independently of the parser's own code paths. */
function checkInvariants(bytes: Uint8Array, header: SafetensorsHeader): void {
  const declared = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true);
  expect(declared <= BigInt(SAFETENSORS_MAX_HEADER_BYTES)).toBe(true);
  expect(header.dataStart).toBe(8 + Number(declared));
  expect(header.fileSize).toBe(bytes.byteLength);
  expect([...header.rawHeader]).toEqual([...bytes.subarray(0, header.dataStart)]);
  const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, header.dataStart));
  expect(text.startsWith('{')).toBe(true);
  const json = JSON.parse(text) as LooseJson;
  const names = Object.keys(json).filter((key) => key !== '__metadata__');
  // No duplicates were accepted: JSON.parse (which collapses duplicates) sees exactly as many tensors.
  expect(header.tensors.map((tensor) => tensor.name).sort()).toEqual(names.sort());
  if ('__metadata__' in json) {
    expect(Object.values(json.__metadata__).every((value) => typeof value === 'string')).toBe(true);
    expect(header.metadata).toEqual(json.__metadata__);
  } else {
    expect(header.metadata).toBeNull();
  }
  let expectedBegin = 0;
  for (const tensor of header.tensors) {
    const entry = json[tensor.name];
    expect(entry.dtype).toBe(tensor.dtype);
    expect(entry.shape).toEqual(tensor.shape);
    expect(entry.data_offsets).toEqual(tensor.dataOffsets);
    expect(tensor.shape.every((dimension) => Number.isSafeInteger(dimension) && dimension >= 0)).toBe(true);
    const [begin, end] = tensor.dataOffsets;
    expect(begin).toBe(expectedBegin);
    const bytesNeeded = tensor.shape.reduce((product, dimension) => product * BigInt(dimension), BigInt(dtypeByteSize(tensor.dtype)));
    expect(BigInt(end - begin)).toBe(bytesNeeded);
    expectedBegin = end;
  }
  expect(header.dataStart + expectedBegin).toBe(bytes.byteLength);
}

describe('safetensors header fuzz', () => {
  it(`${FUZZ_CASES} mutated files: valid structure or a named error, no read beyond the file size`, async () => {
    const random = createRandom(SEED);
    const bases = Array.from({ length: 64 }, () => randomValidFile(random));
    let accepted = 0;
    const problems = new Map<string, number>();
    const started = performance.now();
    for (let index = 0; index < FUZZ_CASES; index++) {
      const bytes = mutate(random, random.pick(bases));
      const source = new ReadRecordingSource(new MemoryByteSource(`fuzz-${index}.safetensors`, bytes));
      let header: SafetensorsHeader | null = null;
      try {
        header = await readSafetensorsHeader(source);
      } catch (error) {
        if (!(error instanceof WorkbenchError)) throw new Error(`case ${index}: unnamed ${String(error)}`, { cause: error });
        expect(error).toBeInstanceOf(InvalidFileError);
        expect(error.message.startsWith(`fuzz-${index}.safetensors: `)).toBe(true);
        const kind = (error.data.problem as string).replace(/"[^"]*"|\d+/g, '#').slice(0, 40);
        problems.set(kind, (problems.get(kind) ?? 0) + 1);
      }
      expect(source.largestRead).toBeLessThanOrEqual(bytes.byteLength);
      if (header) {
        checkInvariants(bytes, header);
        accepted++;
      }
    }
    const elapsed = performance.now() - started;
    console.log(`safetensors fuzz: ${FUZZ_CASES} cases, ${accepted} accepted, ${problems.size} kinds of refusal, ${elapsed.toFixed(0)} ms`);
    // The mutations must exercise both sides and many rules, or the fuzz proves little.
    expect(accepted).toBeGreaterThan(FUZZ_CASES * 0.01);
    expect(FUZZ_CASES - accepted).toBeGreaterThan(FUZZ_CASES * 0.5);
    expect(problems.size).toBeGreaterThan(15);
  });
});
