/**
 * The ablation engine through its interfaces (in-memory folders, as the browser export uses it): the portable
 * SHA-256, progress invariants, cancellation, chunk-size independence and backend injection.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ablateModel, type AblateOptions } from '../../src/engine/ablate';
import { cpuOrthogonalizeBackend, type OrthogonalizeBackend } from '../../src/engine/orthogonalize-backend';
import { MemoryModelFolder } from '../../src/ports/folder';
import { CancelledError } from '../../src/base/errors';
import type { Progress } from '../../src/base/progress';
import { generateModelFolder } from '../helpers/generate-models';
import { listFiles } from './ablate-helpers';
import { MemoryOutputFolder } from '../helpers/memory-output-folder';

let workDir: string;
let input: MemoryModelFolder;
const HIDDEN_SIZE = 64;
const direction = (() => {
  const values = Float32Array.from({ length: HIDDEN_SIZE }, (_, i) => Math.cos(i * 0.7));
  const norm = Math.hypot(...values);
  return values.map((value) => value / norm);
})();

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ablate-engine-'));
  const model = await generateModelFolder(path.join(workDir, 'model'), { kind: 'qwen3_5', dtype: 'BF16', shards: 2 });
  const files = new Map<string, Uint8Array>();
  for (const file of await listFiles(model.dir)) files.set(file, new Uint8Array(await fs.readFile(path.join(model.dir, file))));
  input = new MemoryModelFolder('model', files);
});
afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

function options(extra: Partial<Extract<AblateOptions, { direction: Float32Array }>> = {}): AblateOptions {
  return { direction, scale: 1, targets: ['embed', 'attn', 'mlp'], ...extra };
}

describe('ablateModel over in-memory folders', () => {
  it('hashes every output with the portable SHA-256 and reports monotone progress ending in done', async () => {
    const output = new MemoryOutputFolder();
    const events: Progress[] = [];
    const manifest = await ablateModel(input, output, options({ onProgress: (event) => events.push(event), maxChunkBytes: 4096 }));
    expect(output.state).toBe('committed');
    for (const [file, record] of Object.entries(manifest.files)) {
      const bytes = output.files.get(file)!.bytes();
      expect(record.bytes).toBe(bytes.byteLength);
      expect(record.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    const fractions = events.flatMap((event) => (event.status === 'progress' ? [event.fraction] : []));
    expect(fractions.length).toBeGreaterThan(10);
    for (let i = 1; i < fractions.length; i++) expect(fractions[i]).toBeGreaterThanOrEqual(fractions[i - 1]);
    expect(events[0].status).toBe('start');
    expect(events.at(-1)).toEqual({ status: 'done', task: 'ablate' });
    expect(fractions.at(-1)).toBe(1);
  });

  it('gives identical rows edits whatever the chunk size', async () => {
    const small = new MemoryOutputFolder();
    const large = new MemoryOutputFolder();
    await ablateModel(input, small, options({ targets: ['embed'], maxChunkBytes: 200 }));
    await ablateModel(input, large, options({ targets: ['embed'], maxChunkBytes: 1 << 24 }));
    for (const [file, sink] of small.files) {
      if (file === 'abliteration.json') continue;
      expect(Buffer.from(sink.bytes()).equals(Buffer.from(large.files.get(file)!.bytes()))).toBe(true);
    }
  });

  it('runs on the backend it is given', async () => {
    const calls = { projectColumns: 0, applyColumns: 0, applyRows: 0, applyBias: 0 };
    const counting: OrthogonalizeBackend = {
      name: 'counting',
      projectColumns: (...args) => (calls.projectColumns++, cpuOrthogonalizeBackend.projectColumns(...args)),
      applyColumns: (...args) => (calls.applyColumns++, cpuOrthogonalizeBackend.applyColumns(...args)),
      applyRows: (...args) => (calls.applyRows++, cpuOrthogonalizeBackend.applyRows(...args)),
      applyBias: (...args) => (calls.applyBias++, cpuOrthogonalizeBackend.applyBias(...args)),
    };
    await ablateModel(input, new MemoryOutputFolder(), options({ backend: counting }));
    expect(calls.applyRows).toBeGreaterThan(0);
    expect(calls.projectColumns).toBeGreaterThanOrEqual(8); // 4 attention-out + 4 MLP-down, one chunk each at least
    expect(calls.applyColumns).toBe(calls.projectColumns);
  });

  it('a backend returning the wrong byte count stops the run and aborts the output', async () => {
    const wrongSize = async () => new Uint8Array(2);
    // Both ways the engine edits columns: two passes per chunk, or one fused call on a matrix that fits a chunk.
    const broken: OrthogonalizeBackend = { ...cpuOrthogonalizeBackend, name: 'broken', applyColumns: wrongSize, orthogonalizeColumns: wrongSize };
    const output = new MemoryOutputFolder();
    await expect(ablateModel(input, output, options({ backend: broken }))).rejects.toThrow(/broken backend returned 2 bytes/);
    expect(output.state).toBe('aborted');
  });

  it('cancellation throws CancelledError and aborts the output', async () => {
    const controller = new AbortController();
    const output = new MemoryOutputFolder();
    const run = ablateModel(
      input,
      output,
      options({
        signal: controller.signal,
        maxChunkBytes: 1024,
        onProgress: (event) => {
          if (event.status === 'progress' && event.fraction > 0.3) controller.abort();
        },
      }),
    );
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(output.state).toBe('aborted');
    expect(output.files.size).toBe(0);
  });

  it('a direction that is not unit length is refused before anything is written', async () => {
    const output = new MemoryOutputFolder();
    await expect(ablateModel(input, output, options({ direction: direction.map((value) => value * 3) }))).rejects.toThrow(/unit length/);
    expect(output.state).toBe('aborted');
    expect(output.files.size).toBe(0);
  });
});
