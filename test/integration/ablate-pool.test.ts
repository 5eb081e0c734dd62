/**
 * The streaming ablation with its kernels on a pool of worker threads (src/cli/kernel-pool.ts) and
 * several chunks in flight gives the same bytes as the reference twins (src/core/orthogonalize.ts, and
 * norm-preserving.ts for that method) run one call at a time: small chunks force multi-chunk column matrices (partial projections summed across chunks), pieces
 * of row-local work, and many jobs in flight at once. Also: worker errors come back as errors, a closed pool
 * refuses work.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FloatDType } from '../../src/core/dtypes';
import { applyColumnsNormPreserving, applyRowsNormPreserving, projectColumnsWithNorms } from '../../src/core/norm-preserving';
import { applyBias, applyColumns, applyRows, projectColumns } from '../../src/core/orthogonalize';
import { ablateModel, type AblateOptions } from '../../src/engine/ablate';
import type { AblationSelection } from '../../src/engine/ablation-selection';
import type { OrthogonalizeBackend } from '../../src/engine/orthogonalize-backend';
import type { ModelFolder } from '../../src/ports/folder';
import { createNodeKernelPool, type NodeKernelPool } from '../../src/cli/kernel-pool';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { generateModelFolder } from '../helpers/generate-models';
import { MemoryOutputFolder } from '../helpers/memory-output-folder';

/** The reference twins behind the backend interface, one call at a time and no fused call. */
const twinBackend: OrthogonalizeBackend = {
  name: 'twin',
  projectColumns: async (...args) => projectColumns(...args),
  applyColumns: async (...args) => applyColumns(...args),
  applyRows: async (...args) => applyRows(...args),
  applyBias: async (...args) => applyBias(...args),
  projectColumnsWithNorms: async (...args) => projectColumnsWithNorms(...args),
  applyColumnsNormPreserving: async (...args) => applyColumnsNormPreserving(...args),
  applyRowsNormPreserving: async (...args) => applyRowsNormPreserving(...args),
};

const HIDDEN_SIZE = 64;
const direction = (() => {
  const values = Float32Array.from({ length: HIDDEN_SIZE }, (_, i) => (i % 5 === 0 ? 0 : Math.sin(i * 1.3)));
  const norm = Math.hypot(...values);
  return values.map((value) => value / norm);
})();
// 1 KiB chunks: every [64, ≥ 16] BF16 matrix spans several chunks, so pass 1 sums partials across chunks.
const SMALL_CHUNK_BYTES = 1024;

let workDir: string;
let pool: NodeKernelPool;
beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ablate-pool-'));
  pool = createNodeKernelPool(2);
});
afterAll(async () => {
  await pool.close();
  await fs.rm(workDir, { recursive: true, force: true });
});

type Run = Pick<AblateOptions, 'backend' | 'maxChunkBytes'>;

/** The standard edit, or the norm-preserving method as a recipe (one direction row, per-component weights). */
function selection(method: 'standard' | 'norm-preserving'): AblationSelection {
  if (method === 'standard') return { direction, scale: 1, targets: ['embed', 'attn', 'mlp'] };
  return { recipe: { method, direction: 0, projection: 'none', components: { embed: 1, attn: 0.7, mlp: 1.3 } }, directions: [direction] };
}

async function ablateToMemory(input: ModelFolder, method: 'standard' | 'norm-preserving', run: Run): Promise<Map<string, Uint8Array>> {
  const output = new MemoryOutputFolder();
  await ablateModel(input, output, { ...selection(method), ...run });
  return new Map([...output.files].filter(([file]) => file !== 'abliteration.json').map(([file, sink]) => [file, sink.bytes()]));
}

function expectSameFiles(actual: Map<string, Uint8Array>, expected: Map<string, Uint8Array>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [file, bytes] of expected) expect(Buffer.from(actual.get(file)!).equals(Buffer.from(bytes)), file).toBe(true);
}

const CASES: [FloatDType, 'standard' | 'norm-preserving'][] = [
  ['BF16', 'standard'],
  ['F16', 'standard'],
  ['F32', 'standard'],
  ['BF16', 'norm-preserving'],
  ['F16', 'norm-preserving'],
  ['F32', 'norm-preserving'],
];

describe.each(CASES)('pooled ablation ≡ the twin, %s %s', (dtype, method) => {
  it('byte for byte, with small chunks and many jobs in flight, from memory and from files', async () => {
    const model = await generateModelFolder(path.join(workDir, `${dtype}-${method}`), { kind: 'llama-bias', dtype, shards: 2, hiddenSize: HIDDEN_SIZE });
    const input = await openNodeModelFolder(model.dir);
    const reference = await ablateToMemory(input, method, { backend: twinBackend, maxChunkBytes: SMALL_CHUNK_BYTES });
    expectSameFiles(await ablateToMemory(input, method, { backend: pool, maxChunkBytes: SMALL_CHUNK_BYTES }), reference);
    // Default chunks: every matrix fits one chunk and goes to a thread in one fused call.
    expectSameFiles(await ablateToMemory(input, method, { backend: pool }), await ablateToMemory(input, method, { backend: twinBackend }));
    // Buffers handed over (the CLI's setting): the Node file source gives each chunk a buffer of its own.
    const transferring = createNodeKernelPool(2, true);
    try {
      expectSameFiles(await ablateToMemory(input, method, { backend: transferring, maxChunkBytes: SMALL_CHUNK_BYTES }), reference);
    } finally {
      await transferring.close();
    }
  });
});

describe('kernel pool', () => {
  it('leaves a chunk that views a larger buffer intact and returns the kernel result', async () => {
    const holder = new Uint8Array(64 * 2 + 6); // [1, 64] BF16 at byte offset 6
    holder.fill(0x3f, 6);
    const bias = holder.subarray(6);
    const before = holder.slice();
    const edited = await pool.applyBias(bias, 'BF16', direction, 1);
    expect(Buffer.from(edited).equals(Buffer.from(applyBias(bias, 'BF16', direction, 1)))).toBe(true);
    expect(Buffer.from(holder).equals(Buffer.from(before))).toBe(true);
  });

  it('rejects a call the kernel refuses with the kernel message, and keeps working', async () => {
    await expect(pool.applyRows(new Uint8Array(6), 'BF16', 1, 3, direction, 1)).rejects.toThrow(/direction length 64 ≠ 3 columns/);
    const row = new Uint8Array(HIDDEN_SIZE * 4);
    expect((await pool.applyRows(row, 'F32', 1, HIDDEN_SIZE, direction, 1)).byteLength).toBe(row.byteLength);
  });

  it('a closed pool rejects further calls', async () => {
    const closing = createNodeKernelPool(1);
    await closing.close();
    await expect(closing.applyBias(new Uint8Array(HIDDEN_SIZE * 2), 'BF16', direction, 1)).rejects.toThrow(/closed/);
  });
});
