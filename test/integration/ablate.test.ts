/**
 * `abliterate ablate` end to end on generated Qwen3.5-shaped, Llama-with-biases and MoE folders in BF16, F16
 * and F32, single-file and sharded: every edited tensor against an independent float64 computation (≤ 1 ulp
 * of the stored dtype), every other tensor, the index and every other file byte-identical, manifest hashes right.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { encodeDirectionsSafetensors } from '../../src/formats/direction-file';
import { generateModelFolder, type FixtureDType, type FixtureKind, type GeneratedModel } from '../helpers/generate-models';
import {
  decodeValues,
  encodeNpyFloat32,
  exists,
  expectedColumns,
  expectedRows,
  listFiles,
  readRawShard,
  REPO_ROOT,
  runCli,
  sha256OfFile,
  worstUlpError,
} from './ablate-helpers';

/** Correct rounding gives ≤ 0.5 ulp; 1 ulp leaves room for float64 summation order only. */
const MAX_ULP_ERROR = 1;

/** Which tensors each architecture must have edited, written from the names alone (not from src/model). */
const EXPECTED_TARGETS: Record<FixtureKind, RegExp> = {
  qwen3_5: /^model\.language_model\.(?:embed_tokens\.weight|layers\.(\d+)\.(?:self_attn\.o_proj|linear_attn\.out_proj|mlp\.down_proj)\.weight)$/,
  'llama-bias': /^model\.(?:embed_tokens\.weight|layers\.(\d+)\.(?:self_attn\.o_proj|mlp\.down_proj)\.(?:weight|bias))$/,
  'qwen-moe': /^model\.(?:embed_tokens\.weight|layers\.(\d+)\.(?:self_attn\.o_proj|mlp\.down_proj|mlp\.experts\.\d+\.down_proj|mlp\.shared_expert\.down_proj)\.weight)$/,
};

function targetKind(name: string): 'embed' | 'attn' | 'mlp' {
  if (name.includes('embed_tokens')) return 'embed';
  return /o_proj|out_proj/.test(name) ? 'attn' : 'mlp';
}

interface Case {
  kind: FixtureKind;
  dtype: FixtureDType;
  shards: number;
  directionFormat: 'safetensors' | 'npy' | 'json';
  scale?: number;
  targets?: ('embed' | 'attn' | 'mlp')[];
  layers?: [number, number];
}

const CASES: Case[] = [
  { kind: 'qwen3_5', dtype: 'BF16', shards: 3, directionFormat: 'safetensors' },
  { kind: 'qwen3_5', dtype: 'F16', shards: 1, directionFormat: 'npy' },
  { kind: 'qwen3_5', dtype: 'F32', shards: 2, directionFormat: 'json', layers: [1, 3] },
  { kind: 'llama-bias', dtype: 'BF16', shards: 1, directionFormat: 'json' },
  { kind: 'llama-bias', dtype: 'F16', shards: 2, directionFormat: 'safetensors', scale: 2 },
  { kind: 'llama-bias', dtype: 'F32', shards: 1, directionFormat: 'npy', scale: 0.5, targets: ['attn', 'mlp'], layers: [1, 2] },
  { kind: 'qwen-moe', dtype: 'BF16', shards: 2, directionFormat: 'json' },
  { kind: 'qwen-moe', dtype: 'F16', shards: 1, directionFormat: 'npy', targets: ['embed', 'mlp'] },
  { kind: 'qwen-moe', dtype: 'F32', shards: 3, directionFormat: 'safetensors' },
];

let workDir: string;
beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ablate-it-'));
});
afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

/** A seeded non-unit direction (the tool must normalize it), written in the requested format. */
async function writeDirection(dir: string, format: Case['directionFormat'], hiddenSize: number, numLayers: number, seed: number): Promise<{ file: string; layer?: number; row: Float32Array }> {
  // A per-layer file holds one row per hidden state (L+1), as analyze writes it; a model with another count is refused.
  const rows = Array.from({ length: numLayers + 1 }, (_, row) => row).map((row) => Float32Array.from({ length: hiddenSize }, (_, i) => Math.sin(seed * 7.1 + row * 3.3 + i * 1.7) * (row + 1.5)));
  if (format === 'safetensors') {
    const file = path.join(dir, 'directions.safetensors');
    await fs.writeFile(file, encodeDirectionsSafetensors(rows)); // per-layer [L+1, d]: pick row 2
    return { file, layer: 2, row: rows[2] };
  }
  if (format === 'npy') {
    const file = path.join(dir, 'direction.npy');
    await fs.writeFile(file, encodeNpyFloat32(rows[0], [hiddenSize]));
    return { file, row: rows[0] };
  }
  const file = path.join(dir, 'direction.json');
  await fs.writeFile(file, JSON.stringify(Array.from(rows[1])));
  return { file, row: rows[1] };
}

