/**
 * The CLI's fast output path: each shard created as a kernel copy of its source (src/platform/node-copy-sink.ts)
 * with only the edited tensors written over it, hashes on the hashing thread (src/cli/hash-thread.ts), results
 * handed over without waiting for earlier writes (src/engine/ordered-writer.ts). Checked against the plain path
 * (in-memory folders: every byte written through the process, the portable SHA-256), and on inputs that change
 * between planning and copying.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ablateModel, planAblation, writeAblation, type AblateOptions, type AblationPlan } from '../../src/engine/ablate';
import { MemoryModelFolder } from '../../src/ports/folder';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { createNodeOutputFolder } from '../../src/platform/node-output';
import { createNodeKernelPool } from '../../src/cli/kernel-pool';
import { HashThread } from '../../src/cli/hash-thread';
import { InvalidFileError } from '../../src/base/errors';
import { parseRecipe } from '../../src/core/recipe';
import { generateModelFolder, type GeneratedModel } from '../helpers/generate-models';
import { listFiles } from './ablate-helpers';
import { MemoryOutputFolder } from '../helpers/memory-output-folder';
import type { IncrementalHash } from '../../src/engine/output-writer';

let workDir: string;
let model: GeneratedModel;
const HIDDEN_SIZE = 64;
const direction = (() => {
  const values = Float32Array.from({ length: HIDDEN_SIZE }, (_, i) => Math.sin(i * 0.37) + 0.1);
  const norm = Math.hypot(...values);
  return values.map((value) => value / norm);
})();
const selection: AblateOptions = { direction, scale: 1, targets: ['embed', 'attn', 'mlp'] };
/** The standard edit, or the norm-preserving method as a recipe over the same single direction. */
function selectionFor(method: 'standard' | 'norm-preserving'): AblateOptions {
  if (method === 'standard') return selection;
  return { recipe: parseRecipe({ method, direction: 0, projection: 'none', components: { embed: 1, attn: 0.7, mlp: 1.3 } }), directions: [direction] };
}

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ablate-copy-'));
  model = await generateModelFolder(path.join(workDir, 'model'), { kind: 'qwen3_5', dtype: 'BF16', shards: 2 });
});
afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

async function reference(method: 'standard' | 'norm-preserving'): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const file of await listFiles(model.dir)) files.set(file, new Uint8Array(await fs.readFile(path.join(model.dir, file))));
  const output = new MemoryOutputFolder();
  await ablateModel(new MemoryModelFolder('model', files), output, { ...selectionFor(method), maxChunkBytes: 4096 });
  return new Map([...output.files].map(([file, sink]) => [file, sink.bytes()]));
}

