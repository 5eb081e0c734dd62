/**
 * Safetensors header validation, following the reference implementation (the Rust `safetensors` crate):
 * 8-byte little-endian header length N (≤ 100 MB, within the file), then N bytes of UTF-8 JSON starting with
 * `{` (trailing spaces allowed), mapping tensor names to {dtype, shape, data_offsets} plus an optional
 * `__metadata__` string map. Sorted by offset, tensors must tile the data section exactly from 0 to the end of
 * the file, each spanning numel × dtype size bytes. Stricter than the crate where JSON.parse would silently
 * lose information: duplicate keys and non-integer or > 2^53 numbers are rejected.
 */
import { InvalidFileError } from '../base/errors';
import { dtypeByteSize, isSafetensorsDType, SAFETENSORS_DTYPES, type SafetensorsDType } from './safetensors-dtypes';
import { isJsonObject, JsonNumber, JsonSyntaxError, parseStrictJson, type JsonValue } from './strict-json';

export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;
/** The little-endian u64 that holds the header length. */
export const SAFETENSORS_LENGTH_PREFIX_BYTES = 8;
export const SAFETENSORS_METADATA_KEY = '__metadata__';

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** [begin, end) relative to dataStart. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** The source name, used in every error message. */
  file: string;
  fileSize: number;
  /** 8 + N: where tensor data begins. */
  dataStart: number;
  /** Sorted by begin offset. */
  tensors: SafetensorsTensorInfo[];
  metadata: Record<string, string> | null;
  /** The first dataStart bytes as stored, for byte-exact copies. */
  rawHeader: Uint8Array;
}

/**
 * Reads the header length from the 8-byte prefix and checks it against the cap and the file size, so the
 * caller can allocate exactly that many bytes. Returns N.
 */
