/**
 * `ablate --onnx`: the abliterated ONNX folder, loaded by transformers.js like any model, replies as the hook
 * preview does (greedy, token for token) with first-token logits within LOGIT_TOLERANCE, on toy-llama, the demo
 * and a Qwen3.5-style two-graph export; edited initializers equal their safetensors twins bit for bit and the
 * float64 formula to within rounding; the written graphs pass the ONNX checker.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ablateModel, type AblationManifest } from '../../src/engine/ablate';
import type { Conversation } from '../../src/engine/generate';
import type { HookTarget } from '../../src/model/hook-graph';
import { decodeOnnxModel, int64ToNumber } from '../../src/formats/onnx';
import { parsePromptFile } from '../../src/formats/prompts';
import { parseRecipe } from '../../src/core/recipe';
import { createNodeOutputFolder, openNodeModelFolder } from '../../src/platform/node-files';
import { TOY_LLAMA_DIR, REPO_ROOT } from '../helpers/fixtures';
import { generateGenaiModelFolder, TOY_TOKENIZER_DIR } from '../helpers/generate-genai-model';
import { compareExportWithHookPreview, moveInitializersToExternalData, onnxCheckerErrors, pythonWithOnnx } from '../helpers/onnx-export-check';
import { decodeValues, readRawShard, worstUlpError } from './ablate-helpers';

/** float32 graphs computing the same function in a different operation order (hook vs edited weights). */
const LOGIT_TOLERANCE = 1e-4;
/** The ablation must move some first-token logit by more than this, or the comparison proves nothing. */
const MIN_EFFECT = 1e-2;
const MAX_NEW_TOKENS = 8;
const PROMPTS = 4;

const python = pythonWithOnnx();
let workDir: string;

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'ablate-onnx-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function seededUnitDirection(size: number, phase: number): Float32Array {
  const values = Array.from({ length: size }, (_, k) => Math.sin(1.3 * k + phase) + 0.3 * Math.cos(0.7 * k));
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
}

function readConversations(file: string, count: number): Conversation[] {
  return parsePromptFile(file, readFileSync(file, 'utf8')).slice(0, count).map((record) => record.messages);
}

async function ablateOnnx(input: string, name: string, spec: { direction: Float32Array; scale: number; targets: HookTarget[]; layers?: [number, number] }): Promise<{ out: string; manifest: AblationManifest }> {
  const out = join(workDir, name);
  const manifest = await ablateModel(await openNodeModelFolder(input), await createNodeOutputFolder(out), { ...spec, onnx: true });
  return { out, manifest };
}

/** Graphs written by the tests above, checked by the last test of the file. */
const writtenGraphs: string[] = [];
function expectCheckerPasses(out: string, manifest: AblationManifest): void {
  for (const graph of manifest.onnxGraphs) writtenGraphs.push(join(out, graph.file));
}

describe('ablate --onnx ≡ hook preview in transformers.js', () => {
  const cases = [
    {
      title: 'toy-llama (inline fp32 weights, every site edited in place)',
      dir: () => TOY_LLAMA_DIR,
      prompts: () => [...readConversations(join(TOY_LLAMA_DIR, 'prompts/harmful_test.jsonl'), PROMPTS / 2), ...readConversations(join(TOY_LLAMA_DIR, 'prompts/harmless_test.jsonl'), PROMPTS / 2)],
      spec: { direction: seededUnitDirection(64, 0.2), scale: 1, targets: ['embed', 'attn', 'mlp'] as HookTarget[] },
      baked: 0,
    },
    {
      title: 'the demo model, α = 1.5 on blocks 1-3 (attention and MLP only)',
      dir: () => join(REPO_ROOT, 'public/models/demo'),
      prompts: () => readConversations(join(REPO_ROOT, 'public/prompts/shell_nosys.test.jsonl'), PROMPTS),
      spec: { direction: seededUnitDirection(64, 1.1), scale: 1.5, targets: ['attn', 'mlp'] as HookTarget[], layers: [1, 3] as [number, number] },
      baked: 0,
    },
    {
      title: 'a Qwen3.5-style two-graph export (embed_tokens table edited, tied lm_head hooked in the decoder)',
      dir: () => generateGenaiModelFolder(join(workDir, 'genai-in')).dir,
      prompts: () => readConversations(join(TOY_TOKENIZER_DIR, 'prompts/harmful_test.jsonl'), PROMPTS),
      spec: { direction: seededUnitDirection(32, 2.4), scale: 1, targets: ['embed', 'attn', 'mlp'] as HookTarget[] },
      baked: 1,
    },
  ];
  for (const testCase of cases) {
    it(testCase.title, async () => {
      const input = testCase.dir();
      const { out, manifest } = await ablateOnnx(input, testCase.title.split(' ')[0].replace(/\W/g, ''), testCase.spec);
      expect(manifest.onnx).toBe('ablated');
      expect(manifest.onnxGraphs.reduce((sum, graph) => sum + graph.bakedHooks.length, 0)).toBe(testCase.baked);
      const comparison = await compareExportWithHookPreview(input, out, testCase.spec, testCase.prompts(), MAX_NEW_TOKENS);
      expect(comparison.effect).toBeGreaterThan(MIN_EFFECT);
      expect(comparison.maxLogitDifference).toBeLessThan(LOGIT_TOLERANCE);
      expect(comparison.exportedReplies).toEqual(comparison.previewReplies);
      expectCheckerPasses(out, manifest);
    }, 120_000);
  }
});

