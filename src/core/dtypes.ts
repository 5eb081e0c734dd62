/**
 * Codecs for the floating-point storage types of model weights: BF16, F16 and F32, little-endian.
 *
 * Every encoder rounds a JavaScript number (a float64) to the nearest representable value, ties to even,
 * in ONE rounding. Going float64 → float32 → bfloat16 with two round-to-nearest steps is subtly wrong
 * (a value just above a bfloat16 midpoint can round down onto the midpoint in float32 and then to even);
 * instead the float64 is first rounded to float32 *to odd* (truncate, set the last bit when inexact), which
 * keeps enough information for the final round-to-nearest-even to be the correctly rounded result, because
 * float32 has at least two more significand bits than bfloat16 (24 vs 8) and float16 (24 vs 11).
 */

export type FloatDType = 'F32' | 'F16' | 'BF16';

/** Bytes per element of each float storage type. */
export const FLOAT_DTYPE_BYTES: Readonly<Record<FloatDType, number>> = { F32: 4, F16: 2, BF16: 2 };

export function isFloatDType(dtype: string): dtype is FloatDType {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// float64 bit access for the fast paths: on a little-endian host word 1 holds sign, exponent and the top 20
// significand bits, word 0 the low 32.
const scratchDouble = new Float64Array(1);
const scratchDoubleWords = new Uint32Array(scratchDouble.buffer);
const HIGH_WORD = LITTLE_ENDIAN_HOST ? 1 : 0;
const LOW_WORD = 1 - HIGH_WORD;

/**
 * float32 bit pattern of `x` rounded to odd: the float32 truncation of x (toward zero), with its last bit set
 * when x was not exactly representable. Infinities and NaN pass through as float32 would store them.
 */
function float32BitsRoundedToOdd(x: number): number {
  scratchFloat[0] = x; // round to nearest even
  let bits = scratchBits[0];
  const rounded = scratchFloat[0];
  if (rounded === x || x !== x) return bits;
  if (!Number.isFinite(rounded)) {
    // Beyond float32 range: its truncation is float32 max, which is inexact, so odd (max already is odd).
    return (bits & 0x80000000) | 0x7f7fffff;
  }
  // Step the magnitude back to the truncation when round-to-nearest went away from zero.
  if (Math.abs(rounded) > Math.abs(x)) bits -= 1;
  return (bits | 1) >>> 0;
}

/** bfloat16 bit pattern of `x` (any number), round to nearest even; NaN stays a (quiet) NaN, overflow → ±Inf. */
export function float32ToBfloat16Bits(x: number): number {
  // Fast path, straight from the float64 bits, for results that are normal bfloat16 numbers (nearly all weights):
  // keep 7 significand bits, round on the next bit with everything below it as the sticky bit.
  scratchDouble[0] = x;
  const high = scratchDoubleWords[HIGH_WORD];
  const exponent = (high >>> 20) & 0x7ff;
  if (exponent >= 897 && exponent <= 1150) {
    const kept = (high >>> 13) & 0x7f;
    let bits = ((high >>> 16) & 0x8000) | ((exponent - 896) << 7) | kept;
    // A carry out of the significand bumps the exponent, up to Inf from the largest binade: exactly RNE.
    if ((high & 0x1000) !== 0 && ((high & 0xfff) !== 0 || scratchDoubleWords[LOW_WORD] !== 0 || (kept & 1) === 1)) bits += 1;
    return bits;
  }
  return float32ToBfloat16BitsSlow(x);
}

/** Zeros, subnormals, overflow, Inf and NaN: through float32 rounded to odd. */
function float32ToBfloat16BitsSlow(x: number): number {
  if (x !== x) {
    scratchFloat[0] = x;
    const high = scratchBits[0] >>> 16;
    // Keep sign and top payload; setting the quiet bit guarantees a NaN, never an infinity.
    return high | 0x0040;
  }
  const bits = float32BitsRoundedToOdd(x);
  // Round to nearest even on the low 16 bits; a carry into the exponent is the correct next binade (or Inf).
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bfloat16BitsToFloat32(bits: number): number {
  scratchBits[0] = (bits & 0xffff) << 16;
  return scratchFloat[0];
}

/** float16 bit pattern of `x`, round to nearest even, with subnormals; overflow → ±Inf; NaN stays NaN. */
export function float32ToFloat16Bits(x: number): number {
  // Fast path for results that are normal float16 numbers: 10 significand bits kept, RNE from the float64 bits.
  scratchDouble[0] = x;
  const high = scratchDoubleWords[HIGH_WORD];
  const exponent = (high >>> 20) & 0x7ff;
  if (exponent >= 1009 && exponent <= 1038) {
    const kept = (high >>> 10) & 0x3ff;
    let bits = ((high >>> 16) & 0x8000) | ((exponent - 1008) << 10) | kept;
    if ((high & 0x200) !== 0 && ((high & 0x1ff) !== 0 || scratchDoubleWords[LOW_WORD] !== 0 || (kept & 1) === 1)) bits += 1;
    return bits;
  }
  return float32ToFloat16BitsSlow(x);
}

/** Zeros, subnormals, overflow, Inf and NaN: through float32 rounded to odd. */
function float32ToFloat16BitsSlow(x: number): number {
  const bits = float32BitsRoundedToOdd(x);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) {
    if (mantissa === 0) return sign | 0x7c00;
    return sign | 0x7e00 | (mantissa >>> 13); // quiet NaN, top payload kept
  }
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 31) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal float16 (or zero): in units of the smallest subnormal 2^-24 the value is the 24-bit
    // significand shifted right by 14 − halfExponent.
    if (halfExponent < -10) return sign; // below half of the smallest subnormal
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent; // 14..24
    let result = significand >>> shift;
    const remainder = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (result & 1) === 1)) result += 1;
    return sign | result; // a carry to 0x400 is exactly the smallest normal
  }
  let result = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && (result & 1) === 1)) result += 1; // carry may reach Inf: correct
  return sign | result;
}

