// Streaming reader and writer: round trips, header padding and metadata, chunking by whole rows,
// byte-exact raw headers, and reads that never touch more than the tensor asked for.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidFileError, InvalidInputError } from '../../src/base/errors';
import { BlobByteSource, MemoryByteSource, type ByteSource } from '../../src/ports/bytes';
import { openFileSource } from '../../src/platform/node-files';
import {
  encodeSafetensors,
  encodeSafetensorsHeader,
  readSafetensorsHeader,
  readTensorBytes,
  readTensorChunks,
  type SafetensorsEntry,
} from '../../src/formats/safetensors';
import path from 'node:path';
import { TOY_LLAMA_DIR } from '../helpers/fixtures';
import { ReadRecordingSource } from '../helpers/read-recording-source';

function filled(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, index) => (index * 31 + seed * 7) & 0xff);
}

const entries: SafetensorsEntry[] = [
  { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [5, 3], data: filled(30, 1) }, // [vocab, dModel]
  { name: 'model.layers.0.self_attn.o_proj.weight', dtype: 'F32', shape: [3, 4], data: filled(48, 2) },
  { name: 'scalar', dtype: 'F64', shape: [], data: filled(8, 3) },
  { name: 'empty', dtype: 'F16', shape: [0, 7], data: new Uint8Array(0) },
  { name: '名前 "quoted"\n', dtype: 'U8', shape: [3], data: filled(3, 4) },
];

describe('safetensors writer', () => {
  it('pads the header with spaces so data starts on an 8-byte boundary, and keeps metadata', async () => {
    for (let extra = 0; extra < 9; extra++) {
      const metadata = { format: 'pt', pad: 'x'.repeat(extra) };
      const bytes = encodeSafetensors(entries, metadata);
      const header = await readSafetensorsHeader(new MemoryByteSource('w.safetensors', bytes));
      expect(header.dataStart % 8).toBe(0);
      expect(header.metadata).toEqual(metadata);
      const text = new TextDecoder().decode(header.rawHeader.subarray(8));
      expect(text.trimEnd().endsWith('}')).toBe(true);
      expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
      expect(text.length - text.trimEnd().length).toBeLessThan(8);
    }
  });

  it('lays tensors out in the order given, with the header alone usable by streaming writers', async () => {
    const headerBytes = encodeSafetensorsHeader(entries);
    const streamed = new Uint8Array(headerBytes.byteLength + entries.reduce((sum, entry) => sum + entry.data.byteLength, 0));
    streamed.set(headerBytes);
    let offset = headerBytes.byteLength;
    for (const entry of entries) {
      streamed.set(entry.data, offset);
      offset += entry.data.byteLength;
    }
    expect(streamed).toEqual(encodeSafetensors(entries));
    const header = await readSafetensorsHeader(new MemoryByteSource('s', streamed));
    // zero-byte tensors sort first at equal offsets; the rest keep the given order
    expect(header.tensors.filter((t) => t.name !== 'empty').map((t) => t.name)).toEqual(entries.filter((e) => e.name !== 'empty').map((e) => e.name));
  });

  it('round-trips every tensor byte for byte, including odd names', async () => {
    const bytes = encodeSafetensors(entries, { a: 'b' });
    const source = new MemoryByteSource('r.safetensors', bytes);
    const header = await readSafetensorsHeader(source);
    for (const entry of entries) {
      const info = header.tensors.find((tensor) => tensor.name === entry.name)!;
      expect(info.dtype).toBe(entry.dtype);
      expect(info.shape).toEqual(entry.shape);
      expect(await readTensorBytes(source, header, entry.name)).toEqual(entry.data);
    }
    expect(header.rawHeader).toEqual(bytes.subarray(0, header.dataStart));
    // Re-encoding what was read reproduces the file exactly.
    const reread = await Promise.all(entries.map(async (entry) => ({ ...entry, data: await readTensorBytes(source, header, entry.name) })));
    expect(encodeSafetensors(reread, header.metadata)).toEqual(bytes);
  });

  it('refuses bad entries with InvalidInputError', () => {
    const base = { name: 'w', dtype: 'F32' as const, shape: [2], data: new Uint8Array(8) };
    expect(() => encodeSafetensors([base, base])).toThrow(/appears twice/);
    expect(() => encodeSafetensors([{ ...base, data: new Uint8Array(7) }])).toThrow(/needs 8/);
    expect(() => encodeSafetensors([{ ...base, name: '__metadata__' }])).toThrow(InvalidInputError);
    expect(() => encodeSafetensors([{ ...base, name: 'bad\ud800' }])).toThrow(/not a well-formed string/);
    expect(() => encodeSafetensors([{ ...base, shape: [-2] }])).toThrow(/non-negative integers/);
    expect(() => encodeSafetensors([{ ...base, dtype: 'F4' as never }])).toThrow(/unknown dtype/);
    expect(() => encodeSafetensorsHeader([], { key: 3 as never })).toThrow(/well-formed string/);
  });
});

