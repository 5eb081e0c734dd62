/**
 * Hostile and broken inputs to every command, each refused with one line naming the file and the problem
 * before any long work starts (no model is loaded for any of these): oversized and mis-encoded prompts,
 * directions made for another model, configs that do not describe their weights, shapes no chunk can hold,
 * names that cannot be written, external data pointing out of the folder, an eval output that already exists.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeDirectionsSafetensors } from '../../src/formats/direction-file';
import { encodeOnnxModel, float32Initializer, onnx } from '../../src/formats/onnx';
import { encodeSafetensors } from '../../src/formats/safetensors';
import { generateModelFolder } from '../helpers/generate-models';
import { exists, REPO_ROOT, runCli, type CliResult } from './ablate-helpers';

const DEMO = path.join(REPO_ROOT, 'public/models/demo');
const DEMO_HIDDEN = 64;
const DEMO_LAYERS = 4;
const DEMO_CONTEXT = 512;

let workDir: string;
let llama: string; // llama-bias, hidden 48, 3 blocks, 2 shards
let llamaDirection: string;
let demoDirection: string;
let goodPrompts: string;

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hostile-inputs-'));
  llama = (await generateModelFolder(path.join(workDir, 'llama'), { kind: 'llama-bias', dtype: 'F32', shards: 2 })).dir;
  llamaDirection = path.join(workDir, 'llama-direction.json');
  await fs.writeFile(llamaDirection, JSON.stringify(Array.from({ length: 48 }, (_, i) => Math.cos(i))));
  demoDirection = path.join(workDir, 'demo-direction.json');
  await fs.writeFile(demoDirection, JSON.stringify(Array.from({ length: DEMO_HIDDEN }, (_, i) => Math.sin(i + 1))));
  goodPrompts = path.join(workDir, 'good.txt');
  await fs.writeFile(goodPrompts, 'How do I list files?\nWhat is 2+2?\n');
});
afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

let caseNumber = 0;
const fresh = (name = 'case') => path.join(workDir, `${name}-${caseNumber++}`);
async function copyOf(model: string): Promise<string> {
  const copy = fresh('model');
  await fs.cp(model, copy, { recursive: true });
  return copy;
}

/** Exit ≠ 0 with exactly one error line matching every pattern. */
function expectOneLine(result: CliResult, ...patterns: RegExp[]): void {
  const lines = result.stderr.split('\n').filter((line) => line.startsWith('abliterate'));
  expect(result.code, result.stderr).not.toBe(0);
  expect(lines).toHaveLength(1);
  for (const pattern of patterns) expect(lines[0]).toMatch(pattern);
}

const ablate = (model: string, extra: string[] = [], direction = llamaDirection, out = fresh('out')) =>
  runCli(['ablate', '--model', model, '--direction', direction, '--out', out, ...extra]);
const evaluate = (harmful: string, extra: string[] = [], out = fresh('eval') + '.json') =>
  runCli(['eval', '--model', DEMO, '--direction', demoDirection, '--harmful', harmful, '--harmless', goodPrompts, '--out', out, ...extra]);

