/**
 * `abliterate ablate --recipe` end to end on generated Qwen3.5-shaped, Llama-with-biases and MoE folders in
 * BF16, F16 and F32: every edited tensor against an independent float64 computation written here — direction
 * choice, projections, kernel weights and both methods from docs/definitions.md's formulas, each written vector handled
 * whole — within 1 ulp; untouched tensors byte-identical; the manifest records the recipe. Bad recipes fail
 * with one line and no output.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeDirectionsSafetensors } from '../../src/formats/direction-file';
import { generateModelFolder, type FixtureDType, type FixtureKind, type GeneratedModel } from '../helpers/generate-models';
import { decodeValues, exists, readRawShard, runCli, worstUlpError } from './ablate-helpers';

/** Correct rounding gives ≤ 0.5 ulp; 1 ulp leaves room for float64 summation order only. */
const MAX_ULP_ERROR = 1;

type Kernel = { max: number; peak: number; min: number; distance: number };
interface TestRecipe {
  method?: 'standard' | 'norm-preserving';
  direction: number | 'per-layer';
  projection?: 'none' | 'harmless-mean' | 'biprojected';
  components: { embed?: number; attn?: number | Kernel; mlp?: number | Kernel };
}

const CASES: { kind: FixtureKind; dtype: FixtureDType; shards: number; recipe: TestRecipe }[] = [
  { kind: 'qwen3_5', dtype: 'BF16', shards: 2, recipe: { method: 'norm-preserving', direction: 2.5, components: { embed: 1, attn: { max: 1.2, peak: 1, min: 0.4, distance: 2 }, mlp: 0.8 } } },
  { kind: 'qwen3_5', dtype: 'F16', shards: 1, recipe: { direction: 'per-layer', projection: 'biprojected', components: { attn: 1, mlp: { max: 1, peak: 2.5, min: 0.5, distance: 1.5 } } } },
  { kind: 'qwen3_5', dtype: 'F32', shards: 1, recipe: { method: 'norm-preserving', direction: 1.25, projection: 'harmless-mean', components: { embed: 0.5, mlp: 1 } } },
  { kind: 'llama-bias', dtype: 'BF16', shards: 1, recipe: { method: 'norm-preserving', direction: 3, projection: 'biprojected', components: { embed: 1, attn: 1, mlp: 1 } } },
  { kind: 'llama-bias', dtype: 'F16', shards: 2, recipe: { direction: 'per-layer', projection: 'harmless-mean', components: { attn: { max: 1.5, peak: 1, min: 0.2, distance: 1 }, mlp: 1 } } },
  { kind: 'llama-bias', dtype: 'F32', shards: 1, recipe: { method: 'norm-preserving', direction: 'per-layer', components: { embed: 0.7, attn: { max: 1, peak: 2, min: 0, distance: 0 }, mlp: 1.1 } } },
  { kind: 'qwen-moe', dtype: 'BF16', shards: 1, recipe: { method: 'norm-preserving', direction: 1.5, projection: 'harmless-mean', components: { embed: 1, attn: 1, mlp: 1 } } },
  { kind: 'qwen-moe', dtype: 'F16', shards: 2, recipe: { method: 'norm-preserving', direction: 'per-layer', projection: 'biprojected', components: { mlp: { max: 1, peak: 1, min: 0.5, distance: 1 } } } },
  { kind: 'qwen-moe', dtype: 'F32', shards: 1, recipe: { direction: 2, components: { embed: 1, attn: 0.9, mlp: 1 } } },
];

// ---- docs/definitions.md "Ablation recipe", written out independently in float64 ----

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}
function normalize(v: ArrayLike<number>): number[] {
  const norm = Math.sqrt(dot(v, v));
  return Array.from(v, (x) => x / norm);
}
function withoutComponent(v: ArrayLike<number>, along: ArrayLike<number>): number[] {
  const unit = normalize(along);
  const coefficient = dot(v, unit);
  return normalize(Array.from(v, (x, i) => x - coefficient * unit[i]));
}

/** The float32 direction of the target writing into hidden state `index` (embedding 0, block b → b + 1). */
function expectedDirection(recipe: TestRecipe, rows: Float32Array[], means: Float32Array[], index: number): Float32Array {
  const projection = recipe.projection ?? 'none';
  const chosenRows = rows.map((row, i) => (projection === 'harmless-mean' ? withoutComponent(row, means[i]) : normalize(row)));
  let r: number[];
  if (recipe.direction === 'per-layer') r = chosenRows[index];
  else {
    const low = Math.floor(recipe.direction);
    const f = recipe.direction - low;
    r = f === 0 ? chosenRows[low] : normalize(chosenRows[low].map((x, i) => x + f * (chosenRows[low + 1][i] - x)));
  }
  if (projection === 'biprojected') r = withoutComponent(r, means[index]);
  return Float32Array.from(r);
}

