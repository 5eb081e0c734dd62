/**
 * Hostile and broken input for `abliterate ablate`: each must exit ≠ 0 with exactly one line on stderr naming
 * the file and the problem, and leave nothing that looks like an output (no OUT, no OUT.partial).
 * Also: Ctrl-C during a run removes the partial output.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModelFolder } from '../helpers/generate-models';
import { encodeNpyFloat32, exists, REPO_ROOT, runCli } from './ablate-helpers';

const HIDDEN_SIZE = 48; // llama-bias fixture default

let workDir: string;
let shardedModel: string;
let singleModel: string;
let goodDirection: string;

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ablate-hostile-'));
  shardedModel = (await generateModelFolder(path.join(workDir, 'sharded'), { kind: 'llama-bias', dtype: 'BF16', shards: 2 })).dir;
  singleModel = (await generateModelFolder(path.join(workDir, 'single'), { kind: 'llama-bias', dtype: 'F32', shards: 1 })).dir;
  goodDirection = path.join(workDir, 'good.json');
  await fs.writeFile(goodDirection, JSON.stringify(Array.from({ length: HIDDEN_SIZE }, (_, i) => Math.cos(i))));
});
afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

let caseNumber = 0;
/** A private copy of a fixture folder to break. */
async function copyOf(model: string): Promise<string> {
  const copy = path.join(workDir, `case-${caseNumber++}`);
  await fs.cp(model, copy, { recursive: true });
  return copy;
}

async function expectCleanFailure(args: { model: string; direction?: string; out?: string }, mentions: RegExp[]): Promise<string> {
  const out = args.out ?? path.join(workDir, `out-${caseNumber++}`);
  const result = await runCli(['ablate', '--model', args.model, '--direction', args.direction ?? goodDirection, '--out', out]);
  const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
  expect(result.code).not.toBe(0);
  expect(lines).toHaveLength(1);
  for (const mention of mentions) expect(lines[0]).toMatch(mention);
  expect(await exists(`${out}.partial`)).toBe(false);
  return out;
}

