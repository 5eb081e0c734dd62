/**
 * Recipe hook graph ≡ recipe weight edit, for every method / projection / kernel combination below, on the
 * demo, toy-llama and a generated Qwen3.5-style (genai builder) model. ONE hook graph per model serves every
 * recipe: only the feeds change. The edit is `ablateModel` on the model's safetensors folder (itself checked
 * against float64 in ablate-recipe.test.ts); its output is rebuilt as ONNX (demo, genai) or run through the
 * float64 reference forward (toy-llama), and compared with the hooked original on the same prompts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Recipe } from '../../src/core/recipe';
import { ablateModel } from '../../src/engine/ablate';
import { resolveAblation } from '../../src/engine/ablation-selection';
import { buildDecoderFeeds } from '../../src/engine/capture';
import { recipeHookFeeds, recipeHookValues, safetensorsHookWeights } from '../../src/engine/recipe-hook-feeds';
import { loadChatTokenizer, padBatch } from '../../src/engine/tokenize';
import { decodeOnnxModel, encodeOnnxModel, type ModelProto } from '../../src/formats/onnx';
import type { PromptRecord } from '../../src/formats/prompts';
import { buildDemoOnnx } from '../../scripts/demo/demo-model';
import { buildRecipeHookGraph, type RecipeHookGraph } from '../../src/model/recipe-hook-graph';
import { createNodeOutputFolder, openNodeModelFolder } from '../../src/platform/node-files';
import { createNodeSessionFactory } from '../../src/platform/ort-node';
import type { OnnxTensor } from '../../src/ports/onnx-session';
import { generateGenaiModelFolder, genaiOnnxFiles, type GeneratedGenaiModel } from '../helpers/generate-genai-model';
import { llamaConfigFromJson, llamaReferenceForward, loadSafetensorsAsFloat32, type LlamaReferenceConfig } from '../helpers/llama-reference-forward';
import { chatTokenIds, maxAbsDifference, readPromptMessages, runLeftPadded, TOY_LLAMA, toyLlamaTokenIds } from '../helpers/toy-llama-session';

const LOGITS_TOLERANCE = 1e-4;
/** Each recipe must move the logits by far more than the tolerance, or the comparison proves nothing. */
const MIN_EFFECT = 0.05;

/** Recipes over L blocks (kernels placed inside the model), covering both methods, all projections, kernels. */
function recipes(numLayers: number): { title: string; recipe: Recipe }[] {
  const middle = (numLayers - 1) / 2;
  return [
    {
      title: 'norm-preserving, fractional direction, attn kernel',
      recipe: { method: 'norm-preserving', direction: middle + 0.4, projection: 'none', components: { embed: 1, attn: { max: 1.2, peak: middle, min: 0.4, distance: numLayers / 2 }, mlp: 0.8 } },
    },
    {
      title: 'standard, per-layer, biprojected, mlp kernel with distance 0',
      recipe: { method: 'standard', direction: 'per-layer', projection: 'biprojected', components: { embed: 0.7, attn: 1, mlp: { max: 1.5, peak: 1, min: 0, distance: 0 } } },
    },
    {
      title: 'norm-preserving, per-layer, harmless-mean',
      recipe: { method: 'norm-preserving', direction: 'per-layer', projection: 'harmless-mean', components: { embed: 1.2, attn: 1, mlp: 1 } },
    },
    {
      title: 'standard, integer direction, harmless-mean, no embedding',
      recipe: { method: 'standard', direction: 2, projection: 'harmless-mean', components: { attn: { max: 1, peak: numLayers - 1, min: 0.5, distance: numLayers - 1 }, mlp: 1 } },
    },
  ];
}

function seededRows(count: number, width: number, seed: number): Float32Array[] {
  return Array.from({ length: count }, (_, row) => Float32Array.from({ length: width }, (_, i) => Math.cos(seed * 2.1 + row * 1.7 + i * 0.9) + 0.3 * Math.sin(i * (row + 2))));
}