describe('safetensors streaming reader', () => {
  const bytes = encodeSafetensors(entries);

  it('reads exactly the header with two reads, then only the tensor asked for', async () => {
    const source = new ReadRecordingSource(new MemoryByteSource('l', bytes));
    const header = await readSafetensorsHeader(source);
    expect(source.reads).toEqual([
      [0, 8],
      [8, header.dataStart - 8],
    ]);
    source.reads = [];
    const info = header.tensors.find((tensor) => tensor.name === 'model.layers.0.self_attn.o_proj.weight')!;
    await readTensorBytes(source, header, info.name);
    expect(source.reads).toEqual([[header.dataStart + info.dataOffsets[0], 48]]);
  });

  it('chunks hold whole rows, cover the tensor exactly once, and split oversized rows at element boundaries', async () => {
    const source = new MemoryByteSource('c', bytes);
    const header = await readSafetensorsHeader(source);
    const matrix = header.tensors.find((tensor) => tensor.name === 'model.layers.0.self_attn.o_proj.weight')!; // [3, 4] F32: 16-byte rows
    for (const maxChunkBytes of [4, 5, 16, 17, 33, 48, 1000]) {
      const chunks = [];
      for await (const chunk of readTensorChunks(source, header, matrix, maxChunkBytes)) chunks.push(chunk);
      const rowBytes = 16;
      for (const chunk of chunks) {
        expect(chunk.bytes.byteLength).toBeLessThanOrEqual(maxChunkBytes);
        if (maxChunkBytes >= rowBytes) {
          expect(chunk.offset % rowBytes).toBe(0);
          expect(chunk.bytes.byteLength % rowBytes).toBe(0);
        } else {
          expect(chunk.bytes.byteLength % 4).toBe(0);
        }
      }
      const joined = new Uint8Array(48);
      let expectedOffset = 0;
      for (const chunk of chunks) {
        expect(chunk.offset).toBe(expectedOffset);
        joined.set(chunk.bytes, chunk.offset);
        expectedOffset += chunk.bytes.byteLength;
      }
      expect(expectedOffset).toBe(48);
      expect(joined).toEqual(entries[1].data);
    }
    const empty = header.tensors.find((tensor) => tensor.name === 'empty')!;
    const emptyChunks = [];
    for await (const chunk of readTensorChunks(source, header, empty, 64)) emptyChunks.push(chunk);
    expect(emptyChunks).toEqual([]);
    await expect(readTensorChunks(source, header, matrix, 3).next()).rejects.toThrow(/smaller than one F32 element/);
    await expect(readTensorChunks(source, header, matrix, 0).next()).rejects.toThrow(InvalidInputError);
  });

  it('serves a browser Blob the same as memory, in chunks', async () => {
    const blobSource = new BlobByteSource('b.safetensors', new Blob([bytes.slice().buffer]));
    const header = await readSafetensorsHeader(blobSource);
    expect(header).toEqual(await readSafetensorsHeader(new MemoryByteSource('b.safetensors', bytes)));
    const embedding = header.tensors.find((tensor) => tensor.name === 'model.embed_tokens.weight')!; // [5, 3] BF16: 6-byte rows
    const pieces: Uint8Array[] = [];
    for await (const chunk of readTensorChunks(blobSource, header, embedding, 13)) pieces.push(chunk.bytes);
    expect(pieces.map((piece) => piece.byteLength)).toEqual([12, 12, 6]);
    expect(Uint8Array.from(pieces.flatMap((piece) => [...piece]))).toEqual(entries[0].data);
  });

  it('reports a source that shrank after its header was read, and an unknown tensor name', async () => {
    const header = await readSafetensorsHeader(new MemoryByteSource('x.safetensors', bytes));
    const shorter = new MemoryByteSource('x.safetensors', bytes.subarray(0, bytes.byteLength - 2));
    await expect(readTensorBytes(shorter, header, 'scalar')).rejects.toThrow(/x.safetensors: changed size/);
    const lying: ByteSource = { name: 'x.safetensors', size: bytes.byteLength, read: async (offset, length) => bytes.subarray(offset, offset + length - 1) };
    await expect(readTensorBytes(lying, header, 'scalar')).rejects.toThrow(InvalidFileError);
    await expect(readTensorBytes(lying, header, 'scalar')).rejects.toThrow(/truncated: expected 8 bytes/);
    await expect(readTensorBytes(new MemoryByteSource('x.safetensors', bytes), header, 'nope')).rejects.toThrow(/has no tensor "nope"/);
  });
});

describe('safetensors over Node files', () => {
  let directory = '';
  afterAll(async () => {
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it('reads the toy-llama fixture header and a tensor through a file source', async () => {
    const source = await openFileSource(path.join(TOY_LLAMA_DIR, 'model.safetensors'));
    try {
      const header = await readSafetensorsHeader(source);
      expect(header.metadata).toEqual({ format: 'pt' });
      const embedding = header.tensors.find((tensor) => tensor.name === 'model.embed_tokens.weight')!;
      expect(embedding.shape).toEqual([471, 64]); // [vocab, dModel] per config.json
      const data = await readTensorBytes(source, header, embedding.name);
      expect(data.byteLength).toBe(471 * 64 * 4);
    } finally {
      await source.close();
    }
  });

  it('round-trips through a file and reports truncation of the file', async () => {
    directory = await mkdtemp(join(tmpdir(), 'safetensors-stream-'));
    const path = join(directory, 'model.safetensors');
    const bytes = encodeSafetensors(entries, { format: 'pt' });
    await writeFile(path, bytes);
    const source = await openFileSource(path);
    const header = await readSafetensorsHeader(source);
    for (const entry of entries) expect(await readTensorBytes(source, header, entry.name)).toEqual(entry.data);
    await source.close();
    await writeFile(path, bytes.subarray(0, bytes.byteLength - 1));
    const truncated = await openFileSource(path);
    await expect(readSafetensorsHeader(truncated)).rejects.toThrow(/truncated/);
    await truncated.close();
  });
});