describe.each(CASES.map((c) => [`${c.kind} ${c.dtype} ${c.shards === 1 ? 'single file' : `${c.shards} shards`}${c.targets ? ` targets ${c.targets}` : ''}${c.layers ? ` layers ${c.layers.join('-')}` : ''}${c.scale !== undefined ? ` scale ${c.scale}` : ''}`, c] as const))(
  'abliterate ablate: %s',
  (_label, testCase) => {
    let model: GeneratedModel;
    let outDir: string;
    let result: Awaited<ReturnType<typeof runCli>>;
    let direction: Float32Array;
    let directionFile: string;
    const scale = testCase.scale ?? 1;

    beforeAll(async () => {
      const caseDir = await fs.mkdtemp(path.join(workDir, `${testCase.kind}-${testCase.dtype}-`));
      model = await generateModelFolder(path.join(caseDir, 'model'), { kind: testCase.kind, dtype: testCase.dtype, shards: testCase.shards, seed: 5 });
      const text = (model.config.text_config as Record<string, unknown> | undefined) ?? model.config;
      const hiddenSize = Number(text.hidden_size);
      const written = await writeDirection(caseDir, testCase.directionFormat, hiddenSize, Number(text.num_hidden_layers), testCase.shards);
      directionFile = written.file;
      // The direction the tool must use: the row written, normalized here in float64 and rounded to float32
      // (checked below against the manifest's hash of the direction the tool used).
      const norm = Math.sqrt(written.row.reduce((sum, value) => sum + value * value, 0));
      direction = Float32Array.from(written.row, (value) => value / norm);
      outDir = path.join(caseDir, 'out');
      const args = ['ablate', '--model', model.dir, '--direction', directionFile, '--out', outDir];
      if (written.layer !== undefined) args.push('--layer', String(written.layer));
      if (testCase.scale !== undefined) args.push('--scale', String(testCase.scale));
      if (testCase.targets) args.push('--targets', testCase.targets.join(','));
      if (testCase.layers) args.push('--layers', testCase.layers.join('-'));
      result = await runCli(args);
    });

    it('exits 0, prints a summary, leaves no OUT.partial', async () => {
      expect(result.stderr.split('\n').filter((line) => /error|Error/.test(line))).toEqual([]);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Ablated \d+ tensors/);
      expect(await exists(`${outDir}.partial`)).toBe(false);
      if (testCase.kind === 'qwen3_5' && (testCase.targets ?? ['embed']).includes('embed')) expect(result.stdout).toMatch(/tied/);
    });

    it('edits exactly the expected tensors, each within 1 ulp of a float64 computation; all else byte-identical', async () => {
      const manifest = JSON.parse(await fs.readFile(path.join(outDir, 'abliteration.json'), 'utf8'));
      const targets = testCase.targets ?? ['embed', 'attn', 'mlp'];
      const expectedNames = model.tensors
        .map((tensor) => tensor.name)
        .filter((name) => {
          const match = EXPECTED_TARGETS[testCase.kind].exec(name);
          if (!match || !targets.includes(targetKind(name))) return false;
          if (match[1] === undefined || !testCase.layers) return true;
          return Number(match[1]) >= testCase.layers[0] && Number(match[1]) <= testCase.layers[1];
        })
        .sort();
      expect([...manifest.editedTensors].sort()).toEqual(expectedNames);
      const edited = new Set(expectedNames);
      const shardNames = [...new Set(model.tensors.map((tensor) => tensor.shard))];
      let checkedEdits = 0;
      for (const shard of shardNames) {
        const before = await readRawShard(path.join(model.dir, shard));
        const after = await readRawShard(path.join(outDir, shard));
        expect(after.bytes.byteLength).toBe(before.bytes.byteLength);
        expect(after.headerBytes.equals(before.headerBytes)).toBe(true);
        for (const [name, tensor] of before.tensors) {
          const original = before.bytes.subarray(tensor.begin, tensor.end);
          const written = after.bytes.subarray(tensor.begin, tensor.end);
          if (!edited.has(name)) {
            if (!written.equals(original)) throw new Error(`${shard}: untouched tensor ${name} changed`);
            continue;
          }
          const values = decodeValues(original, tensor.dtype);
          const d = direction.length;
          const expected =
            name.endsWith('embed_tokens.weight') || name.endsWith('.bias')
              ? expectedRows(values, d, direction, scale)
              : expectedColumns(values, tensor.shape[0], tensor.shape[1], direction, scale);
          const error = worstUlpError(decodeValues(written, tensor.dtype), expected, tensor.dtype);
          if (error > MAX_ULP_ERROR) throw new Error(`${name}: ${error.toFixed(2)} ulp from the float64 result`);
          if (scale !== 0) expect(written.equals(original)).toBe(false);
          checkedEdits++;
        }
      }
      expect(checkedEdits).toBe(expectedNames.length);
    });

    it('copies the index and every other file byte for byte, adds the model card; the manifest hashes every output file', async () => {
      const manifest = JSON.parse(await fs.readFile(path.join(outDir, 'abliteration.json'), 'utf8'));
      const outputFiles = await listFiles(outDir);
      const written = [...new Set([...model.files, 'README.md'])];
      expect(outputFiles).toEqual([...written, 'abliteration.json'].sort());
      expect(Object.keys(manifest.files).sort()).toEqual(written.sort());
      for (const file of written) {
        expect(manifest.files[file].sha256).toBe(await sha256OfFile(path.join(outDir, file)));
        if (file === 'README.md') {
          const card = await fs.readFile(path.join(outDir, file), 'utf8');
          expect(card.startsWith(`---\nbase_model: ${path.basename(model.dir)}\n`)).toBe(true);
          expect(card).toContain(`SHA-256 \`${manifest.direction.sha256}\``);
        } else if (!file.endsWith('.safetensors')) {
          expect((await fs.readFile(path.join(outDir, file))).equals(await fs.readFile(path.join(model.dir, file)))).toBe(true);
        }
      }
      if (testCase.shards > 1) expect(outputFiles).toContain('model.safetensors.index.json');
      const directionBytes = Buffer.from(direction.buffer, direction.byteOffset, direction.byteLength);
      expect(manifest.direction.sha256).toBe(createHash('sha256').update(directionBytes).digest('hex'));
      expect(manifest.direction.fileSha256).toBe(await sha256OfFile(directionFile));
      expect(manifest.scale).toBe(scale);
      expect(manifest.targets).toEqual(testCase.targets ?? ['embed', 'attn', 'mlp']);
      expect(manifest.tiedEmbeddings).toBe(testCase.kind === 'qwen3_5' && (testCase.targets ?? ['embed']).includes('embed'));
      expect(manifest.tool.version).toMatch(/^\d+\.\d+\.\d+/);
    });
  },
);

