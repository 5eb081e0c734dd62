/**
 * "Hook graph ≡ weight edit" on a Qwen3.5-style (genai builder) export: the embedding hook sits on the
 * decoder's inputs_embeds input (the embedding itself is another graph) and, with tied embeddings, on the
 * lm_head input; the attention hooks sit on both kinds of token mixer (gdn/out_proj and attn/o_proj).
 * The weight edit is done twice, independently of the hooks: in memory with the project's CPU math
 * (src/core/orthogonalize.ts) and by `abliterate ablate` on the folder; both edited weight sets are turned
 * back into ONNX (genai-onnx-builder.ts) and compared with the hooked original.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRows, orthogonalizeColumns } from '../../src/core/orthogonalize';
import { buildDecoderFeeds } from '../../src/engine/capture';
import { loadChatTokenizer, padBatch } from '../../src/engine/tokenize';
import { decodeOnnxModel, encodeOnnxModel, type ModelProto } from '../../src/formats/onnx';
import type { PromptRecord } from '../../src/formats/prompts';
import { buildHookGraph, type HookTarget } from '../../src/model/hook-graph';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { createNodeSessionFactory } from '../../src/platform/ort-node';
import { genaiReferenceForward } from '../helpers/genai-reference-forward';
import { generateGenaiModelFolder, genaiOnnxFiles, GENAI_PREFIX, type GeneratedGenaiModel } from '../helpers/generate-genai-model';
import { loadSafetensorsAsFloat32 } from '../helpers/llama-reference-forward';
import { readPromptMessages } from '../helpers/toy-llama-session';

/** Hooked vs edited graph, both float32; logits here reach ~12. */
const LOGITS_TOLERANCE = 1e-4;
/** Edited graph vs the float64 forward on the same edited weights. */
const REFERENCE_TOLERANCE = 1e-4;
/** The edit must visibly change the logits, or the comparison proves nothing. */
const MIN_EFFECT = 0.05;

function floatBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

function toFloat32(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** A generic unit direction (not aligned with any weight), [dModel]. */
function genericDirection(size: number): Float32Array {
  const values = Array.from({ length: size }, (_, k) => Math.cos(1.7 * k + 0.3) + 0.1 * Math.sin(5 * k));
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
}

interface EditCase {
  name: string;
  scale: number;
  targets: HookTarget[];
  layers?: [number, number];
}

/** Embedding rows and the targeted out-projections, orthogonalized by the project's CPU weight math. */
function orthogonalized(generated: GeneratedGenaiModel, direction: Float32Array, edit: EditCase): Map<string, Float32Array> {
  const { config, weights } = generated;
  const d = config.hiddenSize;
  const edited = new Map(weights);
  if (edit.targets.includes('embed')) {
    const name = `${GENAI_PREFIX}embed_tokens.weight`;
    edited.set(name, toFloat32(applyRows(floatBytes(weights.get(name)!), 'F32', config.vocabSize, d, direction, edit.scale)));
  }
  const [first, last] = edit.layers ?? [0, config.layerTypes.length - 1];
  config.layerTypes.forEach((type, layer) => {
    if (layer < first || layer > last) return;
    const names: string[] = [];
    if (edit.targets.includes('attn')) names.push(`${GENAI_PREFIX}layers.${layer}.${type === 'linear_attention' ? 'linear_attn.out_proj' : 'self_attn.o_proj'}.weight`);
    if (edit.targets.includes('mlp')) names.push(`${GENAI_PREFIX}layers.${layer}.mlp.down_proj.weight`);
    for (const name of names) {
      const weight = weights.get(name)!; // [d, in]
      edited.set(name, toFloat32(orthogonalizeColumns(floatBytes(weight), 'F32', d, weight.length / d, direction, edit.scale)));
    }
  });
  return edited;
}

/** Left-padded logits [batch, seq, vocab] of embedding graph → decoder, fed by the capture engine's feed builder. */
async function runLogits(embedding: Uint8Array, decoder: Uint8Array, batch: number[][]): Promise<{ logits: Float32Array; width: number }> {
  const factory = createNodeSessionFactory();
  const [embedSession, decoderSession] = await Promise.all([factory.create({ name: 'embed_tokens.onnx', bytes: embedding }), factory.create({ name: 'decoder_model_merged.onnx', bytes: decoder })]);
  try {
    const padded = padBatch(batch, 0, 'left');
    const { inputs_embeds: embeds } = await embedSession.run({ input_ids: { type: 'int64', dims: [padded.batchSize, padded.sequenceLength], data: padded.inputIds } });
    const outputs = await decoderSession.run(buildDecoderFeeds(decoderSession.inputs, padded, embeds), ['logits']);
    return { logits: outputs.logits.data as Float32Array, width: padded.sequenceLength };
  } finally {
    await Promise.all([embedSession.release(), decoderSession.release()]);
  }
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k] - b[k]));
  return worst;
}