describe('edited ONNX initializers', () => {
  it('equal their safetensors twins bit for bit (MatMul weights transposed) and the float64 formula to 1 ulp', async () => {
    const spec = { direction: seededUnitDirection(64, 0.7), scale: 0.8, targets: ['embed', 'attn', 'mlp'] as HookTarget[] };
    const { out, manifest } = await ablateOnnx(TOY_LLAMA_DIR, 'twins', spec);
    const before = decodeOnnxModel('in', readFileSync(join(TOY_LLAMA_DIR, 'onnx/model.onnx')));
    const after = decodeOnnxModel('out', readFileSync(join(out, 'onnx/model.onnx')));
    const shard = await readRawShard(join(out, 'model.safetensors'));
    const tensorOf = (model: typeof before, name: string) => (model.graph?.initializer ?? []).find((tensor) => tensor.name === name)!;
    const onnxEdits = manifest.onnxGraphs[0].editedInitializers;
    expect(onnxEdits).toHaveLength(9);
    for (const edit of onnxEdits) {
      const hfName = manifest.edits.find((candidate) => (edit.target === 'embed' ? candidate.role === 'embedding' : candidate.layer === edit.layer && candidate.role === (edit.target === 'attn' ? 'attention-out' : 'mlp-down')))!.name;
      const twin = shard.tensors.get(hfName)!;
      const hf = decodeValues(shard.bytes.subarray(twin.begin, twin.end), 'F32'); // [dModel, in] or [vocab, dModel]
      const tensor = tensorOf(after, edit.name);
      const [rows, cols] = (tensor.dims ?? []).map((dim) => int64ToNumber(dim)); // [in, dModel] or [vocab, dModel]
      const edited = decodeValues(Buffer.from(tensor.rawData!), 'F32');
      const original = decodeValues(Buffer.from(tensorOf(before, edit.name).rawData!), 'F32');
      const expected = new Float64Array(rows * cols);
      for (let row = 0; row < rows; row++) {
        let along = 0; // r · (stored row), in float64
        for (let k = 0; k < cols; k++) along += original[row * cols + k] * spec.direction[k];
        for (let k = 0; k < cols; k++) expected[row * cols + k] = original[row * cols + k] - spec.scale * along * spec.direction[k];
      }
      expect(worstUlpError(edited, expected, 'F32'), edit.name).toBeLessThanOrEqual(1);
      for (let row = 0; row < rows; row++) {
        for (let col = 0; col < cols; col++) {
          const twinValue = edit.layout === 'rows' ? hf[row * cols + col] : hf[col * rows + row];
          if (!Object.is(twinValue, edited[row * cols + col])) throw new Error(`${edit.name}[${row}, ${col}] = ${edited[row * cols + col]} but its safetensors twin ${hfName} has ${twinValue}`);
        }
      }
    }
  }, 60_000);
});