describe('ablate into a Node output folder: shards copied in the kernel, edits written over them', () => {
  for (const method of ['standard', 'norm-preserving'] as const) {
    it(`${method}: the same bytes as the plain path, and manifest hashes of what is on disk (tiny chunks, threads)`, async () => {
      const expected = await reference(method);
      const out = path.join(workDir, `out-${method}`);
      const input = await openNodeModelFolder(model.dir);
      const plan = await planAblation(input, selectionFor(method), null);
      const pool = createNodeKernelPool(1, true);
      const hashes = new HashThread();
      try {
        const output = await createNodeOutputFolder(out, { inputs: [model.dir] });
        // 4 KiB chunks: hundreds of pieces per shard in flight at once, edits of one matrix split over many chunks.
        const manifest = await writeAblation(plan, output, { ...selectionFor(method), maxChunkBytes: 4096, backend: pool, createHash: () => hashes.createHash() });
        const written = await listFiles(out);
        expect(written.sort()).toEqual([...expected.keys()].sort());
        for (const file of written) {
          const bytes = new Uint8Array(await fs.readFile(path.join(out, file)));
          if (file !== 'abliteration.json') expect(Buffer.from(bytes).equals(Buffer.from(expected.get(file)!)), file).toBe(true);
          if (file === 'abliteration.json') continue;
          expect(manifest.files[file]).toEqual({ sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.byteLength });
        }
      } finally {
        await Promise.all([pool.close(), hashes.close()]);
      }
    });
  }

  /** A hash thread whose first file's hash (the first shard's) reads back through `first` instead. */
  function hashesWithFirst(hashes: HashThread, first: (hash: IncrementalHash) => IncrementalHash, log: string[]): () => IncrementalHash {
    let created = 0;
    return () => {
      const hash = hashes.createHash();
      const index = created++;
      const logged: IncrementalHash = {
        ...hash,
        update: (bytes) => hash.update(bytes),
        hexDigest: () => hash.hexDigest(),
        updateFromFile: (file, offset, length) => {
          log.push(`read ${index}`);
          return hash.updateFromFile!(file, offset, length);
        },
      };
      return index === 0 ? first(logged) : logged;
    };
  }

  /** Resolves once `log` holds `entry`, or after `limitMs`: a test of the order fails instead of hanging. */
  async function until(log: string[], entry: string, limitMs = 5000): Promise<void> {
    for (const begun = Date.now(); !log.includes(entry) && Date.now() - begun < limitMs; ) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  it("starts the next shard while the hash still reads the one before back, and keeps the manifest's file order", async () => {
    const plan = await planAblation(await openNodeModelFolder(model.dir), selection, null);
    const hashes = new HashThread();
    const log: string[] = [];
    try {
      // The first shard's digest waits for the second shard's first read-back (which never comes if shards run one after the other).
      const slowFirst = hashesWithFirst(hashes, (hash) => ({
        ...hash,
        hexDigest: async () => {
          await until(log, 'read 1');
          log.push('digest 0');
          return hash.hexDigest();
        },
      }), log);
      const out = path.join(workDir, 'out-overlap');
      const manifest = await writeAblation(plan, await createNodeOutputFolder(out, { inputs: [model.dir] }), { ...selection, maxChunkBytes: 4096, createHash: slowFirst });
      expect(log.indexOf('read 1')).toBeGreaterThan(-1);
      expect(log.indexOf('read 1')).toBeLessThan(log.indexOf('digest 0'));
      const plain = await reference('standard');
      const plainManifest = JSON.parse(new TextDecoder().decode(plain.get('abliteration.json')!)) as { files: Record<string, unknown> };
      expect(Object.keys(manifest.files)).toEqual(Object.keys(plainManifest.files));
      for (const [file, record] of Object.entries(manifest.files)) {
        const bytes = await fs.readFile(path.join(out, file));
        expect(record).toEqual({ sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.byteLength });
      }
    } finally {
      await hashes.close();
    }
  });

  it("fails the whole ablation when a shard's hash fails after the next shard began, and leaves no output", async () => {
    const plan = await planAblation(await openNodeModelFolder(model.dir), selection, null);
    const hashes = new HashThread();
    const log: string[] = [];
    try {
      const failingFirst = hashesWithFirst(hashes, (hash) => ({
        ...hash,
        hexDigest: async () => {
          await until(log, 'read 1');
          throw new Error('hash of the first shard failed');
        },
      }), log);
      const out = path.join(workDir, 'out-hash-fails');
      const failure = await writeAblation(plan, await createNodeOutputFolder(out, { inputs: [model.dir] }), { ...selection, maxChunkBytes: 4096, createHash: failingFirst }).catch((error: unknown) => error);
      expect(String((failure as Error).message)).toMatch(/hash of the first shard failed/);
      await expect(fs.stat(out)).rejects.toThrow();
      await expect(fs.stat(`${out}.partial`)).rejects.toThrow();
    } finally {
      await hashes.close();
    }
  });

  it('keeps the source file permission bits (less the umask) on a copied shard', async () => {
    const dir = path.join(workDir, 'modes');
    await fs.cp(model.dir, dir, { recursive: true });
    const shard = (await fs.readdir(dir)).find((file) => file.endsWith('.safetensors'))!;
    await fs.chmod(path.join(dir, shard), 0o640);
    const out = path.join(workDir, 'out-modes');
    const output = await createNodeOutputFolder(out, { inputs: [dir] });
    await ablateModel(await openNodeModelFolder(dir), output, selection);
    expect((await fs.stat(path.join(out, shard))).mode & 0o777).toBe(0o640 & ~process.umask());
  });

  /** Plans on a copy of the model, lets `change` alter one shard, then expects the write refused, naming it, with no output left. */
  async function expectRefused(name: string, shardIndex: number, change: (shardPath: string, plan: AblationPlan) => Promise<void>): Promise<void> {
    const dir = path.join(workDir, name);
    await fs.cp(model.dir, dir, { recursive: true });
    const plan = await planAblation(await openNodeModelFolder(dir), selection, null);
    await change(path.join(dir, plan.shards[shardIndex].path), plan);
    const out = path.join(workDir, `out-${name}`);
    const output = await createNodeOutputFolder(out, { inputs: [dir] });
    const failure = await writeAblation(plan, output, selection).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(InvalidFileError);
    expect(String((failure as Error).message)).toMatch(new RegExp(`${plan.shards[shardIndex].path}.*changed while it was being read`));
    await expect(fs.stat(out)).rejects.toThrow();
    await expect(fs.stat(`${out}.partial`)).rejects.toThrow();
  }

  it('refuses a shard whose header changed between planning and copying, and leaves no output', async () => {
    await expectRefused('swapped', 0, async (shardPath, plan) => {
      // Same size, one byte of the header's JSON different.
      const bytes = await fs.readFile(shardPath);
      const at = bytes.subarray(0, plan.shards[0].header.dataStart).lastIndexOf('"'.charCodeAt(0));
      bytes[at - 1] = bytes[at - 1] === 'a'.charCodeAt(0) ? 'b'.charCodeAt(0) : 'a'.charCodeAt(0);
      await fs.writeFile(shardPath, bytes);
    });
  });

  it('refuses a shard truncated between planning and copying (while the shard before it is written), and leaves no output', async () => {
    await expectRefused('truncated', 1, (shardPath, plan) => fs.truncate(shardPath, plan.shards[1].header.fileSize - 100));
  });
});

describe('HashThread', () => {
  it('hashes several files at once, each in call order, whether bytes are copied or handed over', async () => {
    const hashes = new HashThread();
    try {
      const pieces = Array.from({ length: 24 }, (_, i) => Uint8Array.from({ length: 1000 + i * 37 }, (_, j) => (i * 31 + j * 7) & 255));
      const a = hashes.createHash();
      const b = hashes.createHash();
      const backs: Promise<Uint8Array>[] = [];
      pieces.forEach((piece, i) => {
        const target = i % 3 === 0 ? b : a;
        if (i % 2 === 0) target.update(piece);
        else backs.push(target.updateOwned!(piece.slice()));
      });
      const returned = await Promise.all(backs);
      // What was handed over comes back intact.
      expect(returned.map((bytes) => Buffer.from(bytes).toString('hex'))).toEqual(pieces.filter((_, i) => i % 2 === 1).map((piece) => Buffer.from(piece).toString('hex')));
      const expectedA = createHash('sha256');
      const expectedB = createHash('sha256');
      pieces.forEach((piece, i) => (i % 3 === 0 ? expectedB : expectedA).update(piece));
      expect(await a.hexDigest()).toBe(expectedA.digest('hex'));
      expect(await b.hexDigest()).toBe(expectedB.digest('hex'));
    } finally {
      await hashes.close();
    }
  });

  it('hashes ranges of a file it reads itself, in order with the bytes it is sent, and names a file that ends early', async () => {
    const file = path.join(workDir, 'ranges.bin');
    const bytes = Uint8Array.from({ length: 20 * 1024 * 1024 + 123 }, (_, i) => (i * 13) & 255); // more than one 8 MiB read piece
    await fs.writeFile(file, bytes);
    const hashes = new HashThread();
    try {
      const hash = hashes.createHash();
      hash.update(bytes.subarray(0, 1000));
      const ranges = [hash.updateFromFile!(file, 1000, 9_000_000), hash.updateOwned!(bytes.slice(9_001_000, 9_002_000))];
      ranges.push(hash.updateFromFile!(file, 9_002_000, bytes.byteLength - 9_002_000));
      await Promise.all(ranges);
      expect(await hash.hexDigest()).toBe(createHash('sha256').update(bytes).digest('hex'));
      const short = hashes.createHash();
      await expect(short.updateFromFile!(file, bytes.byteLength - 10, 20)).rejects.toThrow(/ranges\.bin ends before byte/);
    } finally {
      await hashes.close();
    }
  });

  it('leaves what it is given to copy intact, Node Buffers included (whose slice() is a view, not a copy)', async () => {
    const hashes = new HashThread();
    try {
      const hash = hashes.createHash();
      const big = Buffer.from(Uint8Array.from({ length: 100_000 }, (_, i) => i & 255)); // its own ArrayBuffer
      const pooled = Buffer.from('a view into Node’s shared pool'); // a slice of the 8 KiB pool
      const neighbour = Buffer.from('another view of the same pool');
      hash.update(big);
      await hash.updateOwned!(pooled);
      expect(big.byteLength).toBe(100_000);
      expect(pooled.toString()).toBe('a view into Node’s shared pool');
      expect(neighbour.toString()).toBe('another view of the same pool');
      expect(await hash.hexDigest()).toBe(createHash('sha256').update(big).update(pooled).digest('hex'));
    } finally {
      await hashes.close();
    }
  });

  it('rejects calls after it is closed instead of hanging', async () => {
    const hashes = new HashThread();
    const hash = hashes.createHash();
    await hashes.close();
    await expect(hash.updateOwned!(new Uint8Array(8))).rejects.toThrow(/closed/);
    await expect(Promise.resolve().then(() => hash.hexDigest())).rejects.toThrow(/closed/);
  });
});