interface Prepared {
  graph: RecipeHookGraph;
  feeds: Record<string, ort.Tensor>;
  editedWeights: Map<string, Float32Array>;
}

/** The recipe applied by ablateModel on `folder`, and the same recipe as feeds for `graph`. */
async function prepare(folder: string, work: string, graph: RecipeHookGraph, recipe: Recipe, rows: Float32Array[], means: Float32Array[], safetensors = 'model.safetensors'): Promise<Prepared> {
  const input = await openNodeModelFolder(folder);
  const out = mkdtempSync(join(work, 'edit-'));
  rmSync(out, { recursive: true });
  const selection = { recipe, directions: rows, harmlessMeans: means };
  await ablateModel(input, await createNodeOutputFolder(out), selection);
  const values = await recipeHookValues(graph, resolveAblation(selection, graph.numLayers), await safetensorsHookWeights(input));
  const feeds = Object.fromEntries(Object.entries(recipeHookFeeds(graph, values)).map(([name, tensor]) => [name, toOrt(tensor)]));
  return { graph, feeds, editedWeights: await loadSafetensorsAsFloat32(join(out, safetensors)) };
}

function toOrt(tensor: OnnxTensor): ort.Tensor {
  return new ort.Tensor('float32', tensor.data as Float32Array, tensor.dims);
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'recipe-hook-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('recipe hooks ≡ recipe edit on the demo model', () => {
  const DEMO = 'public/models/demo';
  let configJson: Record<string, unknown>;
  let config: LlamaReferenceConfig;
  let base: ModelProto;
  let graph: RecipeHookGraph;
  let batch: number[][];
  let rows: Float32Array[];
  let means: Float32Array[];
  let baseLogits: Float32Array;

  beforeAll(async () => {
    configJson = JSON.parse(readFileSync(`${DEMO}/config.json`, 'utf8'));
    config = llamaConfigFromJson(configJson);
    base = buildDemoOnnx(configJson, await loadSafetensorsAsFloat32(`${DEMO}/model.safetensors`));
    graph = buildRecipeHookGraph(base, { numLayers: config.numLayers, tiedEmbeddings: false });
    const prompts = ['harmful.test.jsonl', 'harmless.test.jsonl'].flatMap((file) =>
      readFileSync(`public/prompts/${file}`, 'utf8').split('\n').filter((line) => line.trim()).slice(0, 2).map((line) => [{ role: 'user', content: (JSON.parse(line) as { prompt: string }).prompt }]),
    );
    batch = await chatTokenIds('public/models/', 'demo', prompts);
    rows = seededRows(config.numLayers + 1, config.hiddenSize, 1);
    means = seededRows(config.numLayers + 1, config.hiddenSize, 5);
    baseLogits = (await runLeftPadded(base, batch, config, ['logits'])).logits.data as Float32Array;
  });

  it('hooks every site once, with the recipe numbers as inputs', () => {
    expect(graph.sites.map((site) => `${site.component}${site.block >= 0 ? site.block : ''}`)).toEqual(['embed', ...Array.from({ length: config.numLayers }, (_, b) => [`attn${b}`, `mlp${b}`]).flat()]);
    expect(graph.sites.filter((site) => site.component !== 'embed').every((site) => site.inputScale !== null && site.inFeatures !== null)).toBe(true);
  });

  for (const { title, recipe } of recipes(4)) {
    it(title, async () => {
      const { feeds, editedWeights } = await prepare(DEMO, work, graph, recipe, rows, means);
      const hooked = (await runLeftPadded(graph.model, batch, config, ['logits'], feeds)).logits.data as Float32Array;
      const edited = (await runLeftPadded(buildDemoOnnx(configJson, editedWeights), batch, config, ['logits'])).logits.data as Float32Array;
      const difference = maxAbsDifference(hooked, edited);
      const effect = maxAbsDifference(edited, baseLogits);
      console.info(`demo recipe hooks vs edit [${title}]: ${difference.toExponential(2)}, effect ${effect.toFixed(3)}`);
      expect(effect).toBeGreaterThan(MIN_EFFECT);
      expect(difference).toBeLessThan(LOGITS_TOLERANCE);
    });
  }

  it('baking the numbers as constants gives the same logits as feeding them', async () => {
    const { recipe } = recipes(4)[0];
    const selection = { recipe, directions: rows, harmlessMeans: means };
    const values = await recipeHookValues(graph, resolveAblation(selection, graph.numLayers), await safetensorsHookWeights(await openNodeModelFolder(DEMO)));
    const baked = buildRecipeHookGraph(base, { numLayers: config.numLayers, bake: values });
    expect(baked.inputs).toEqual([]);
    const feeds = Object.fromEntries(Object.entries(recipeHookFeeds(graph, values)).map(([name, tensor]) => [name, toOrt(tensor)]));
    const fed = (await runLeftPadded(graph.model, batch, config, ['logits'], feeds)).logits.data as Float32Array;
    const fromBaked = (await runLeftPadded(baked.model, batch, config, ['logits'])).logits.data as Float32Array;
    // onnxruntime folds the baked constants, so float32 rounding order differs slightly.
    expect(maxAbsDifference(fed, fromBaked)).toBeLessThan(LOGITS_TOLERANCE);
  });
});

