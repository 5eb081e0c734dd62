/**
 * The streaming ZIP64 writer and its reader on small archives: CRC-32 against zlib's, archives read back by
 * fflate, by python3's zipfile and by our reader with the exact bytes, the same files giving the same archive,
 * the entry-count path of ZIP64 (65 535 entries and more), and the writer's misuse errors.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { unzipSync } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { Crc32, crc32 } from '../../src/core/crc32';
import { MemoryByteSource } from '../../src/ports/bytes';
import { readStoredZipDirectory, StoredZipWriter } from '../../src/platform/zip-stream';
import { seededBytes } from '../helpers/seeded-bytes';

const work = mkdtempSync(join(tmpdir(), 'zip-stream-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Writes `files` (in order, each in chunks of `chunk` bytes) and returns the archive. */
async function archiveOf(files: [string, Uint8Array][], chunk = 4096): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const writer = new StoredZipWriter(async (bytes) => void parts.push(bytes.slice()));
  for (const [path, bytes] of files) {
    await writer.beginEntry(path);
    for (let at = 0; at < bytes.byteLength; at += chunk) await writer.write(bytes.subarray(at, at + chunk));
    await writer.endEntry();
  }
  const size = await writer.finish();
  const archive = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    archive.set(part, at);
    at += part.byteLength;
  }
  expect(at).toBe(size);
  return archive;
}

/** python3's zipfile: every entry's name, size and SHA-256 after its CRC check (testzip). */
function pythonListing(archive: Uint8Array): { bad: string | null; entries: [string, number, string][] } {
  const path = join(work, `a-${Math.random().toString(36).slice(2)}.zip`);
  writeFileSync(path, archive);
  const script = `
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    print(json.dumps({"bad": bad, "entries": [[i.filename, i.file_size, hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()]}))
`;
  const run = spawnSync('python3', ['-c', script, path], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`python3 zipfile failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

const sha256 = async (bytes: Uint8Array) => Buffer.from(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)).toString('hex');

describe('CRC-32', () => {
  it('equals zlib.crc32 on every length 0–40 and on a megabyte fed in odd-sized pieces', () => {
    const data = seededBytes(1 << 20, 7);
    for (let length = 0; length <= 40; length++) expect(crc32(data.subarray(0, length))).toBe(zlibCrc32(data.subarray(0, length)));
    const incremental = new Crc32();
    for (let at = 0; at < data.byteLength; at += 1237) incremental.update(data.subarray(at, at + 1237));
    expect(incremental.value()).toBe(zlibCrc32(data));
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926); // the standard check value
  });
});

describe('stored ZIP64 writer', () => {
  const files: [string, Uint8Array][] = [
    ['config.json', new TextEncoder().encode('{"model_type": "llama"}\n')],
    ['empty.txt', new Uint8Array(0)],
    ['onnx/model.onnx', seededBytes(100_003, 1)],
    ['model.onnx', seededBytes(5000, 2)],
    ['dossier/é.txt', new TextEncoder().encode('UTF-8 name')],
  ];

  it('writes archives that fflate, python3 zipfile and our reader read back exactly', async () => {
    const archive = await archiveOf(files, 1000);
    const fflate = unzipSync(archive);
    expect(Object.keys(fflate).sort()).toEqual(files.map(([path]) => path).sort());
    for (const [path, bytes] of files) expect(Buffer.from(fflate[path]).equals(Buffer.from(bytes)), path).toBe(true);

    const python = pythonListing(archive);
    expect(python.bad).toBeNull();
    expect(python.entries).toEqual(await Promise.all(files.map(async ([path, bytes]) => [path, bytes.byteLength, await sha256(bytes)])));

    const entries = await readStoredZipDirectory(new MemoryByteSource('test.zip', archive));
    expect(entries.map((entry) => entry.name)).toEqual(files.map(([path]) => path));
    for (const [index, [, bytes]] of files.entries()) {
      const entry = entries[index];
      expect(entry.crc).toBe(zlibCrc32(bytes));
      expect(Buffer.from(await entry.data.read(0, entry.size)).equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it('gives the same bytes for the same files whatever the chunking', async () => {
    const a = await archiveOf(files, 1000);
    const b = await archiveOf(files, 7);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it('switches to the ZIP64 end record at 65 535 entries, and every reader still finds them all', async () => {
    const many: [string, Uint8Array][] = Array.from({ length: 65_537 }, (_, i) => [`f/${i}`, new Uint8Array([i & 0xff])]);
    const archive = await archiveOf(many);
    const view = new DataView(archive.buffer);
    const end = archive.byteLength - 22;
    expect(view.getUint32(end, true)).toBe(0x06054b50);
    expect(view.getUint16(end + 10, true)).toBe(0xffff);
    expect(view.getUint32(end - 20, true)).toBe(0x07064b50); // the ZIP64 locator just before
    const entries = await readStoredZipDirectory(new MemoryByteSource('many.zip', archive));
    expect(entries).toHaveLength(many.length);
    expect(entries[65_536].name).toBe('f/65536');
    expect(Buffer.from(await entries[65_536].data.read(0, 1))[0]).toBe(65_536 & 0xff);
    const python = pythonListing(archive);
    expect(python.bad).toBeNull();
    expect(python.entries).toHaveLength(many.length);
  });

  it('refuses misuse: overlapping entries, data outside an entry, an open entry at the end', async () => {
    const writer = new StoredZipWriter(async () => undefined);
    await expect(writer.write(new Uint8Array(1))).rejects.toThrow(/data written outside an entry/);
    await writer.beginEntry('a');
    await expect(writer.beginEntry('b')).rejects.toThrow(/b started while a is still open/);
    await expect(writer.finish()).rejects.toThrow(/a is still open at the end/);
  });
});
