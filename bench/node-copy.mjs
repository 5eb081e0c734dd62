#!/usr/bin/env node
// A straightforward Node copy with the same hashes as `abliterate ablate`'s manifest, as a baseline for the ablate
// bench: every file of a folder copied in 8 MiB pieces (each write overlapping the next read) and hashed with
// node:crypto's SHA-256. No parsing, no edit, no deeper pipelining (the engine keeps more in flight).
//   node bench/node-copy.mjs MODEL_DIR OUT_DIR
import { createHash } from 'node:crypto';
import { mkdir, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

const PIECE = 8 * 2 ** 20;
const [source, target] = process.argv.slice(2);

async function copyFile(from, to) {
  const input = await open(from, 'r');
  const output = await open(to, 'wx');
  try {
    const size = (await input.stat()).size;
    const buffers = [Buffer.allocUnsafe(PIECE), Buffer.allocUnsafe(PIECE)];
    const hash = createHash('sha256');
    let writing = null;
    for (let offset = 0, piece = 0; offset < size; offset += PIECE, piece++) {
      const buffer = buffers[piece % 2];
      const { bytesRead } = await input.read(buffer, 0, Math.min(PIECE, size - offset), offset);
      hash.update(buffer.subarray(0, bytesRead));
      await writing;
      writing = output.write(buffer, 0, bytesRead, offset);
    }
    await writing;
    return hash.digest('hex');
  } finally {
    await input.close();
    await output.close();
  }
}

async function copyFolder(from, to) {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (entry.isDirectory()) await copyFolder(join(from, entry.name), join(to, entry.name));
    else if (entry.isFile()) await copyFile(join(from, entry.name), join(to, entry.name));
  }
}

await copyFolder(source, target);