describe('recipe hooks ≡ recipe edit on toy-llama (edit run through the float64 reference forward)', () => {
  let config: LlamaReferenceConfig;
  let graph: RecipeHookGraph;
  let batch: number[][];
  let rows: Float32Array[];
  let means: Float32Array[];

  beforeAll(async () => {
    config = llamaConfigFromJson(JSON.parse(readFileSync(`${TOY_LLAMA}/config.json`, 'utf8')));
    graph = buildRecipeHookGraph(decodeOnnxModel('toy-llama/onnx/model.onnx', readFileSync(`${TOY_LLAMA}/onnx/model.onnx`)), { numLayers: config.numLayers, tiedEmbeddings: false });
    batch = await toyLlamaTokenIds([...readPromptMessages('harmful_test.jsonl', 2), ...readPromptMessages('shell_nosys_test.jsonl', 1)]);
    rows = seededRows(config.numLayers + 1, config.hiddenSize, 2);
    means = seededRows(config.numLayers + 1, config.hiddenSize, 6);
  });

  for (const { title, recipe } of recipes(4).slice(0, 3)) {
    it(title, async () => {
      const { feeds, editedWeights } = await prepare(TOY_LLAMA, work, graph, recipe, rows, means);
      const hooked = (await runLeftPadded(graph.model, batch, config, ['logits'], feeds)).logits.data as Float32Array;
      const vocab = config.vocabSize;
      const width = Math.max(...batch.map((ids) => ids.length));
      let worst = 0;
      batch.forEach((ids, row) => {
        const reference = llamaReferenceForward(config, editedWeights, ids).logits; // [seq, vocab]
        const pad = width - ids.length;
        for (let token = 0; token < ids.length; token++) {
          const offset = (row * width + pad + token) * vocab;
          worst = Math.max(worst, maxAbsDifference(hooked.subarray(offset, offset + vocab), reference.subarray(token * vocab, (token + 1) * vocab)));
        }
      });
      console.info(`toy-llama recipe hooks vs float64 forward of the edit [${title}]: ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(LOGITS_TOLERANCE);
    });
  }
});

describe('recipe hooks ≡ recipe edit on a Qwen3.5-style genai export (tied lm_head; one decoder session for every recipe)', () => {
  let root: string;
  let generated: GeneratedGenaiModel;
  let graph: RecipeHookGraph;
  let batch: number[][];
  let rows: Float32Array[];
  let means: Float32Array[];
  let embedding: Uint8Array;

  beforeAll(async () => {
    root = mkdtempSync(join(work, 'genai-'));
    generated = generateGenaiModelFolder(join(root, 'model'));
    embedding = readFileSync(join(generated.dir, 'onnx/embed_tokens.onnx'));
    const decoder = decodeOnnxModel('decoder_model_merged.onnx', readFileSync(join(generated.dir, 'onnx/decoder_model_merged.onnx')));
    const numLayers = generated.config.layerTypes.length;
    graph = buildRecipeHookGraph(decoder, { numLayers, tiedEmbeddings: true });
    const tokenizer = await loadChatTokenizer(await openNodeModelFolder(generated.dir));
    batch = [...readPromptMessages('harmful_test.jsonl', 2), ...readPromptMessages('shell_agent_test.jsonl', 1)].map((messages) => tokenizer.encodeChat(messages as PromptRecord['messages']));
    rows = seededRows(numLayers + 1, generated.config.hiddenSize, 3);
    means = seededRows(numLayers + 1, generated.config.hiddenSize, 7);
  });

  /** Logits [batch, seq, vocab] of embedding graph → decoder, with extra decoder feeds. */
  async function logits(embeddingBytes: Uint8Array, decoderBytes: Uint8Array, extra: Record<string, OnnxTensor> = {}, reuse?: { embed: Awaited<ReturnType<ReturnType<typeof createNodeSessionFactory>['create']>>; decoder: Awaited<ReturnType<ReturnType<typeof createNodeSessionFactory>['create']>> }): Promise<Float32Array> {
    const factory = createNodeSessionFactory();
    const embed = reuse?.embed ?? (await factory.create({ name: 'embed_tokens.onnx', bytes: embeddingBytes }));
    const decoder = reuse?.decoder ?? (await factory.create({ name: 'decoder_model_merged.onnx', bytes: decoderBytes }));
    try {
      const padded = padBatch(batch, 0, 'left');
      const { inputs_embeds: embeds } = await embed.run({ input_ids: { type: 'int64', dims: [padded.batchSize, padded.sequenceLength], data: padded.inputIds } });
      const feeds = { ...buildDecoderFeeds(decoder.inputs.filter((input) => !(input.name in extra)), padded, embeds), ...extra };
      return (await decoder.run(feeds, ['logits'])).logits.data as Float32Array;
    } finally {
      if (!reuse) await Promise.all([embed.release(), decoder.release()]);
    }
  }

  it('every recipe through the same hooked session', async () => {
    const factory = createNodeSessionFactory();
    const sessions = {
      embed: await factory.create({ name: 'embed_tokens.onnx', bytes: embedding }),
      decoder: await factory.create({ name: 'decoder_model_merged.onnx', bytes: encodeOnnxModel(graph.model) }),
    };
    try {
      expect(graph.sites.map((site) => site.component)).toContain('lm_head');
      const cases = [...recipes(generated.config.layerTypes.length), { title: 'norm-preserving embedding only (tied logit scale)', recipe: { method: 'norm-preserving', direction: 1, projection: 'none', components: { embed: 1 } } as Recipe }];
      for (const { title, recipe } of cases) {
        const input = await openNodeModelFolder(generated.dir);
        const out = join(root, `edit-${cases.findIndex((c) => c.title === title)}`);
        const selection = { recipe, directions: rows, harmlessMeans: means };
        await ablateModel(input, await createNodeOutputFolder(out), selection);
        const values = await recipeHookValues(graph, resolveAblation(selection, graph.numLayers), await safetensorsHookWeights(input));
        const rebuilt = genaiOnnxFiles(generated.config, await loadSafetensorsAsFloat32(join(out, 'model.safetensors')));
        const hooked = await logits(embedding, new Uint8Array(), recipeHookFeeds(graph, values, generated.config.vocabSize), sessions);
        const edited = await logits(rebuilt.embedding, rebuilt.decoder);
        const difference = maxAbsDifference(hooked, edited);
        console.info(`genai recipe hooks vs edit [${title}]: ${difference.toExponential(2)}`);
        expect(difference, title).toBeLessThan(LOGITS_TOLERANCE);
      }
    } finally {
      await Promise.all([sessions.embed.release(), sessions.decoder.release()]);
    }
  });
});