function expectedWeight(weight: number | Kernel | undefined, block: number): number {
  if (weight === undefined) return 0;
  if (typeof weight === 'number') return weight;
  const delta = Math.abs(block - weight.peak);
  if (delta > weight.distance) return 0;
  return weight.distance === 0 ? weight.max : weight.max + (delta / weight.distance) * (weight.min - weight.max);
}

/** One written vector v (float64): standard v − w r (r·v); norm-preserving rescaled to ‖v‖. */
function editVector(v: number[], r: Float32Array, w: number, normPreserving: boolean): number[] {
  const along = dot(r, v);
  const edited = v.map((x, i) => x - w * r[i] * along);
  if (!normPreserving) return edited;
  const before = Math.sqrt(dot(v, v));
  const after = Math.sqrt(dot(edited, edited));
  return after > before * 2 ** -20 ? edited.map((x) => (x * before) / after) : edited;
}

function expectedTensor(values: Float64Array, shape: number[], orientation: 'rows' | 'columns', r: Float32Array, w: number, normPreserving: boolean): Float64Array {
  const out = new Float64Array(values.length);
  if (orientation === 'rows') {
    const d = r.length;
    for (let start = 0; start < values.length; start += d) out.set(editVector(Array.from(values.subarray(start, start + d)), r, w, normPreserving), start);
    return out;
  }
  const [rows, cols] = shape;
  for (let j = 0; j < cols; j++) {
    const column = Array.from({ length: rows }, (_, i) => values[i * cols + j]);
    editVector(column, r, w, normPreserving).forEach((x, i) => (out[i * cols + j] = x));
  }
  return out;
}

/** Target tensors by name alone: component, block (−1 for the embedding), orientation. */
function classify(name: string): { component: 'embed' | 'attn' | 'mlp'; block: number; orientation: 'rows' | 'columns' } | null {
  if (/^model\.(language_model\.)?embed_tokens\.weight$/.test(name)) return { component: 'embed', block: -1, orientation: 'rows' };
  const match = /^model\.(?:language_model\.)?layers\.(\d+)\.(self_attn\.o_proj|linear_attn\.out_proj|mlp\.down_proj|mlp\.experts\.\d+\.down_proj|mlp\.shared_expert\.down_proj)\.(weight|bias)$/.exec(name);
  if (!match) return null;
  return { component: /o_proj|out_proj/.test(match[2]) ? 'attn' : 'mlp', block: Number(match[1]), orientation: match[3] === 'bias' ? 'rows' : 'columns' };
}

// ---- the tests ----

let workDir: string;
beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ablate-recipe-'));
});
afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

function seededRows(count: number, width: number, seed: number): Float32Array[] {
  return Array.from({ length: count }, (_, row) => Float32Array.from({ length: width }, (_, i) => Math.sin(seed * 5.3 + row * 2.9 + i * 1.3) * (1 + row * 0.1)));
}

async function writeInputs(dir: string, model: GeneratedModel, recipe: unknown, withMeans = true): Promise<{ directions: string; recipe: string; rows: Float32Array[]; means: Float32Array[] }> {
  const text = (model.config.text_config as Record<string, unknown> | undefined) ?? model.config;
  const hidden = Number(text.hidden_size);
  const layers = Number(text.num_hidden_layers);
  const rows = seededRows(layers + 1, hidden, 3);
  const means = seededRows(layers + 1, hidden, 8).map((row) => row.map((x, i) => x + 0.4 * Math.cos(i))); // harmless means
  const directions = path.join(dir, 'directions.safetensors');
  await fs.writeFile(directions, encodeDirectionsSafetensors(rows, withMeans ? { harmful: seededRows(layers + 1, hidden, 9), harmless: means } : undefined));
  const recipePath = path.join(dir, 'recipe.json');
  await fs.writeFile(recipePath, JSON.stringify(recipe));
  return { directions, recipe: recipePath, rows, means };
}