export function checkedHeaderLength(file: string, fileSize: number, prefix: Uint8Array): number {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) throw new InvalidFileError(file, `has an invalid size ${fileSize}`);
  if (fileSize < SAFETENSORS_LENGTH_PREFIX_BYTES || prefix.byteLength < SAFETENSORS_LENGTH_PREFIX_BYTES) {
    throw new InvalidFileError(file, `is ${fileSize} bytes, too short for a safetensors file (the header length alone takes 8)`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, SAFETENSORS_LENGTH_PREFIX_BYTES);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const headerLength = (BigInt(high) << 32n) | BigInt(low);
  if (headerLength > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw new InvalidFileError(
      file,
      `declares a ${headerLength}-byte header, over the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`,
    );
  }
  const length = Number(headerLength);
  if (SAFETENSORS_LENGTH_PREFIX_BYTES + length > fileSize) {
    throw new InvalidFileError(file, `declares a ${length}-byte header but the file is only ${fileSize} bytes (truncated?)`);
  }
  return length;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Validates a complete header. `rawHeader` is the first 8 + N bytes of a file of `fileSize` bytes.
 * Throws InvalidFileError(file, problem) on the first rule broken.
 */
export function parseSafetensorsHeaderBytes(file: string, fileSize: number, rawHeader: Uint8Array): SafetensorsHeader {
  const headerLength = checkedHeaderLength(file, fileSize, rawHeader);
  const dataStart = SAFETENSORS_LENGTH_PREFIX_BYTES + headerLength;
  if (rawHeader.byteLength < dataStart) {
    throw new InvalidFileError(file, `is truncated inside its ${headerLength}-byte header`);
  }
  let text: string;
  try {
    text = utf8.decode(rawHeader.subarray(SAFETENSORS_LENGTH_PREFIX_BYTES, dataStart));
  } catch {
    throw new InvalidFileError(file, 'header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw new InvalidFileError(file, "header must be a JSON object starting with '{'");
  let root: JsonValue;
  let metadata: Record<string, string> | null = null;
  const tensors: SafetensorsTensorInfo[] = [];
  try {
    // Entry by entry: the header never exists as a whole JSON tree beside the tensor list (memory stays linear and small).
    root = parseStrictJson(text, undefined, (name, entry) => {
      if (name === SAFETENSORS_METADATA_KEY) metadata = parseMetadata(file, entry);
      else tensors.push(parseTensorInfo(file, name, entry));
    });
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new InvalidFileError(file, `header is not valid JSON: ${error.message}`);
    throw error;
  }
  if (!isJsonObject(root)) throw new InvalidFileError(file, 'header must be a JSON object');
  tensors.sort(
    (left, right) =>
      left.dataOffsets[0] - right.dataOffsets[0] ||
      left.dataOffsets[1] - right.dataOffsets[1] ||
      (left.name < right.name ? -1 : left.name > right.name ? 1 : 0),
  );

  let expectedBegin = 0;
  let previous: SafetensorsTensorInfo | null = null;
  for (const tensor of tensors) {
    const [begin, end] = tensor.dataOffsets;
    if (begin < expectedBegin) {
      throw new InvalidFileError(
        file,
        `tensor ${quote(tensor.name)} data_offsets [${begin}, ${end}] overlap tensor ${quote(previous!.name)} which ends at ${expectedBegin}`,
      );
    }
    if (begin > expectedBegin) {
      const after = previous ? `after tensor ${quote(previous.name)}` : 'at the start of the data';
      throw new InvalidFileError(
        file,
        `tensor ${quote(tensor.name)} data_offsets [${begin}, ${end}] leave a gap of ${begin - expectedBegin} bytes ${after} (expected begin ${expectedBegin})`,
      );
    }
    const expectedBytes = tensorByteCount(tensor);
    if (expectedBytes !== BigInt(end - begin)) {
      throw new InvalidFileError(
        file,
        `tensor ${quote(tensor.name)} has shape [${tensor.shape.join(', ')}] of ${tensor.dtype} (${expectedBytes} bytes) but data_offsets span ${end - begin} bytes`,
      );
    }
    expectedBegin = end;
    previous = tensor;
  }
  const dataEnd = dataStart + expectedBegin;
  if (dataEnd !== fileSize) {
    const problem =
      dataEnd > fileSize
        ? `tensor data should end at byte ${dataEnd} but the file is only ${fileSize} bytes (truncated)`
        : `tensor data ends at byte ${dataEnd} but the file is ${fileSize} bytes (${fileSize - dataEnd} unexplained trailing bytes)`;
    throw new InvalidFileError(file, problem);
  }
  // No copy when the caller passed exactly the header (a 100 MB header is not duplicated).
  return { file, fileSize, dataStart, tensors, metadata, rawHeader: rawHeader.byteLength === dataStart ? rawHeader : rawHeader.slice(0, dataStart) };
}

function parseMetadata(file: string, entry: JsonValue): Record<string, string> {
  if (!isJsonObject(entry)) throw new InvalidFileError(file, `${SAFETENSORS_METADATA_KEY} must be an object of strings`);
  const metadata: Record<string, string> = {};
  for (const [key, value] of entry) {
    if (typeof value !== 'string') {
      throw new InvalidFileError(file, `${SAFETENSORS_METADATA_KEY} value for key ${quote(key)} is not a string`);
    }
    // defineProperty: a key named "__proto__" stays a plain key.
    Object.defineProperty(metadata, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return metadata;
}

function parseTensorInfo(file: string, name: string, entry: JsonValue): SafetensorsTensorInfo {
  const where = `tensor ${quote(name)}`;
  if (!isJsonObject(entry)) throw new InvalidFileError(file, `${where} is not an object with dtype, shape and data_offsets`);
  const dtype = entry.get('dtype');
  if (dtype === undefined) throw new InvalidFileError(file, `${where} has no dtype`);
  if (!isSafetensorsDType(dtype)) {
    const shown = typeof dtype === 'string' ? quote(dtype) : 'a non-string';
    throw new InvalidFileError(file, `${where} has unknown dtype ${shown} (known: ${SAFETENSORS_DTYPES.join(', ')})`);
  }
  const shapeValue = entry.get('shape');
  if (shapeValue === undefined) throw new InvalidFileError(file, `${where} has no shape`);
  if (!Array.isArray(shapeValue)) throw new InvalidFileError(file, `${where} shape must be an array of non-negative integers`);
  const shape = shapeValue.map((dimension) => {
    const size = dimension instanceof JsonNumber ? dimension.asNonNegativeSafeInteger() : null;
    if (size === null) {
      throw new InvalidFileError(file, `${where} shape has ${describe(dimension)}, not a non-negative integer`);
    }
    return size;
  });
  const offsetsValue = entry.get('data_offsets');
  if (offsetsValue === undefined) throw new InvalidFileError(file, `${where} has no data_offsets`);
  if (!Array.isArray(offsetsValue) || offsetsValue.length !== 2) {
    throw new InvalidFileError(file, `${where} data_offsets must be [begin, end]`);
  }
  const offsets = offsetsValue.map((offset) => {
    const value = offset instanceof JsonNumber ? offset.asNonNegativeSafeInteger() : null;
    if (value === null) {
      throw new InvalidFileError(file, `${where} data_offsets has ${describe(offset)}, not a non-negative integer`);
    }
    return value;
  });
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new InvalidFileError(file, `${where} data_offsets [${begin}, ${end}] end before they begin`);
  return { name, dtype, shape, dataOffsets: [begin, end] };
}

/** numel × dtype size, exact (BigInt): a shape like [2^40, 2^40] must not wrap around to a plausible size. */
export function tensorByteCount(tensor: { dtype: SafetensorsDType; shape: readonly number[] }): bigint {
  let count = BigInt(dtypeByteSize(tensor.dtype));
  for (const dimension of tensor.shape) count *= BigInt(dimension);
  return count;
}

function describe(value: JsonValue): string {
  if (value instanceof JsonNumber) return value.text.length > 40 ? `${value.text.slice(0, 40)}…` : value.text;
  if (typeof value === 'string') return `string ${quote(value)}`;
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Map) return 'an object';
  return String(value);
}

/** JSON-quotes a name for messages, shortened so a hostile 50 MB name cannot flood a terminal. */
function quote(name: string): string {
  const shown = name.length > 200 ? `${name.slice(0, 200)}…` : name;
  return JSON.stringify(shown);
}