describe('prompts: one strict reader for analyze, eval and run, bounded by the context', () => {
  it('a 1 MB single-line prompt is refused against the context before tokenizing (eval, analyze, run)', async () => {
    const huge = fresh('huge') + '.txt';
    await fs.writeFile(huge, `${'word '.repeat(200_000)}\n`);
    expectOneLine(await evaluate(huge), new RegExp(huge.replace(/[.]/g, '\\.')), /prompt #1 is \d+ characters long.*context \(max_position_embeddings 512\)/);
    const analyze = await runCli(['analyze', '--model', DEMO, '--harmful', huge, '--harmless', goodPrompts, '--out', fresh('an')]);
    expectOneLine(analyze, /prompt #1 is \d+ characters long/);
    const run = await runCli(['run', '--model', DEMO, '--harmful', goodPrompts, '--harmless', huge, '--out', fresh('run')]);
    expectOneLine(run, /prompt #1 is \d+ characters long/);
  });

  it('analyze refuses a prompt that tokenizes longer than the context', async () => {
    const long = fresh('long') + '.txt';
    await fs.writeFile(long, `ok\n${'hello there '.repeat(DEMO_CONTEXT)}\n`); // ~2 tokens a repeat, far within the character bound
    const out = fresh('an');
    expectOneLine(await runCli(['analyze', '--model', DEMO, '--harmful', long, '--harmless', goodPrompts, '--out', out]), /prompt #2 is \d+ tokens long, more than the model's context \(max_position_embeddings 512\)/);
    expect(await exists(`${out}.partial`)).toBe(false);
  });

  it('UTF-16 and invalid UTF-8 prompt files are refused by eval and run as by analyze', async () => {
    const utf16 = fresh('utf16') + '.txt';
    await fs.writeFile(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('hello\n', 'utf16le')]));
    const utf16NoBom = fresh('utf16-nobom') + '.txt';
    await fs.writeFile(utf16NoBom, Buffer.from('hello\n', 'utf16le'));
    const latin1 = fresh('latin1') + '.txt';
    await fs.writeFile(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    expectOneLine(await evaluate(utf16), /is UTF-16 text; save it as UTF-8/);
    expectOneLine(await evaluate(utf16NoBom), /contains NUL characters/);
    expectOneLine(await evaluate(latin1), /is not valid UTF-8 text/);
    expectOneLine(await runCli(['run', '--model', DEMO, '--harmful', latin1, '--harmless', goodPrompts, '--out', fresh('run')]), /is not valid UTF-8 text/);
    expectOneLine(await runCli(['analyze', '--model', DEMO, '--harmful', utf16NoBom, '--harmless', goodPrompts, '--out', fresh('an')]), /contains NUL characters/);
  });
});

describe('eval --out never overwrites', () => {
  it('an existing file (even the model folder’s own config.json) is refused and left as it was', async () => {
    const existing = fresh('existing') + '.json';
    await fs.writeFile(existing, 'keep me');
    expectOneLine(await evaluate(goodPrompts, [], existing), /already exists; choose another --out/);
    expect(await fs.readFile(existing, 'utf8')).toBe('keep me');
    const config = await fs.readFile(path.join(DEMO, 'config.json'));
    expectOneLine(await evaluate(goodPrompts, [], path.join(DEMO, 'config.json')), /config\.json: already exists/);
    expect(await fs.readFile(path.join(DEMO, 'config.json'))).toEqual(config);
  });
});

describe('directions made for another model', () => {
  it.each([DEMO_LAYERS, DEMO_LAYERS + 5])('a per-layer file with %i rows for a 4-block model (L+1 = 5 expected): ablate and eval refuse', async (rows) => {
    const file = fresh('dirs') + '.safetensors';
    await fs.writeFile(file, encodeDirectionsSafetensors(Array.from({ length: rows }, (_, row) => Float32Array.from({ length: DEMO_HIDDEN }, (_, i) => Math.sin(i + row + 1)))));
    expectOneLine(await ablate(DEMO, ['--layer', '2'], file), new RegExp(`holds ${rows} per-layer directions but the model has 4 layers \\(5 expected\\)`));
    expectOneLine(
      await runCli(['eval', '--model', DEMO, '--direction', file, '--layer', '2', '--harmful', goodPrompts, '--harmless', goodPrompts, '--out', fresh('eval') + '.json']),
      new RegExp(`holds ${rows} per-layer directions`),
    );
  });
});

describe('configs that do not describe their weights', () => {
  async function withConfig(edit: (text: string) => string): Promise<string> {
    const model = await copyOf(llama);
    const file = path.join(model, 'config.json');
    await fs.writeFile(file, edit(await fs.readFile(file, 'utf8')));
    return model;
  }

  it('num_hidden_layers smaller than the blocks present is refused, not skipped as an MTP head', async () => {
    const model = await withConfig((text) => text.replace(/"num_hidden_layers":\s*3/, '"num_hidden_layers": 2'));
    expectOneLine(await ablate(model), /config\.json: num_hidden_layers is 2 but the weights have blocks up to layers\.2/);
  });

  it('num_hidden_layers 1e15 is refused as corrupt (ablate and analyze)', async () => {
    const model = await withConfig((text) => text.replace(/"num_hidden_layers":\s*3/, '"num_hidden_layers": 1000000000000000'));
    expectOneLine(await ablate(model), /config\.json: num_hidden_layers is 1000000000000000, more than any model has/);
    const demo = await copyOf(DEMO);
    const config = path.join(demo, 'config.json');
    await fs.writeFile(config, (await fs.readFile(config, 'utf8')).replace(/"num_hidden_layers":\s*4/, '"num_hidden_layers": 1e15'));
    expectOneLine(await runCli(['analyze', '--model', demo, '--harmful', goodPrompts, '--harmless', goodPrompts, '--out', fresh('an')]), /num_hidden_layers is 1000000000000000/);
  });

  it('a key given twice (hidden_size) is refused instead of the last one winning', async () => {
    const model = await withConfig((text) => text.replace(/\{/, '{"hidden_size": 4096, '));
    expectOneLine(await ablate(model), /config\.json: is not valid JSON \(duplicate key "hidden_size"/);
  });
});

describe('weights the edit cannot or must not handle', () => {
  it('a targeted [64, 2^27] F32 tensor is refused before work (rows wider than a chunk), memory untouched', async () => {
    const dir = fresh('wide');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 64, num_hidden_layers: 1, vocab_size: 8 }));
    const columns = 2 ** 27;
    const small = (name: string, shape: number[]) => ({ name, dtype: 'F32' as const, shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 4)) });
    const head = encodeSafetensors([small('model.embed_tokens.weight', [8, 64]), small('model.layers.0.self_attn.o_proj.weight', [64, 64])]);
    // Rebuild the header with the wide tensor appended; the data is a sparse hole of 32 GiB.
    const headerLength = Number(Buffer.from(head).readBigUInt64LE(0));
    const header = JSON.parse(Buffer.from(head.subarray(8, 8 + headerLength)).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
    const dataBytes = head.byteLength - 8 - headerLength;
    header['model.layers.0.mlp.down_proj.weight'] = { dtype: 'F32', shape: [64, columns], data_offsets: [dataBytes, dataBytes + 64 * columns * 4] } as never;
    const json = Buffer.from(JSON.stringify(header));
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.byteLength));
    const file = path.join(dir, 'model.safetensors');
    await fs.writeFile(file, Buffer.concat([prefix, json, Buffer.from(head.subarray(8 + headerLength))]));
    await fs.truncate(file, 8 + json.byteLength + dataBytes + 64 * columns * 4);
    const direction = fresh('d64') + '.json';
    await fs.writeFile(direction, JSON.stringify(Array.from({ length: 64 }, (_, i) => i + 1)));
    const out = fresh('out');
    expectOneLine(await ablate(dir, [], direction, out), /model\.safetensors: tensor model\.layers\.0\.mlp\.down_proj\.weight \[64, 134217728\] has rows of 536870912 bytes/, /--chunk-mb 512/);
    expect(await exists(`${out}.partial`)).toBe(false);
  });

  it('a file name that is not portable (backslash, colon) is refused before any shard is written', async () => {
    for (const name of ['zz\\note.txt', 'C:notes.txt']) {
      const model = await copyOf(llama);
      await fs.writeFile(path.join(model, name), 'x');
      const out = fresh('out');
      expectOneLine(await ablate(model, [], llamaDirection, out), /has a name that cannot be written portably/);
      expect(await exists(`${out}.partial`)).toBe(false);
    }
  });

  it('an edited tensor missing from the index is listed as edited in the manifest notes, not as copied', async () => {
    const model = await copyOf(llama);
    const indexFile = path.join(model, 'model.safetensors.index.json');
    const index = JSON.parse(await fs.readFile(indexFile, 'utf8')) as { weight_map: Record<string, string> };
    delete index.weight_map['model.embed_tokens.weight'];
    await fs.writeFile(indexFile, JSON.stringify(index));
    const out = fresh('out');
    expect((await ablate(model, [], llamaDirection, out)).code).toBe(0);
    const manifest = JSON.parse(await fs.readFile(path.join(out, 'abliteration.json'), 'utf8')) as { notes: string[]; editedTensors: string[] };
    expect(manifest.editedTensors).toContain('model.embed_tokens.weight');
    expect(manifest.notes).toContain('1 tensor(s) present in shards but not listed in the index: 1 edited (model.embed_tokens.weight)');
  });

  it('an ONNX graph whose external data escapes the folder is refused by ablate, naming the graph and the location', async () => {
    for (const location of ['../secret.bin', '/etc/passwd']) {
      const model = await copyOf(llama);
      const weight = float32Initializer('w', [1], [0]);
      weight.rawData = new Uint8Array(0);
      weight.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      weight.externalData = [onnx.StringStringEntryProto.create({ key: 'location', value: location })];
      const graph = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph: onnx.GraphProto.create({ name: 'g', initializer: [weight], node: [onnx.NodeProto.create({ opType: 'Identity', input: ['w'], output: ['y'] })] }) });
      await fs.mkdir(path.join(model, 'onnx'));
      await fs.writeFile(path.join(model, 'onnx', 'model.onnx'), encodeOnnxModel(graph));
      expectOneLine(await ablate(model), /onnx\/model\.onnx: names external data at .* which is not a file inside the model folder/, new RegExp(location.replace(/[./]/g, '\\$&')));
    }
  });

  it('run validates the weights before analysis: a truncated shard fails at once, naming the shard', async () => {
    const demo = await copyOf(DEMO);
    const shard = path.join(demo, 'model.safetensors');
    await fs.truncate(shard, (await fs.stat(shard)).size - 64);
    const out = fresh('run');
    expectOneLine(await runCli(['run', '--model', demo, '--harmful', goodPrompts, '--harmless', goodPrompts, '--out', out]), /model\.safetensors/, /truncat/);
    expect(await exists(`${out}.partial`)).toBe(false);
  });
});
