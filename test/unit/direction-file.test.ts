// Direction files per docs/contracts.md: safetensors `direction` [d] / `directions` [L+1, d] in F32/F16/BF16,
// .npy and .json forms; selection by layer; every refusal names the file.
import { describe, expect, it } from 'vitest';
import { InvalidFileError, InvalidInputError } from '../../src/base/errors';
import { encodeSafetensors, readSafetensorsHeader, type SafetensorsDType } from '../../src/formats/safetensors';
import { MemoryByteSource } from '../../src/ports/bytes';
import { encodeDirectionsSafetensors, parseDirectionFile, selectDirection } from '../../src/formats/direction-file';

/** float32 rounding of a unit vector computed in float64. */
const FLOAT32_UNIT_TOLERANCE = 1e-7;

function u16(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  values.forEach((value, index) => new DataView(out.buffer).setUint16(index * 2, value, true));
  return out;
}
function f32(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  values.forEach((value, index) => new DataView(out.buffer).setFloat32(index * 4, value, true));
  return out;
}
function safetensorsWith(name: string, dtype: SafetensorsDType, shape: number[], data: Uint8Array): Uint8Array {
  return encodeSafetensors([{ name, dtype, shape, data }]);
}
function npy(descr: string, shape: number[], data: Uint8Array): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const headerText = dict.padEnd(Math.ceil((dict.length + 11) / 64) * 64 - 11, ' ') + '\n';
  const header = new TextEncoder().encode(headerText);
  const out = new Uint8Array(10 + header.byteLength + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.byteLength, true);
  out.set(header, 10);
  out.set(data, 10 + header.byteLength);
  return out;
}
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