describe('abliterate ablate on the trained toy-llama (real HF files, F32, untied head)', () => {
  const fixture = path.join(REPO_ROOT, 'test/fixtures/toy-llama');
  it('removes the reference direction from every edited tensor as well as PyTorch did; lm_head and ONNX untouched', async () => {
    if (!(await exists(path.join(fixture, 'REFERENCE.json')))) return expect.fail(`missing fixture ${fixture}`);
    const reference = JSON.parse(await fs.readFile(path.join(fixture, 'REFERENCE.json'), 'utf8'));
    const directionFile = path.join(workDir, 'toy-direction.json');
    await fs.writeFile(directionFile, JSON.stringify(reference.direction));
    const outDir = path.join(workDir, 'toy-out');
    const result = await runCli(['ablate', '--model', fixture, '--direction', directionFile, '--out', outDir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/ONNX files were copied unchanged/);
    const direction = Float64Array.from(reference.direction as number[]);
    const norm = Math.hypot(...direction);
    const unit = direction.map((value) => value / norm);
    const before = await readRawShard(path.join(fixture, 'model.safetensors'));
    const after = await readRawShard(path.join(outDir, 'model.safetensors'));
    let largestProjection = 0;
    for (const [name, tensor] of after.tensors) {
      const written = after.bytes.subarray(tensor.begin, tensor.end);
      const original = before.bytes.subarray(tensor.begin, tensor.end);
      const values = decodeValues(written, tensor.dtype);
      if (name === 'model.embed_tokens.weight') {
        for (let start = 0; start < values.length; start += unit.length) {
          let projection = 0;
          for (let j = 0; j < unit.length; j++) projection += values[start + j] * unit[j];
          largestProjection = Math.max(largestProjection, Math.abs(projection));
        }
      } else if (/o_proj\.weight$|down_proj\.weight$/.test(name)) {
        const [rows, cols] = tensor.shape;
        for (let j = 0; j < cols; j++) {
          let projection = 0;
          for (let i = 0; i < rows; i++) projection += unit[i] * values[i * cols + j];
          largestProjection = Math.max(largestProjection, Math.abs(projection));
        }
      } else {
        expect(written.equals(original), name).toBe(true);
      }
    }
    // PyTorch's float32 run left 2.98e-7; float64 math with one rounding should do at least as well (×2 margin for the 7-digit direction).
    expect(largestProjection).toBeLessThanOrEqual(2 * reference.max_abs_projection_on_r_after);
    expect((await fs.readFile(path.join(outDir, 'onnx/model.onnx'))).equals(await fs.readFile(path.join(fixture, 'onnx/model.onnx')))).toBe(true);
  });
});