describe('a recipe with per-layer directions and a kernel', () => {
  it('edits each ONNX initializer with its own direction and weight, bit for bit as the safetensors twin', async () => {
    const directions = Array.from({ length: 5 }, (_, row) => seededUnitDirection(64, 0.3 + row)); // [L+1, d]
    const recipe = parseRecipe({ direction: 'per-layer', components: { embed: 0.5, attn: { max: 1.2, peak: 1, min: 0.4, distance: 2 }, mlp: 0.9 } }, 4);
    const out = join(workDir, 'recipe');
    const manifest = await ablateModel(await openNodeModelFolder(TOY_LLAMA_DIR), await createNodeOutputFolder(out), { recipe, directions, onnx: true });
    const after = decodeOnnxModel('out', readFileSync(join(out, 'onnx/model.onnx')));
    const shard = await readRawShard(join(out, 'model.safetensors'));
    const edits = manifest.onnxGraphs[0].editedInitializers;
    expect(edits).toHaveLength(9);
    for (const edit of edits) {
      const record = manifest.edits.find((candidate) => (edit.target === 'embed' ? candidate.role === 'embedding' : candidate.layer === edit.layer && candidate.role === (edit.target === 'attn' ? 'attention-out' : 'mlp-down')))!;
      const twin = shard.tensors.get(record.name)!;
      const hf = new Uint32Array(Uint8Array.from(shard.bytes.subarray(twin.begin, twin.end)).buffer); // [dModel, in] or [vocab, dModel] bits
      const tensor = (after.graph?.initializer ?? []).find((candidate) => candidate.name === edit.name)!;
      const [rows, cols] = (tensor.dims ?? []).map((dim) => int64ToNumber(dim));
      const edited = new Uint32Array(Uint8Array.from(tensor.rawData!).buffer);
      for (let row = 0; row < rows; row++) {
        for (let col = 0; col < cols; col++) {
          const twinBits = edit.layout === 'rows' ? hf[row * cols + col] : hf[col * rows + row];
          if (twinBits !== edited[row * cols + col]) throw new Error(`${edit.name}[${row}, ${col}] differs from ${record.name}`);
        }
      }
    }
  }, 60_000);
});

describe('ONNX-only folders and external data', () => {
  it('an ONNX-only folder with external data ablates like the full folder, streamed in small chunks', async () => {
    const onnxOnly = join(workDir, 'onnx-only');
    cpSync(TOY_LLAMA_DIR, onnxOnly, { recursive: true, filter: (source) => !source.endsWith('.safetensors') });
    moveInitializersToExternalData(join(onnxOnly, 'onnx/model.onnx'));
    const spec = { direction: seededUnitDirection(64, 0.2), scale: 1, targets: ['embed', 'attn', 'mlp'] as HookTarget[] };
    const out = join(workDir, 'onnx-only-out');
    const manifest = await ablateModel(await openNodeModelFolder(onnxOnly), await createNodeOutputFolder(out), { ...spec, onnx: true, maxChunkBytes: 4096 });
    expect(manifest.onnx).toBe('ablated');
    expect(Object.keys(manifest.files)).toContain('onnx/model.onnx_data');
    expect(manifest.onnxGraphs[0].editedInitializers).toHaveLength(9);
    const comparison = await compareExportWithHookPreview(TOY_LLAMA_DIR, out, spec, readConversations(join(TOY_LLAMA_DIR, 'prompts/harmful_test.jsonl'), PROMPTS), MAX_NEW_TOKENS);
    expect(comparison.maxLogitDifference).toBeLessThan(LOGIT_TOLERANCE);
    expect(comparison.exportedReplies).toEqual(comparison.previewReplies);
    expectCheckerPasses(out, manifest);
  }, 120_000);
});

describe('ONNX checker', () => {
  // Skipped only when no python3 can `import onnx`; .ci/run installs Debian's python3-onnx so CI runs it.
  it.skipIf(python === null)('onnx.checker.check_model passes on every graph written above (skipped without python3-onnx)', () => {
    const results = writtenGraphs.map((graph) => ({ graph, errors: onnxCheckerErrors(python as string, graph) }));
    for (const { graph, errors } of results) if (errors !== null) expect(errors, graph).toBe('');
    // The opset-17 graphs (toy-llama, demo, external data) are checked; opset-21 ones need onnx ≥ 1.15 and run in ORT above.
    expect(results.filter((result) => result.errors !== null).length).toBeGreaterThanOrEqual(3);
  });
});
