/**
 * The export's verification pass (workers/export-verify.ts) and the zip reader it uses on a finished archive
 * (src/platform/browser-output.ts): a faithful output passes; a flipped byte, a missing file, an extra file or
 * a changed shard header is caught and named. Runs in Node over an in-memory output folder.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zipSync } from 'fflate';
import { planAblation, writeAblation, type AblationPlan } from '../../src/engine/ablate';
import { MemoryByteSource } from '../../src/ports/bytes';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { readStoredZipEntries, type OutputReader } from '../../src/platform/browser-output';
import { InvalidFileError } from '../../src/base/errors';
import { verifyExport } from '../../workers/export-verify';
import { generateModelFolder } from '../helpers/generate-models';
import { MemoryOutputFolder } from '../helpers/memory-output-folder';

function readerOf(files: Map<string, Uint8Array>): OutputReader {
  return {
    list: () => [...files.keys()].sort(),
    open: async (path) => new MemoryByteSource(path, files.get(path) as Uint8Array),
  };
}

let work: string;
let plan: AblationPlan;
let written: Map<string, Uint8Array>;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'export-verify-'));
  const generated = await generateModelFolder(join(work, 'model'), { kind: 'llama-bias', dtype: 'BF16', shards: 2, seed: 4 });
  const hidden = (generated.config as { hidden_size: number }).hidden_size;
  const direction = new Float32Array(hidden).fill(1 / Math.sqrt(hidden)); // [dModel], unit
  const selection = { direction, scale: 1, targets: ['embed', 'attn', 'mlp'] as ('embed' | 'attn' | 'mlp')[] };
  plan = await planAblation(await openNodeModelFolder(join(work, 'model')), selection, null);
  const output = new MemoryOutputFolder();
  await writeAblation(plan, output, selection);
  written = new Map([...output.files].map(([path, sink]) => [path, sink.bytes()]));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('export verification', () => {
  it('passes a faithful output and counts every file and shard header', async () => {
    const summary = await verifyExport(readerOf(written), plan, {});
    expect(summary.filesChecked).toBe(written.size - 1); // every file but the manifest itself
    expect(summary.headersChecked).toBe(plan.shards.length);
    expect(summary.bytesChecked).toBe([...written].filter(([path]) => path !== 'abliteration.json').reduce((sum, [, bytes]) => sum + bytes.byteLength, 0));
  });

  it('catches a flipped byte in a shard, naming the file', async () => {
    const shard = plan.shards[0].path;
    const corrupted = new Map(written);
    const bytes = written.get(shard)!.slice();
    bytes[bytes.byteLength - 1] ^= 1;
    corrupted.set(shard, bytes);
    await expect(verifyExport(readerOf(corrupted), plan, {})).rejects.toThrow(new RegExp(`${shard}: reads back with SHA-256`));
  });

  it('with a hash on another thread (updateOwned answering later, out of step with the reads), passes a faithful output and catches a flipped byte', async () => {
    const workerLike = () => {
      const hash = createHash('sha256');
      let queue: Promise<unknown> = Promise.resolve();
      return {
        update: () => {
          throw new Error('verification hands its chunks over');
        },
        // Hashed in call order, each answer a few milliseconds later, as a worker's would be.
        updateOwned: (bytes: Uint8Array) => (queue = queue.then(() => new Promise<Uint8Array>((resolve) => setTimeout(() => (hash.update(bytes), resolve(bytes)), 2)))) as Promise<Uint8Array>,
        hexDigest: async () => (await queue, hash.digest('hex')),
      };
    };
    const summary = await verifyExport(readerOf(written), plan, { createHash: workerLike });
    expect(summary.filesChecked).toBe(written.size - 1);
    const shard = plan.shards[1].path;
    const corrupted = new Map(written);
    const bytes = written.get(shard)!.slice();
    bytes[Math.floor(bytes.byteLength / 2)] ^= 1;
    corrupted.set(shard, bytes);
    await expect(verifyExport(readerOf(corrupted), plan, { createHash: workerLike })).rejects.toThrow(new RegExp(`${shard}: reads back with SHA-256`));
  });

  it('catches a changed shard header before hashing', async () => {
    const shard = plan.shards[1].path;
    const changed = new Map(written);
    const bytes = written.get(shard)!.slice();
    const at = new TextDecoder().decode(bytes.subarray(8, 200)).indexOf('"dtype"') + 8;
    bytes[at + 1] = 'D'.charCodeAt(0); // "dtype" → "Dtype": still JSON of the same size, another header
    changed.set(shard, bytes);
    const failure = verifyExport(readerOf(changed), plan, {});
    await expect(failure).rejects.toBeInstanceOf(InvalidFileError);
    await expect(failure).rejects.toThrow(new RegExp(shard));
  });

  it('catches a missing and an extra file', async () => {
    const missing = new Map(written);
    missing.delete('config.json');
    await expect(verifyExport(readerOf(missing), plan, {})).rejects.toThrow(/config.json: is in the manifest but was not written/);
    const extra = new Map(written).set('stray.bin', new Uint8Array(3));
    await expect(verifyExport(readerOf(extra), plan, {})).rejects.toThrow(/stray.bin: was written but is not in the manifest/);
  });
});

describe('stored zip reader', () => {
  it('finds every stored entry with its exact bytes, nested paths included', async () => {
    const files = { 'a.txt': new TextEncoder().encode('hello'), 'onnx/model.onnx': Uint8Array.from({ length: 70_001 }, (_, i) => (i * 31) & 0xff) };
    const archive = zipSync(Object.fromEntries(Object.entries(files).map(([path, bytes]) => [path, [bytes, { level: 0 }]])));
    const entries = await readStoredZipEntries(new MemoryByteSource('test.zip', archive));
    expect([...entries.keys()].sort()).toEqual(Object.keys(files).sort());
    for (const [path, bytes] of Object.entries(files)) {
      const source = entries.get(path)!;
      expect(Buffer.from(await source.read(0, source.size)).equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it('refuses a compressed entry and a file that is not a zip', async () => {
    const deflated = zipSync({ 'a.txt': [new Uint8Array(1000), { level: 6 }] });
    await expect(readStoredZipEntries(new MemoryByteSource('deflated.zip', deflated))).rejects.toThrow(/a.txt is not stored uncompressed/);
    await expect(readStoredZipEntries(new MemoryByteSource('not.zip', new Uint8Array(100)))).rejects.toThrow(/no zip end-of-central-directory/);
  });
});
