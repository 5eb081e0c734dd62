/**
 * Safetensors over a ByteSource: the header is read with two small range reads (length, then exactly the
 * validated header), tensor data with range reads of one tensor or one chunk of rows at a time, so a 4 GB
 * shard never sits in memory and a browser Blob serves the same as a Node file.
 */
import { InvalidFileError, InvalidInputError } from '../base/errors';
import type { ByteSource } from '../ports/bytes';
import { dtypeByteSize } from './safetensors-dtypes';
import {
  checkedHeaderLength,
  parseSafetensorsHeaderBytes,
  SAFETENSORS_LENGTH_PREFIX_BYTES,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
} from './safetensors-header';

export * from './safetensors-dtypes';
export * from './safetensors-header';
export * from './safetensors-write';

export async function readSafetensorsHeader(source: ByteSource): Promise<SafetensorsHeader> {
  const fileSize = source.size;
  if (!Number.isSafeInteger(fileSize) || fileSize < SAFETENSORS_LENGTH_PREFIX_BYTES) {
    throw new InvalidFileError(source.name, `is ${fileSize} bytes, too short for a safetensors file (the header length alone takes 8)`);
  }
  const prefix = await readExactly(source, 0, SAFETENSORS_LENGTH_PREFIX_BYTES);
  // Checked against the cap and the file size before a single header byte is allocated.
  const headerLength = checkedHeaderLength(source.name, fileSize, prefix);
  const rawHeader = new Uint8Array(SAFETENSORS_LENGTH_PREFIX_BYTES + headerLength);
  rawHeader.set(prefix, 0);
  if (headerLength > 0) rawHeader.set(await readExactly(source, SAFETENSORS_LENGTH_PREFIX_BYTES, headerLength), 8);
  return parseSafetensorsHeaderBytes(source.name, fileSize, rawHeader);
}

/** Reads exactly `length` bytes or throws InvalidFileError (the file shrank, or the source is short). */
export async function readExactly(source: ByteSource, offset: number, length: number): Promise<Uint8Array> {
  const bytes = await source.read(offset, length);
  if (bytes.byteLength !== length) {
    throw new InvalidFileError(source.name, `is truncated: expected ${length} bytes at offset ${offset}, got ${bytes.byteLength}`);
  }
  return bytes;
}

export function findTensor(header: SafetensorsHeader, name: string): SafetensorsTensorInfo {
  const tensor = header.tensors.find((candidate) => candidate.name === name);
  if (!tensor) throw new InvalidInputError(`${header.file}: has no tensor ${JSON.stringify(name)}`);
  return tensor;
}

/** The bytes of one tensor, as stored (little-endian, row-major). */
export async function readTensorBytes(source: ByteSource, header: SafetensorsHeader, name: string): Promise<Uint8Array> {
  const tensor = findTensor(header, name);
  checkSameFile(source, header);
  const [begin, end] = tensor.dataOffsets;
  return readExactly(source, header.dataStart + begin, end - begin);
}

export interface TensorChunk {
  /** Byte offset of this chunk within the tensor's data. */
  offset: number;
  bytes: Uint8Array;
}

/** Bytes in one row: shape[1..] × dtype size (a 1-D or scalar tensor's "row" is one element). */
export function tensorRowBytes(tensor: SafetensorsTensorInfo): number {
  return tensor.shape.slice(1).reduce((product, dimension) => product * dimension, dtypeByteSize(tensor.dtype));
}

/**
 * Streams one tensor in chunks of at most `maxChunkBytes`. Chunks hold whole rows whenever one row fits;
 * a row larger than `maxChunkBytes` is split at element boundaries. A zero-byte tensor yields nothing.
 */
export async function* readTensorChunks(
  source: ByteSource,
  header: SafetensorsHeader,
  tensor: SafetensorsTensorInfo,
  maxChunkBytes: number,
): AsyncGenerator<TensorChunk> {
  if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes <= 0) {
    throw new InvalidInputError(`maxChunkBytes must be a positive integer, got ${maxChunkBytes}`);
  }
  checkSameFile(source, header);
  const elementBytes = dtypeByteSize(tensor.dtype);
  if (maxChunkBytes < elementBytes) {
    throw new InvalidInputError(`maxChunkBytes ${maxChunkBytes} is smaller than one ${tensor.dtype} element`);
  }
  const [begin, end] = tensor.dataOffsets;
  const total = end - begin;
  const rowBytes = tensorRowBytes(tensor);
  const chunkBytes =
    rowBytes > 0 && rowBytes <= maxChunkBytes
      ? Math.floor(maxChunkBytes / rowBytes) * rowBytes
      : Math.floor(maxChunkBytes / elementBytes) * elementBytes;
  for (let offset = 0; offset < total; offset += chunkBytes) {
    const length = Math.min(chunkBytes, total - offset);
    yield { offset, bytes: await readExactly(source, header.dataStart + begin + offset, length) };
  }
}

function checkSameFile(source: ByteSource, header: SafetensorsHeader): void {
  if (source.size !== header.fileSize) {
    throw new InvalidFileError(
      source.name,
      `changed size since its header was read (${header.fileSize} bytes then, ${source.size} now)`,
    );
  }
}
