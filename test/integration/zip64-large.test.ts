/**
 * An archive past 4 GiB without holding 4 GiB anywhere: a stored ZIP64 zip whose middle entry is 4 GiB + 1 MiB of
 * zeros (size past 0xFFFFFFFF) and whose last entry and central directory start past 4 GiB (offsets past
 * 0xFFFFFFFF). The writer's output goes to a sparse file: the one zero buffer it is fed is skipped (a hole), every
 * other chunk is written, so the disk holds kilobytes. python3's zipfile then reads the archive independently —
 * sizes, offsets, names, and a CRC check of every entry over all 4 GiB (testzip) — and our reader agrees with it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readStoredZipDirectory, StoredZipWriter } from '../../src/platform/zip-stream';
import type { ByteSource } from '../../src/ports/bytes';

const ZEROS_CHUNK = new Uint8Array(16 * 1024 * 1024);
const BIG_ENTRY_BYTES = 2 ** 32 + 2 ** 20; // past 0xFFFFFFFF
const FIRST = new TextEncoder().encode('before the big entry\n');
const LAST = new TextEncoder().encode('after the big entry: its offset is past 4 GiB\n');

const work = mkdtempSync(join(tmpdir(), 'zip64-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('ZIP64 past 4 GiB', () => {
  it('writes an archive with a >4 GiB entry and >4 GiB offsets that python3 zipfile reads and CRC-checks', async () => {
    const path = join(work, 'large.zip');
    const file = await open(path, 'w');
    let position = 0;
    const writer = new StoredZipWriter(async (chunk) => {
      // The zero buffer becomes a hole in a sparse file; everything else is written where it belongs.
      if (chunk !== ZEROS_CHUNK) await file.write(chunk, 0, chunk.byteLength, position);
      position += chunk.byteLength;
    });
    await writer.beginEntry('first.txt');
    await writer.write(FIRST);
    await writer.endEntry();
    await writer.beginEntry('weights/big.bin');
    for (let left = BIG_ENTRY_BYTES; left > 0; left -= ZEROS_CHUNK.byteLength) {
      await writer.write(left >= ZEROS_CHUNK.byteLength ? ZEROS_CHUNK : ZEROS_CHUNK.subarray(0, left));
    }
    await writer.endEntry();
    await writer.beginEntry('last.txt');
    await writer.write(LAST);
    await writer.endEntry();
    const size = await writer.finish();
    await file.truncate(size);
    await file.close();
    expect(size).toBe(position);
    expect(size).toBeGreaterThan(BIG_ENTRY_BYTES);

    const script = `
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    infos = [{"name": i.filename, "size": i.file_size, "offset": i.header_offset, "crc": i.CRC} for i in z.infolist()]
    print(json.dumps({"bad": bad, "infos": infos, "last": z.read("last.txt").decode()}))
`;
    const run = spawnSync('python3', ['-c', script, path], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const python = JSON.parse(run.stdout) as { bad: string | null; infos: { name: string; size: number; offset: number; crc: number }[]; last: string };
    expect(python.bad).toBeNull(); // every entry's CRC matches its bytes, computed by zlib
    expect(python.infos.map((info) => [info.name, info.size])).toEqual([
      ['first.txt', FIRST.byteLength],
      ['weights/big.bin', BIG_ENTRY_BYTES],
      ['last.txt', LAST.byteLength],
    ]);
    expect(python.infos[2].offset).toBeGreaterThan(0xffffffff);
    expect(python.last).toBe(new TextDecoder().decode(LAST));

    const handle = await open(path, 'r');
    try {
      const source: ByteSource = {
        name: path,
        size,
        read: async (offset, length) => {
          const buffer = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
          await handle.read(buffer, 0, buffer.byteLength, offset);
          return buffer;
        },
      };
      const entries = await readStoredZipDirectory(source);
      expect(entries.map(({ name, size, offset, crc }) => ({ name, size, offset, crc }))).toEqual(python.infos);
      const last = entries[2];
      expect(new TextDecoder().decode(await last.data.read(0, last.size))).toBe(new TextDecoder().decode(LAST));
    } finally {
      await handle.close();
    }
  }, 300_000);
});
