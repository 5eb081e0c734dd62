/**
 * The CLI runs from an esbuild bundle of src/ kept in node_modules/.cache/abliterate-cli (bin/cli-bundle.mjs),
 * with tsx as the fallback: both paths must behave the same, worker threads included (the kernel pool and the
 * hashing thread start from files beside the bundle).
 */
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledCliEntry } from '../../bin/cli-bundle.mjs';
import { generateModelFolder, type GeneratedModel } from '../helpers/generate-models';
import { listFiles } from './ablate-helpers';
import { REPO_ROOT, runCli } from './ablate-helpers';

let work: string;
let model: GeneratedModel;
let direction: string;

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'cli-bundle-'));
  model = await generateModelFolder(path.join(work, 'model'), { kind: 'qwen3_5', dtype: 'BF16', shards: 2 });
  direction = path.join(work, 'direction.json');
  const hidden = (model.config as { text_config?: { hidden_size: number }; hidden_size?: number }).text_config?.hidden_size ?? (model.config as { hidden_size: number }).hidden_size;
  await fs.writeFile(direction, JSON.stringify(Array.from({ length: hidden }, (_, i) => Math.cos(i * 0.3))));
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('the CLI bundle', () => {
  it('is built once into the cache, complete, and found again without a rebuild', async () => {
    const entry = await bundledCliEntry();
    expect(entry).not.toBeNull();
    const folder = path.dirname(fileURLToPath(entry!));
    expect(folder.startsWith(path.join(REPO_ROOT, 'node_modules', '.cache', 'abliterate-cli'))).toBe(true);
    for (const file of ['main.mjs', 'kernel-worker.mjs', 'hash-worker.mjs', 'complete']) expect(existsSync(path.join(folder, file)), file).toBe(true);
    const built = (await fs.stat(path.join(folder, 'complete'))).mtimeMs;
    expect(await bundledCliEntry()).toBe(entry);
    expect((await fs.stat(path.join(folder, 'complete'))).mtimeMs).toBe(built);
  });

  it('ablates exactly as the tsx path does, kernel and hashing threads included', async () => {
    const outputs: Map<string, Buffer>[] = [];
    for (const [name, env] of [['bundle', {}], ['tsx', { ABLITERATE_TSX: '1' }]] as const) {
      const out = path.join(work, `out-${name}`);
      const result = await runCli(['ablate', '--model', model.dir, '--direction', direction, '--threads', '1', '--out', out], env);
      expect(result.code, result.stderr).toBe(0);
      const files = new Map<string, Buffer>();
      for (const file of await listFiles(out)) files.set(file, await fs.readFile(path.join(out, file)));
      outputs.push(files);
    }
    const [bundle, tsx] = outputs;
    expect([...bundle.keys()].sort()).toEqual([...tsx.keys()].sort());
    for (const [file, bytes] of bundle) expect(bytes.equals(tsx.get(file)!), file).toBe(true);
  });
});