describe('hook graph ≡ weight edit on a Qwen3.5-style (genai builder) export', () => {
  let root: string;
  let generated: GeneratedGenaiModel;
  let baseDecoder: ModelProto;
  let baseFiles: { embedding: Uint8Array; decoder: Uint8Array };
  let batch: number[][];
  let direction: Float32Array;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'genai-hook-'));
    generated = generateGenaiModelFolder(join(root, 'model'));
    baseFiles = { embedding: readFileSync(join(generated.dir, 'onnx/embed_tokens.onnx')), decoder: readFileSync(join(generated.dir, 'onnx/decoder_model_merged.onnx')) };
    baseDecoder = decodeOnnxModel('decoder_model_merged.onnx', baseFiles.decoder);
    const tokenizer = await loadChatTokenizer(await openNodeModelFolder(generated.dir));
    batch = [...readPromptMessages('harmful_test.jsonl', 2), ...readPromptMessages('shell_agent_test.jsonl', 2)].map((messages) => tokenizer.encodeChat(messages as PromptRecord['messages']));
    direction = genericDirection(generated.config.hiddenSize);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const cases: EditCase[] = [
    { name: 'embed + attn + mlp, α = 1 (tied lm_head hooked too)', scale: 1, targets: ['embed', 'attn', 'mlp'] },
    { name: 'attn + mlp on blocks 1–2, α = 0.6', scale: 0.6, targets: ['attn', 'mlp'], layers: [1, 2] },
    { name: 'embed only, α = 2 (reflection)', scale: 2, targets: ['embed'] },
  ];
  for (const edit of cases) {
    it(edit.name, async () => {
      const hooked = buildHookGraph(baseDecoder, { direction, scale: edit.scale, targets: edit.targets, ...(edit.layers ? { layers: edit.layers } : {}), tiedEmbeddings: true, numLayers: 4 });
      if (edit.targets.includes('embed')) expect(hooked.sites.slice(0, 2).map((site) => [site.target, site.value])).toEqual([['embed', 'inputs_embeds'], ['lm_head', '/model/layers.4/final_norm_layernorm/output_0']]);
      for (const site of hooked.sites.filter((site) => site.target === 'attn')) {
        expect(site.projection).toBe(`/model/layers.${site.layer}/${generated.config.layerTypes[site.layer] === 'linear_attention' ? 'gdn/out_proj' : 'attn/o_proj'}/MatMul`);
      }
      const editedWeights = orthogonalized(generated, direction, edit);
      const editedFiles = genaiOnnxFiles(generated.config, editedWeights);
      // The hooked decoder still reads the ORIGINAL embedding graph's output; the edited one reads the edited table.
      const viaHooks = await runLogits(baseFiles.embedding, encodeOnnxModel(hooked.model), batch);
      const viaWeights = await runLogits(editedFiles.embedding, editedFiles.decoder, batch);
      const base = await runLogits(baseFiles.embedding, baseFiles.decoder, batch);
      const difference = maxDifference(viaHooks.logits, viaWeights.logits);
      const effect = maxDifference(base.logits, viaWeights.logits);
      // The edited graph against the float64 forward on the edited weights, on every real token.
      const vocab = generated.config.vocabSize;
      let referenceDifference = 0;
      batch.forEach((ids, row) => {
        const reference = genaiReferenceForward(generated.config, editedWeights, ids).logits;
        const pad = viaWeights.width - ids.length;
        const start = (row * viaWeights.width + pad) * vocab;
        referenceDifference = Math.max(referenceDifference, maxDifference(viaWeights.logits.subarray(start, start + ids.length * vocab), reference));
      });
      console.log(`genai hook ≡ edit [${edit.name}]: hooks vs edit ${difference.toExponential(2)}, edit vs float64 ${referenceDifference.toExponential(2)}, effect ${effect.toFixed(3)}`);
      expect(effect).toBeGreaterThan(MIN_EFFECT);
      expect(difference).toBeLessThan(LOGITS_TOLERANCE);
      expect(referenceDifference).toBeLessThan(REFERENCE_TOLERANCE);
    });
  }

  it('abliterate ablate on the folder edits exactly the Qwen3.5 targets, and its weights rebuilt as ONNX equal the hook graph', async () => {
    const directionFile = join(root, 'direction.json');
    writeFileSync(directionFile, JSON.stringify(Array.from(direction)));
    const out = join(root, 'ablated');
    const run = spawnSync(process.execPath, ['bin/abliterate.mjs', 'ablate', '--model', generated.dir, '--direction', directionFile, '--out', out], { encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, 'abliteration.json'), 'utf8')) as { editedTensors: string[]; tiedEmbeddings: boolean };
    const expected = [
      `${GENAI_PREFIX}embed_tokens.weight`,
      ...generated.config.layerTypes.flatMap((type, layer) => [`${GENAI_PREFIX}layers.${layer}.${type === 'linear_attention' ? 'linear_attn.out_proj' : 'self_attn.o_proj'}.weight`, `${GENAI_PREFIX}layers.${layer}.mlp.down_proj.weight`]),
    ];
    expect([...manifest.editedTensors].sort()).toEqual(expected.sort());
    expect(manifest.tiedEmbeddings).toBe(true);
    // The ONNX files and tokenizer come through byte for byte; the decoder is not rebuilt by ablate.
    for (const file of ['onnx/decoder_model_merged.onnx', 'onnx/embed_tokens.onnx', 'tokenizer.json']) expect(readFileSync(join(out, file)).equals(readFileSync(join(generated.dir, file)))).toBe(true);
    const ablatedWeights = await loadSafetensorsAsFloat32(join(out, 'model.safetensors'));
    const rebuilt = genaiOnnxFiles(generated.config, ablatedWeights);
    const hooked = buildHookGraph(baseDecoder, { direction, scale: 1, targets: ['embed', 'attn', 'mlp'], tiedEmbeddings: true });
    const viaHooks = await runLogits(baseFiles.embedding, encodeOnnxModel(hooked.model), batch);
    const viaAblate = await runLogits(rebuilt.embedding, rebuilt.decoder, batch);
    const difference = maxDifference(viaHooks.logits, viaAblate.logits);
    console.log(`genai hook ≡ abliterate ablate output: max |logit difference| ${difference.toExponential(2)}`);
    expect(difference).toBeLessThan(LOGITS_TOLERANCE);
  });
});