describe('abliterate ablate refuses broken input cleanly', () => {
  it('a truncated shard', async () => {
    const model = await copyOf(shardedModel);
    const shard = path.join(model, 'model-00002-of-00002.safetensors');
    await fs.truncate(shard, (await fs.stat(shard)).size - 100);
    const out = await expectCleanFailure({ model }, [/model-00002-of-00002\.safetensors/, /truncat|end|size|bytes/i]);
    expect(await exists(out)).toBe(false);
  });

  it('a shard named by the index but missing', async () => {
    const model = await copyOf(shardedModel);
    await fs.rm(path.join(model, 'model-00002-of-00002.safetensors'));
    const out = await expectCleanFailure({ model }, [/model\.safetensors\.index\.json/, /model-00002-of-00002\.safetensors/, /missing/]);
    expect(await exists(out)).toBe(false);
  });

  it('an absurd header length', async () => {
    const model = await copyOf(shardedModel);
    const shard = path.join(model, 'model-00001-of-00002.safetensors');
    const handle = await fs.open(shard, 'r+');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(0xffff_ffff_ffffn);
    await handle.write(prefix, 0, 8, 0);
    await handle.close();
    const out = await expectCleanFailure({ model }, [/model-00001-of-00002\.safetensors/, /header/]);
    expect(await exists(out)).toBe(false);
  });

  it('overlapping tensor offsets', async () => {
    const model = await copyOf(singleModel);
    const file = path.join(model, 'model.safetensors');
    const bytes = await fs.readFile(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const original = bytes.subarray(8, 8 + headerLength).toString('utf8');
    const header = JSON.parse(original) as Record<string, { data_offsets: [number, number] }>;
    const names = Object.keys(header)
      .filter((name) => name !== '__metadata__')
      .sort((a, b) => header[a].data_offsets[0] - header[b].data_offsets[0]);
    let rewritten: string | null = null;
    for (const name of names.slice(1)) {
      const candidate = structuredClone(header);
      candidate[name].data_offsets[0] -= 4; // starts inside the previous tensor
      const json = JSON.stringify(candidate);
      if (json.length <= headerLength) {
        rewritten = json.padEnd(headerLength, ' ');
        break;
      }
    }
    expect(rewritten).not.toBeNull();
    bytes.write(rewritten!, 8, 'utf8');
    await fs.writeFile(file, bytes);
    const out = await expectCleanFailure({ model }, [/model\.safetensors/, /overlap|offset|contiguous|size/i]);
    expect(await exists(out)).toBe(false);
  });

  it('an index that maps a tensor to the wrong shard', async () => {
    const model = await copyOf(shardedModel);
    const indexFile = path.join(model, 'model.safetensors.index.json');
    const index = JSON.parse(await fs.readFile(indexFile, 'utf8'));
    index.weight_map['model.embed_tokens.weight'] = 'model-00002-of-00002.safetensors';
    await fs.writeFile(indexFile, JSON.stringify(index));
    const out = await expectCleanFailure({ model }, [/model\.safetensors\.index\.json/, /model\.embed_tokens\.weight/]);
    expect(await exists(out)).toBe(false);
  });

  it('a direction of the wrong length', async () => {
    const direction = path.join(workDir, 'wrong-length.json');
    await fs.writeFile(direction, JSON.stringify(Array.from({ length: HIDDEN_SIZE + 1 }, () => 1)));
    const out = await expectCleanFailure({ model: shardedModel, direction }, [/wrong-length\.json/, new RegExp(`${HIDDEN_SIZE + 1}|${HIDDEN_SIZE}`)]);
    expect(await exists(out)).toBe(false);
  });

  it('a direction containing NaN', async () => {
    const values = Float32Array.from({ length: HIDDEN_SIZE }, (_, i) => (i === 7 ? NaN : 1));
    const direction = path.join(workDir, 'nan.npy');
    await fs.writeFile(direction, encodeNpyFloat32(values, [HIDDEN_SIZE]));
    const out = await expectCleanFailure({ model: shardedModel, direction }, [/nan\.npy/, /NaN|finite/]);
    expect(await exists(out)).toBe(false);
  });

  it('an all-zero direction', async () => {
    const direction = path.join(workDir, 'zero.json');
    await fs.writeFile(direction, JSON.stringify(Array.from({ length: HIDDEN_SIZE }, () => 0)));
    const out = await expectCleanFailure({ model: shardedModel, direction }, [/zero\.json/, /zero/]);
    expect(await exists(out)).toBe(false);
  });

  it('a non-empty output folder (left untouched)', async () => {
    const out = path.join(workDir, 'occupied');
    await fs.mkdir(out);
    await fs.writeFile(path.join(out, 'mine.txt'), 'user data');
    await expectCleanFailure({ model: shardedModel, out }, [/occupied/, /not empty/]);
    expect(await fs.readdir(out)).toEqual(['mine.txt']);
  });

  it('an architecture with no known targets', async () => {
    const model = await copyOf(singleModel);
    const config = JSON.parse(await fs.readFile(path.join(model, 'config.json'), 'utf8'));
    // Rename the blocks to a layout no pattern knows, in place (same-length names keep the header length).
    const file = path.join(model, 'model.safetensors');
    const bytes = await fs.readFile(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const json = bytes.subarray(8, 8 + headerLength).toString('utf8').replaceAll('model.layers.', 'model.blocks.');
    bytes.write(json.padEnd(headerLength, ' '), 8, 'utf8');
    await fs.writeFile(file, bytes);
    await fs.writeFile(path.join(model, 'config.json'), JSON.stringify({ ...config, model_type: 'custom' }));
    const out = await expectCleanFailure({ model }, [/config\.json/, /looked for/]);
    expect(await exists(out)).toBe(false);
  });
});

describe('abliterate ablate refuses bad options with one line', () => {
  it.each([
    [['--targets', 'embed,lm_head'], /--targets .*'lm_head' is not one of embed, attn, mlp/],
    [['--layers', '3-1'], /--layers 3-1 is not a block range/],
    [['--layers', '0-9'], /--layers 0-9 is outside the model's blocks 0-2/],
    [['--scale', 'strong'], /--scale strong is not a valid value/],
    [['--layer', '-1'], /--layer -1/],
  ])('%j', async (extra, message) => {
    const out = path.join(workDir, `out-options-${caseNumber++}`);
    const result = await runCli(['ablate', '--model', shardedModel, '--direction', goodDirection, '--out', out, ...extra]);
    expect(result.code).not.toBe(0);
    const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(await exists(out)).toBe(false);
    expect(await exists(`${out}.partial`)).toBe(false);
  });
});

describe('abliterate ablate cancelled with Ctrl-C', () => {
  it('exits 130 and removes OUT.partial', async () => {
    const model = (await generateModelFolder(path.join(workDir, 'bigger'), { kind: 'qwen3_5', dtype: 'BF16', shards: 2, hiddenSize: 256, vocabSize: 20000 })).dir;
    const out = path.join(workDir, 'cancelled');
    const direction = path.join(workDir, 'direction-256.json');
    await fs.writeFile(direction, JSON.stringify(Array.from({ length: 256 }, (_, i) => Math.sin(i))));
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/abliterate.mjs'), 'ablate', '--model', model, '--direction', direction, '--out', out, '--chunk-mb', '0.01'], {
      cwd: REPO_ROOT,
    });
    let stderr = '';
    let signalled = false;
    child.stderr.on('data', (data: Buffer) => {
      stderr += data.toString();
      // Interrupt once writing has visibly started (a progress line past the start).
      if (!signalled && /ablate: \d+%/.test(stderr)) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(signalled).toBe(true);
    expect(code).toBe(130);
    expect(stderr).toMatch(/Cancelled/);
    expect(await exists(out)).toBe(false);
    expect(await exists(`${out}.partial`)).toBe(false);
  });
});
