/**
 * Safetensors writer. The header is padded with spaces so the data section starts on an 8-byte boundary
 * (as the reference writer does), tensors are laid out back to back in the order given, and `__metadata__`
 * is kept. `encodeSafetensorsHeader` alone serves streaming writers: write the header, then each tensor's
 * bytes in the same order.
 */
import { InvalidInputError } from '../base/errors';
import { isSafetensorsDType, type SafetensorsDType } from './safetensors-dtypes';
import { SAFETENSORS_LENGTH_PREFIX_BYTES, SAFETENSORS_MAX_HEADER_BYTES, SAFETENSORS_METADATA_KEY, tensorByteCount } from './safetensors-header';

export interface SafetensorsTensorSpec {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
}

export interface SafetensorsEntry extends SafetensorsTensorSpec {
  data: Uint8Array;
}

const HEADER_ALIGNMENT = 8;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** No lone UTF-16 surrogates: they have no UTF-8 form, so a reader could never get the same name back. */
function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}
const SPACE = 0x20;

/** Byte length of each tensor, validated; throws InvalidInputError naming the bad entry. */
export function safetensorsByteLengths(entries: readonly SafetensorsTensorSpec[]): number[] {
  const seen = new Set<string>();
  return entries.map(({ name, dtype, shape }) => {
    if (typeof name !== 'string' || !isWellFormed(name)) throw new InvalidInputError(`tensor name ${String(name)} is not a well-formed string`);
    if (name === SAFETENSORS_METADATA_KEY) throw new InvalidInputError(`a tensor may not be named ${SAFETENSORS_METADATA_KEY}`);
    if (seen.has(name)) throw new InvalidInputError(`tensor ${JSON.stringify(name)} appears twice`);
    seen.add(name);
    if (!isSafetensorsDType(dtype)) throw new InvalidInputError(`tensor ${JSON.stringify(name)} has unknown dtype ${String(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((dimension) => Number.isSafeInteger(dimension) && dimension >= 0)) {
      throw new InvalidInputError(`tensor ${JSON.stringify(name)} shape must be non-negative integers, got ${JSON.stringify(shape)}`);
    }
    const bytes = tensorByteCount({ dtype, shape });
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidInputError(`tensor ${JSON.stringify(name)} is too large`);
    return Number(bytes);
  });
}

export function encodeSafetensorsHeader(entries: readonly SafetensorsTensorSpec[], metadata?: Record<string, string> | null): Uint8Array {
  const lengths = safetensorsByteLengths(entries);
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string' || !isWellFormed(value) || !isWellFormed(key)) {
        throw new InvalidInputError(`${SAFETENSORS_METADATA_KEY} value for ${JSON.stringify(key)} must be a well-formed string`);
      }
    }
    header[SAFETENSORS_METADATA_KEY] = { ...metadata };
  }
  let offset = 0;
  entries.forEach(({ name, dtype, shape }, index) => {
    const end = offset + lengths[index];
    // defineProperty: a tensor named "__proto__" must become a key, not a prototype.
    Object.defineProperty(header, name, {
      value: { dtype, shape: [...shape], data_offsets: [offset, end] },
      enumerable: true,
      writable: true,
      configurable: true,
    });
    offset = end;
  });
  const json = new TextEncoder().encode(JSON.stringify(header));
  const paddedLength = Math.ceil(json.byteLength / HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
  if (paddedLength > SAFETENSORS_MAX_HEADER_BYTES) {
    throw new InvalidInputError(`safetensors header would be ${paddedLength} bytes, over the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`);
  }
  const out = new Uint8Array(SAFETENSORS_LENGTH_PREFIX_BYTES + paddedLength).fill(SPACE, SAFETENSORS_LENGTH_PREFIX_BYTES);
  new DataView(out.buffer).setBigUint64(0, BigInt(paddedLength), true);
  out.set(json, SAFETENSORS_LENGTH_PREFIX_BYTES);
  return out;
}

export function encodeSafetensors(entries: readonly SafetensorsEntry[], metadata?: Record<string, string> | null): Uint8Array {
  const lengths = safetensorsByteLengths(entries);
  entries.forEach((entry, index) => {
    if (!(entry.data instanceof Uint8Array) || entry.data.byteLength !== lengths[index]) {
      throw new InvalidInputError(
        `tensor ${JSON.stringify(entry.name)} data is ${entry.data?.byteLength} bytes but shape [${entry.shape.join(', ')}] of ${entry.dtype} needs ${lengths[index]}`,
      );
    }
  });
  const header = encodeSafetensorsHeader(entries, metadata);
  const total = lengths.reduce((sum, length) => sum + length, header.byteLength);
  const out = new Uint8Array(total);
  out.set(header, 0);
  let offset = header.byteLength;
  for (const entry of entries) {
    out.set(entry.data, offset);
    offset += entry.data.byteLength;
  }
  return out;
}