function caught(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('parseDirectionFile', () => {
  it('reads a single `direction` [d] in F32, F16 and BF16 (bit patterns for 1.5, -2, 0.25)', () => {
    const forms: [SafetensorsDType, Uint8Array][] = [
      ['F32', f32([1.5, -2, 0.25])],
      ['F16', u16([0x3e00, 0xc000, 0x3400])],
      ['BF16', u16([0x3fc0, 0xc000, 0x3e80])],
    ];
    for (const [dtype, data] of forms) {
      const parsed = parseDirectionFile('r.safetensors', safetensorsWith('direction', dtype, [3], data));
      expect(parsed.perLayer).toBe(false);
      expect(parsed.rows.map((row) => [...row])).toEqual([[1.5, -2, 0.25]]);
    }
  });

  it('reads per-layer `directions` [L+1, d] as rows, and round-trips what analyze writes', () => {
    const rows = [Float32Array.from([1, 0, 0]), Float32Array.from([0, 2, 0]), Float32Array.from([0.5, 0.25, -1])];
    const bytes = encodeDirectionsSafetensors(rows);
    const parsed = parseDirectionFile('out/directions.safetensors', bytes);
    expect(parsed.perLayer).toBe(true);
    expect(parsed.rows).toEqual(rows);
  });

  it('writes directions as one F32 tensor `directions` [rows, d]', async () => {
    const bytes = encodeDirectionsSafetensors([Float32Array.from([1, 2]), Float32Array.from([3, 4])]);
    const header = await readSafetensorsHeader(new MemoryByteSource('d', bytes));
    expect(header.tensors).toEqual([{ name: 'directions', dtype: 'F32', shape: [2, 2], dataOffsets: [0, 16] }]);
    expect(new Float32Array(bytes.slice(header.dataStart).buffer)).toEqual(Float32Array.from([1, 2, 3, 4]));
    expect(() => encodeDirectionsSafetensors([])).toThrow(InvalidInputError);
    expect(() => encodeDirectionsSafetensors([new Float32Array(2), new Float32Array(3)])).toThrow(/same non-zero length/);
  });

  it('reads .npy [d] and [L+1, d] in float32, float64 and float16', () => {
    expect(parseDirectionFile('r.npy', npy('<f4', [2], f32([1, -1])))).toEqual({ file: 'r.npy', rows: [Float32Array.from([1, -1])], perLayer: false });
    const f64 = new Uint8Array(Float64Array.from([1, 2, 3, 4, 5, 6]).buffer);
    const perLayer = parseDirectionFile('r.npy', npy('<f8', [3, 2], f64));
    expect(perLayer.perLayer).toBe(true);
    expect(perLayer.rows.map((row) => [...row])).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect([...parseDirectionFile('h.NPY', npy('<f2', [2], u16([0x3e00, 0xc000]))).rows[0]]).toEqual([1.5, -2]);
  });

  it('reads .json arrays, arrays of arrays, and {"direction"}/{"directions"} objects', () => {
    expect(parseDirectionFile('r.json', json([1, 2, 3]))).toEqual({ file: 'r.json', rows: [Float32Array.from([1, 2, 3])], perLayer: false });
    expect(parseDirectionFile('r.json', json([[1, 2], [3, 4]])).rows).toEqual([Float32Array.from([1, 2]), Float32Array.from([3, 4])]);
    expect(parseDirectionFile('r.json', json({ direction: [5, 6] })).perLayer).toBe(false);
    expect(parseDirectionFile('r.json', json({ directions: [[5, 6]] })).perLayer).toBe(true);
  });

  it('refuses malformed direction files, naming the file', () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ['d.safetensors', safetensorsWith('weights', 'F32', [2], f32([1, 2])), /has no tensor "direction" \[d\] or "directions" \[L\+1, d\] \(found: "weights"\)/],
      ['d.safetensors', encodeSafetensors([{ name: 'direction', dtype: 'F32', shape: [1], data: f32([1]) }, { name: 'directions', dtype: 'F32', shape: [1, 1], data: f32([1]) }]), /has both/],
      ['d.safetensors', safetensorsWith('direction', 'F32', [1, 2], f32([1, 2])), /shape \[1, 2\]; expected \[d\]/],
      ['d.safetensors', safetensorsWith('directions', 'F32', [2], f32([1, 2])), /shape \[2\]; expected \[L\+1, d\]/],
      ['d.safetensors', safetensorsWith('direction', 'I32', [2], f32([1, 2])), /is I32; a direction must be F32, F16 or BF16/],
      ['d.safetensors', safetensorsWith('direction', 'F32', [0], new Uint8Array(0)), /empty direction/],
      ['d.safetensors', safetensorsWith('direction', 'F32', [2], f32([1, 2])).subarray(0, 20), /d.safetensors: /],
      ['d.npy', npy('<f4', [1, 1, 2], f32([1, 2])), /shape \(1, 1, 2\); expected \(d,\) or \(L\+1, d\)/],
      ['d.npy', npy('|O', [1], new Uint8Array(8)), /pickles are never loaded/],
      ['d.json', json([1, 'x']), /entry 1 is a string \("x"\), not a number/],
      ['d.json', json([1, null]), /entry 1 is null, not a number/],
      ['d.json', json([[1, 2], [3]]), /row 1 has 1 entries but row 0 has 2/],
      ['d.json', json([]), /non-empty JSON array/],
      ['d.json', json({ something: [1] }), /non-empty JSON array/],
      ['d.json', new TextEncoder().encode('[1, 2'), /is not valid JSON/],
      ['d.pt', new Uint8Array(4), /pickles are never loaded/],
      ['d.txt', new Uint8Array(4), /must be .safetensors, .npy or .json/],
    ];
    for (const [file, bytes, problem] of cases) {
      const error = caught(() => parseDirectionFile(file, bytes));
      expect(error, `${file} ${problem}`).toBeInstanceOf(InvalidFileError);
      expect(error.message.startsWith(`${file}: `)).toBe(true);
      expect(error.message).toMatch(problem);
    }
  });
});