describe.each(CASES.map((c) => [`${c.kind} ${c.dtype}: ${c.recipe.method ?? 'standard'}, direction ${c.recipe.direction}, ${c.recipe.projection ?? 'none'}`, c] as const))(
  'abliterate ablate --recipe, %s',
  (_label, testCase) => {
    let model: GeneratedModel;
    let outDir: string;
    let inputs: Awaited<ReturnType<typeof writeInputs>>;
    let result: Awaited<ReturnType<typeof runCli>>;

    beforeAll(async () => {
      const caseDir = await fs.mkdtemp(path.join(workDir, `${testCase.kind}-${testCase.dtype}-`));
      model = await generateModelFolder(path.join(caseDir, 'model'), { kind: testCase.kind, dtype: testCase.dtype, shards: testCase.shards, seed: 9 });
      inputs = await writeInputs(caseDir, model, testCase.recipe);
      outDir = path.join(caseDir, 'out');
      result = await runCli(['ablate', '--model', model.dir, '--direction', inputs.directions, '--recipe', inputs.recipe, '--out', outDir]);
    });

    it('edits every target with its own direction and weight within 1 ulp of float64; weight 0 and the rest byte-identical', async () => {
      expect(result.stderr.split('\n').filter((line) => /error|Error/.test(line))).toEqual([]);
      expect(result.code).toBe(0);
      const { recipe } = testCase;
      const normPreserving = recipe.method === 'norm-preserving';
      const manifest = JSON.parse(await fs.readFile(path.join(outDir, 'abliteration.json'), 'utf8'));
      const expectedEdited: string[] = [];
      for (const shard of [...new Set(model.tensors.map((tensor) => tensor.shard))]) {
        const before = await readRawShard(path.join(model.dir, shard));
        const after = await readRawShard(path.join(outDir, shard));
        expect(after.headerBytes.equals(before.headerBytes)).toBe(true);
        for (const [name, tensor] of before.tensors) {
          const original = before.bytes.subarray(tensor.begin, tensor.end);
          const written = after.bytes.subarray(tensor.begin, tensor.end);
          const target = classify(name);
          const weight = target ? expectedWeight(recipe.components[target.component], target.block) : 0;
          if (!target || weight === 0) {
            if (!written.equals(original)) throw new Error(`${shard}: ${name} should be untouched but changed`);
            continue;
          }
          expectedEdited.push(name);
          const r = expectedDirection(recipe, inputs.rows, inputs.means, target.block + 1);
          const expected = expectedTensor(decodeValues(original, tensor.dtype), tensor.shape, target.orientation, r, weight, normPreserving);
          const error = worstUlpError(decodeValues(written, tensor.dtype), expected, tensor.dtype);
          if (error > MAX_ULP_ERROR) throw new Error(`${name}: ${error.toFixed(2)} ulp from the float64 result`);
        }
      }
      expect(expectedEdited.length).toBeGreaterThan(0);
      expect([...manifest.editedTensors].sort()).toEqual(expectedEdited.sort());
    });

    it('records the recipe as applied, defaults filled in', async () => {
      const manifest = JSON.parse(await fs.readFile(path.join(outDir, 'abliteration.json'), 'utf8'));
      const { recipe } = testCase;
      expect(manifest.recipe).toEqual({ method: recipe.method ?? 'standard', direction: recipe.direction, projection: recipe.projection ?? 'none', components: recipe.components });
      expect(result.stdout).toContain(`${recipe.method ?? 'standard'} edit`);
    });
  },
);

describe('abliterate ablate --recipe refuses bad recipes: exit ≠ 0, one line, no output', () => {
  let model: GeneratedModel;
  let caseDir: string;
  beforeAll(async () => {
    caseDir = await fs.mkdtemp(path.join(workDir, 'bad-'));
    model = await generateModelFolder(path.join(caseDir, 'model'), { kind: 'llama-bias', dtype: 'F32', shards: 1, seed: 2 });
  });

  const bad: [string, unknown, RegExp, boolean?][] = [
    ['an unknown method', { method: 'orthogonal', direction: 1, components: { attn: 1 } }, /recipe\.json: recipe field "method": unknown value "orthogonal"/],
    ['a direction out of range', { direction: 7, components: { attn: 1 } }, /recipe\.json: recipe field "direction": 7 is out of range \(0\.\.3\)/],
    ['a kernel with a negative distance', { direction: 1, components: { mlp: { max: 1, peak: 1, min: 0, distance: -2 } } }, /recipe field "components\.mlp\.distance": must be ≥ 0/],
    ['a projection without harmless means', { direction: 1, projection: 'biprojected', components: { attn: 1 } }, /directions\.safetensors: holds no harmless_mean, which the projection "biprojected"/, false],
    ['an unknown field', { direction: 1, scale: 2, components: { attn: 1 } }, /recipe field "scale": unknown field/],
  ];
  it.each(bad)('%s', async (title, recipe, message, withMeans = true) => {
    const dir = await fs.mkdtemp(path.join(caseDir, 'case-'));
    const inputs = await writeInputs(dir, model, recipe, withMeans);
    const outDir = path.join(dir, 'out');
    const result = await runCli(['ablate', '--model', model.dir, '--direction', inputs.directions, '--recipe', inputs.recipe, '--out', outDir]);
    expect(result.code, title).not.toBe(0);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(result.stdout).toBe('');
    expect(await exists(outDir)).toBe(false);
    expect(await exists(`${outDir}.partial`)).toBe(false);
  });

  it('a recipe together with a shorthand flag', async () => {
    const dir = await fs.mkdtemp(path.join(caseDir, 'mixed-'));
    const inputs = await writeInputs(dir, model, { direction: 1, components: { attn: 1 } });
    const result = await runCli(['ablate', '--model', model.dir, '--direction', inputs.directions, '--recipe', inputs.recipe, '--scale', '2', '--out', path.join(dir, 'out')]);
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim()).toMatch(/^abliterate ablate: --recipe replaces --scale/);
  });
});