export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

let float16Table: Float32Array | null = null;
/** All 65,536 float16 values, built on first use (256 KB) so decoding a chunk is one lookup per element. */
function float16DecodeTable(): Float32Array {
  if (!float16Table) {
    float16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) float16Table[bits] = float16BitsToFloat32(bits);
  }
  return float16Table;
}

/** Typed view of little-endian storage; copies only when the bytes are misaligned for the element type. */
function elementView(bytes: Uint8Array, dtype: FloatDType): Uint16Array | Float32Array {
  const size = FLOAT_DTYPE_BYTES[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const count = aligned.byteLength / size;
  return dtype === 'F32'
    ? new Float32Array(aligned.buffer, aligned.byteOffset, count)
    : new Uint16Array(aligned.buffer, aligned.byteOffset, count);
}

function assertLittleEndianHost(): void {
  if (!LITTLE_ENDIAN_HOST) throw new Error('Big-endian hosts are not supported: safetensors data is little-endian.');
}

/**
 * Decodes `count` elements starting at element `start` of stored bytes into `out` (float64).
 * The row-at-a-time form lets the orthogonalizer keep one row of float64 in memory, not a whole chunk.
 */
export function decodeElementsInto(view: Uint16Array | Float32Array, dtype: FloatDType, start: number, count: number, out: Float64Array): void {
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) out[i] = view[start + i];
  } else if (dtype === 'BF16') {
    for (let i = 0; i < count; i++) {
      scratchBits[0] = view[start + i] << 16;
      out[i] = scratchFloat[0];
    }
  } else {
    const table = float16DecodeTable();
    for (let i = 0; i < count; i++) out[i] = table[view[start + i]];
  }
}

/** Encodes `count` float64 values into `view` at element `start`, one round-to-nearest-even each. */
export function encodeElementsInto(values: ArrayLike<number>, count: number, dtype: FloatDType, view: Uint16Array | Float32Array, start: number): void {
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) view[start + i] = values[i];
  } else if (dtype === 'BF16') {
    for (let i = 0; i < count; i++) view[start + i] = float32ToBfloat16Bits(values[i]);
  } else {
    for (let i = 0; i < count; i++) view[start + i] = float32ToFloat16Bits(values[i]);
  }
}

/** A typed view over stored bytes for the element loops above (aligned copy when needed). */
export function storedElements(bytes: Uint8Array, dtype: FloatDType): Uint16Array | Float32Array {
  assertLittleEndianHost();
  return elementView(bytes, dtype);
}

/** A fresh output buffer and its typed view, for `count` elements of `dtype`. */
export function allocateStored(count: number, dtype: FloatDType): { bytes: Uint8Array; view: Uint16Array | Float32Array } {
  assertLittleEndianHost();
  const bytes = new Uint8Array(count * FLOAT_DTYPE_BYTES[dtype]);
  return { bytes, view: elementView(bytes, dtype) };
}

export function decodeToFloat64(bytes: Uint8Array, dtype: FloatDType): Float64Array {
  const view = storedElements(bytes, dtype);
  const out = new Float64Array(view.length);
  decodeElementsInto(view, dtype, 0, view.length, out);
  return out;
}

export function decodeToFloat32(bytes: Uint8Array, dtype: FloatDType): Float32Array {
  return Float32Array.from(decodeToFloat64(bytes, dtype));
}

/** Little-endian bytes of `values` in `dtype`, each rounded once to nearest even. */
export function encodeFromFloat64(values: ArrayLike<number>, dtype: FloatDType): Uint8Array {
  const { bytes, view } = allocateStored(values.length, dtype);
  encodeElementsInto(values, values.length, dtype, view, 0);
  return bytes;
}
