/**
 * The search's one-session ablated model (RecipeHookModelSource: the recipe hook graph loaded ONCE in
 * transformers.js, each recipe only changing the feeds) on toy-llama: for recipes of both methods and every
 * projection, switched back and forth on the same session, the first-token logits equal the float64 reference
 * forward of the recipe's weight edit (ablateModel); a recipe touching nothing is the base model; greedy replies
 * (the KV-cache decoding steps get the feeds too) equal those of the recipe baked into its own graph.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Recipe } from '../../src/core/recipe';
import { ablateModel } from '../../src/engine/ablate';
import { EvaluationSession } from '../../src/engine/evaluate';
import type { Conversation } from '../../src/engine/generate';
import { RecipeHookModelSource } from '../../src/engine/recipe-hook-models';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { createNodeOutputFolder } from '../../src/platform/node-output';
import { llamaConfigFromJson, llamaReferenceForward, loadSafetensorsAsFloat32, type LlamaReferenceConfig } from '../helpers/llama-reference-forward';
import { maxAbsDifference, readPromptMessages, TOY_LLAMA } from '../helpers/toy-llama-session';

/** float32 graph vs float64 forward of the float32-stored edited weights. */
const LOGITS_TOLERANCE = 1e-4;
/** Each recipe must move the logits by far more than the tolerance, or the comparison proves nothing. */
const MIN_EFFECT = 0.05;

const RECIPES: { title: string; recipe: Recipe }[] = [
  { title: 'norm-preserving, fractional direction, kernels', recipe: { method: 'norm-preserving', direction: 2.4, projection: 'none', components: { embed: 0.6, attn: { max: 1.2, peak: 1.5, min: 0.4, distance: 2 }, mlp: 0.8 } } },
  { title: 'standard, per-layer, biprojected', recipe: { method: 'standard', direction: 'per-layer', projection: 'biprojected', components: { embed: 0.7, attn: 1, mlp: { max: 1.5, peak: 1, min: 0, distance: 2 } } } },
  { title: 'norm-preserving, harmless-mean, no embedding', recipe: { method: 'norm-preserving', direction: 3, projection: 'harmless-mean', components: { attn: 1, mlp: { max: 1.1, peak: 3, min: 0.5, distance: 3 } } } },
];

function seededRows(count: number, width: number, seed: number): Float32Array[] {
  return Array.from({ length: count }, (_, row) => Float32Array.from({ length: width }, (_, i) => Math.cos(seed * 2.1 + row * 1.7 + i * 0.9) + 0.3 * Math.sin(i * (row + 2))));
}

let work: string;
let config: LlamaReferenceConfig;
let session: EvaluationSession;
let source: RecipeHookModelSource;
let prompts: Conversation[];
let ids: number[][];
let rows: Float32Array[];
let means: Float32Array[];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'recipe-session-'));
  const folder = await openNodeModelFolder(TOY_LLAMA);
  config = llamaConfigFromJson(JSON.parse(await folder.readText('config.json')) as Record<string, unknown>);
  session = await EvaluationSession.open(folder);
  rows = seededRows(config.numLayers + 1, config.hiddenSize, 2);
  means = seededRows(config.numLayers + 1, config.hiddenSize, 6);
  source = await RecipeHookModelSource.open(folder, session.tokenizer, rows, { harmlessMeans: means });
  prompts = [...readPromptMessages('harmful_test.jsonl', 2), ...readPromptMessages('harmless_test.jsonl', 1)] as Conversation[];
  ids = prompts.map((conversation) => session.base.encodePrompt(conversation));
});
afterAll(async () => {
  await source?.dispose();
  await session?.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** Last-position logits of the float64 reference forward on `weights`, one row per prompt. */
function referenceLastLogits(weights: Map<string, Float32Array>): Float64Array[] {
  return ids.map((tokens) => {
    const logits = llamaReferenceForward(config, weights, tokens).logits; // [seq, vocab]
    return Float64Array.from(logits.subarray((tokens.length - 1) * config.vocabSize, tokens.length * config.vocabSize));
  });
}

async function editedWeights(recipe: Recipe): Promise<Map<string, Float32Array>> {
  const out = join(work, `edit-${Math.random().toString(36).slice(2)}`);
  await ablateModel(await openNodeModelFolder(TOY_LLAMA), await createNodeOutputFolder(out), { recipe, directions: rows, harmlessMeans: means });
  return loadSafetensorsAsFloat32(join(out, 'model.safetensors'));
}

function worstDifference(actual: Float32Array[], expected: Float64Array[]): number {
  return Math.max(...actual.map((row, i) => maxAbsDifference(row, Float32Array.from(expected[i]!))));
}

describe('one recipe session for every recipe (toy-llama)', () => {
  it('offers both methods (the folder has safetensors and every out-projection takes an input scaling)', () => {
    expect([...source.methods]).toEqual(['standard', 'norm-preserving']);
  });

  it('a recipe that touches nothing is the base model', async () => {
    const { model, release } = await source.modelFor({ method: 'standard', direction: 2, projection: 'none', components: {} }, {});
    const logits = await model.nextTokenLogits(prompts);
    await release();
    expect(worstDifference(logits, referenceLastLogits(await loadSafetensorsAsFloat32(join(TOY_LLAMA, 'model.safetensors'))))).toBeLessThan(LOGITS_TOLERANCE);
  });

  it('equals the weight edit for each recipe, switching recipes on the same session', async () => {
    const base = referenceLastLogits(await loadSafetensorsAsFloat32(join(TOY_LLAMA, 'model.safetensors')));
    const expected = await Promise.all(RECIPES.map(async ({ recipe }) => referenceLastLogits(await editedWeights(recipe))));
    const models = new Set<unknown>();
    // Each recipe twice, interleaved: stale feeds from the previous recipe would show.
    for (const index of [0, 1, 2, 0, 2, 1]) {
      const { model, release } = await source.modelFor(RECIPES[index]!.recipe, {});
      models.add(model);
      const logits = await model.nextTokenLogits(prompts);
      await release();
      const difference = worstDifference(logits, expected[index]!);
      const effect = Math.max(...expected[index]!.map((row, i) => Math.max(...row.map((value, j) => Math.abs(value - base[i]![j]!)))));
      console.info(`one-session recipe vs float64 edit [${RECIPES[index]!.title}]: ${difference.toExponential(2)}, effect ${effect.toFixed(3)}`);
      expect(effect).toBeGreaterThan(MIN_EFFECT);
      expect(difference).toBeLessThan(LOGITS_TOLERANCE);
    }
    expect(models.size).toBe(1);
  });

  it('greedy replies equal those of the recipe baked into its own graph', async () => {
    for (const { recipe } of RECIPES) {
      const baked = await session.loadAblated({ recipe, directions: rows, harmlessMeans: means });
      try {
        const expected = await baked.generateBatch(prompts, { maxNewTokens: 12 });
        const { model, release } = await source.modelFor(recipe, {});
        const replies = await model.generateBatch(prompts, { maxNewTokens: 12 });
        await release();
        expect(replies.map((reply) => reply.tokenIds)).toEqual(expected.map((reply) => reply.tokenIds));
      } finally {
        await baked.dispose();
      }
    }
  });

  it('refuses a second recipe while the first is in use', async () => {
    const { release } = await source.modelFor(RECIPES[0]!.recipe, {});
    await expect(source.modelFor(RECIPES[1]!.recipe, {})).rejects.toThrow(/still in use/);
    await release();
  });
});