describe('selectDirection', () => {
  const perLayer = parseDirectionFile('run/directions.safetensors', encodeDirectionsSafetensors([Float32Array.from([1, 1, 0]), Float32Array.from([0, 3, 4])]));

  it('normalizes the single direction to unit length, keeping its orientation', () => {
    const parsed = parseDirectionFile('r.json', json([3, 0, -4]));
    const unit = selectDirection(parsed, { hiddenSize: 3 });
    expect(unit).toBeInstanceOf(Float32Array);
    expect(unit[0]).toBeCloseTo(0.6, 7);
    expect(unit[2]).toBeCloseTo(-0.8, 7);
    expect(Math.abs(Math.hypot(...unit) - 1)).toBeLessThan(FLOAT32_UNIT_TOLERANCE);
    // A layer given with a single-direction file is harmless: there is only one to use.
    expect(selectDirection(parsed, { hiddenSize: 3, layer: 7 })).toEqual(unit);
  });

  it('picks and normalizes the requested row of a per-layer file', () => {
    const unit = selectDirection(perLayer, { hiddenSize: 3, layer: 1 });
    expect([...unit].map((value) => Number(value.toFixed(7)))).toEqual([0, 0.6, 0.8]);
  });

  it('asks for --layer when a per-layer file is given without one, and checks its range', () => {
    const missing = caught(() => selectDirection(perLayer, { hiddenSize: 3 }));
    expect(missing).toBeInstanceOf(InvalidInputError);
    expect(missing.message).toBe('run/directions.safetensors: holds 2 per-layer directions (layers 0-1); choose one with --layer N');
    expect(caught(() => selectDirection(perLayer, { hiddenSize: 3, layer: 2 })).message).toMatch(/--layer 2 is out of range; the file has layers 0-1/);
    expect(caught(() => selectDirection(perLayer, { hiddenSize: 3, layer: 0.5 }))).toBeInstanceOf(InvalidInputError);
    expect(selectDirection(perLayer, { hiddenSize: 3, layer: 1, numLayers: 1 })).toHaveLength(3);
    expect(caught(() => selectDirection(perLayer, { hiddenSize: 3, layer: 1, numLayers: 4 })).message).toBe(
      'run/directions.safetensors: holds 2 per-layer directions but the model has 4 layers (5 expected); was it made for another model?',
    );
  });

  it('refuses a wrong length (InvalidInputError) and zero, NaN or Inf (InvalidFileError), naming the file', () => {
    const wrongLength = caught(() => selectDirection(perLayer, { hiddenSize: 4, layer: 0 }));
    expect(wrongLength).toBeInstanceOf(InvalidInputError);
    expect(wrongLength.message).toBe("run/directions.safetensors: layer 0 direction has 3 entries but the model's hidden size is 4");
    const bad: [string, Uint8Array, RegExp][] = [
      ['zero.json', json([0, 0, 0]), /^zero.json: direction is all zeros/],
      ['nan.safetensors', safetensorsWith('direction', 'F32', [3], f32([1, NaN, 0])), /^nan.safetensors: direction entry 1 is NaN/],
      ['inf.safetensors', safetensorsWith('direction', 'F16', [3], u16([0x3c00, 0x0000, 0x7c00])), /^inf.safetensors: direction entry 2 is Infinity/],
      ['big.json', json([1e39, 1, 1]), /^big.json: direction entry 0 is Infinity/], // overflows float32 storage
    ];
    for (const [file, bytes, problem] of bad) {
      const error = caught(() => selectDirection(parseDirectionFile(file, bytes), { hiddenSize: 3 }));
      expect(error).toBeInstanceOf(InvalidFileError);
      expect(error.message).toMatch(problem);
    }
  });
});

describe('directions.safetensors with harmful_mean and harmless_mean', () => {
  const rows = [Float32Array.of(1, 0, 0), Float32Array.of(0, 1, 0)];
  const harmful = [Float32Array.of(0.5, 2, -1), Float32Array.of(3, 0.25, 1)];
  const harmless = [Float32Array.of(-1, 0.5, 0), Float32Array.of(2, 2, 2)];

  it('round-trips the means beside the directions', () => {
    const parsed = parseDirectionFile('d.safetensors', encodeDirectionsSafetensors(rows, { harmful, harmless }));
    expect(parsed.rows).toEqual(rows);
    expect(parsed.harmfulMeans).toEqual(harmful);
    expect(parsed.harmlessMeans).toEqual(harmless);
    expect(parseDirectionFile('old.safetensors', encodeDirectionsSafetensors(rows)).harmlessMeans).toBeUndefined();
  });

  it('refuses means whose shape differs from the directions, naming the file and tensor', () => {
    const bytes = encodeSafetensors([
      { name: 'directions', dtype: 'F32', shape: [2, 3], data: new Uint8Array(24) },
      { name: 'harmless_mean', dtype: 'F32', shape: [3, 3], data: new Uint8Array(36) },
    ]);
    expect(() => parseDirectionFile('bad.safetensors', bytes)).toThrow(/bad\.safetensors: tensor "harmless_mean" has shape \[3, 3\]; expected \[2, 3\]/);
  });
});
