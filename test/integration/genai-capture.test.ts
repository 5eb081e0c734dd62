/**
 * The capture path of Qwen3.5-style exports, run for real: a separate embed_tokens graph feeding a decoder that
 * takes inputs_embeds, zeroed conv/recurrent/KV caches and 3-axis mRoPE positions (generate-genai-model.ts).
 * Every captured residual of left-padded batches must equal the float64 reference forward of the same
 * architecture (genai-reference-forward.ts), at the engine level and through `abliterate analyze`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDecoderFeeds, captureActivations, openCaptureSession, type CaptureResult } from '../../src/engine/capture';
import { loadChatTokenizer, padBatch, type ChatTokenizer } from '../../src/engine/tokenize';
import { parseDirectionFile } from '../../src/formats/direction-file';
import { decodeOnnxModel } from '../../src/formats/onnx';
import { parsePromptFile, type PromptRecord } from '../../src/formats/prompts';
import { parseReport } from '../../src/formats/report';
import { findResidualPoints } from '../../src/model/residual-finder';
import { openNodeModelFolder } from '../../src/platform/node-files';
import type { OnnxModelInput, OnnxSession, OnnxSessionFactory, OnnxTensor, OnnxValueInfo } from '../../src/ports/onnx-session';
import { createNodeSessionFactory } from '../../src/platform/ort-node';
import { genaiReferenceForward } from '../helpers/genai-reference-forward';
import { generateGenaiModelFolder, TOY_TOKENIZER_DIR, type GeneratedGenaiModel } from '../helpers/generate-genai-model';

/** float32 graph vs float64 reference on O(1) activations. */
const HIDDEN_TOLERANCE = 1e-4;
const DIRECTION_TOLERANCE = 1e-4;
const PROMPTS_PER_SET = 6;

function readPrompts(file: string): { text: string; records: PromptRecord[] } {
  const text = readFileSync(join(TOY_TOKENIZER_DIR, 'prompts', file), 'utf8').split('\n').filter((line) => line.trim()).slice(0, PROMPTS_PER_SET).join('\n');
  return { text, records: parsePromptFile(file, text) };
}

/** onnxruntime-web (wasm, one thread) behind the engine's OnnxSession interface; src/platform/ort-web.ts needs Vite. */
async function wasmSessionFactory(): Promise<OnnxSessionFactory> {
  const ortWeb = await import('onnxruntime-web');
  ortWeb.env.wasm.numThreads = 1;
  const info = (metadata: readonly { name: string; isTensor: boolean; type?: string; shape?: readonly (number | string)[] }[]): OnnxValueInfo[] =>
    metadata.map((value) => ({ name: value.name, type: value.type ?? 'unknown', shape: [...(value.shape ?? [])] }));
  return {
    name: 'onnxruntime-web wasm (test adapter)',
    async create(model: OnnxModelInput): Promise<OnnxSession> {
      const session = await ortWeb.InferenceSession.create(model.bytes, { executionProviders: ['wasm'] });
      return {
        inputs: info(session.inputMetadata as never),
        outputs: info(session.outputMetadata as never),
        async run(feeds: Record<string, OnnxTensor>, outputNames?: readonly string[]) {
          const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([name, tensor]) => [name, new ortWeb.Tensor(tensor.type as 'float32', tensor.data as Float32Array, tensor.dims)]));
          const outputs = outputNames ? await session.run(ortFeeds, [...outputNames]) : await session.run(ortFeeds);
          return Object.fromEntries(Object.entries(outputs).map(([name, tensor]) => [name, { type: tensor.type as OnnxTensor['type'], dims: [...tensor.dims], data: tensor.data as OnnxTensor['data'] }]));
        },
        release: () => session.release(),
      };
    },
  };
}

describe('Qwen3.5-style (genai builder) capture on a tiny generated model', () => {
  let root: string;
  let generated: GeneratedGenaiModel;
  let groupQueryDir: string; // the same weights, full attention through GroupQueryAttention
  let tokenizer: ChatTokenizer;
  const harmful = readPrompts('harmful_test.jsonl');
  const harmless = readPrompts('harmless_test.jsonl');

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'genai-capture-'));
    generated = generateGenaiModelFolder(join(root, 'model'));
    groupQueryDir = generateGenaiModelFolder(join(root, 'model-gqa'), { attention: 'group-query' }).dir;
    tokenizer = await loadChatTokenizer(await openNodeModelFolder(generated.dir));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('finds all L + 1 residual points: inputs_embeds, the Skip norms’ output 3, and the final norm’s pending sum', () => {
    const path = join(generated.dir, 'onnx/decoder_model_merged.onnx');
    const residual = findResidualPoints(decodeOnnxModel(path, readFileSync(path)), { numLayers: 4 });
    expect(residual.style).toBe('genai');
    expect(residual.inputsEmbeds).toBe(true);
    expect(residual.dModel).toBe(32);
    expect(residual.points.slice(0, 4)).toEqual(['inputs_embeds', ...[1, 2, 3].map((layer) => `/model/layers.${layer}/input_layernorm/output_3`)]);
    expect(residual.junctions.map((junction) => junction.kind).join(',')).toBe('mixer,mlp,mixer,mlp,mixer,mlp,mixer,mlp');
    expect(residual.junctions.map((junction) => junction.branchInput).filter((_, k) => k % 2 === 0)).toEqual([
      '/model/layers.0/gdn/out_proj/MatMul/output_0',
      '/model/layers.1/attn/o_proj/MatMul/output_0',
      '/model/layers.2/gdn/out_proj/MatMul/output_0',
      '/model/layers.3/attn/o_proj/MatMul/output_0',
    ]);
    const last = residual.junctions.at(-1)!;
    expect(last.nodeName).toBe('/model/layers.4/final_norm_layernorm/SkipLayerNorm');
    expect(last.sumPending).toBe(true);
    expect(residual.points[4]).toBe(last.sum);
  });

  /** Largest |captured − float64 reference| over prompts, positions, layers and features. */
  function captureError(result: CaptureResult, prompts: PromptRecord[]): number {
    const { hiddenSize, layerCount, positions } = result;
    let worst = 0;
    prompts.forEach((prompt, index) => {
      const ids = tokenizer.encodeChat(prompt.messages);
      const reference = genaiReferenceForward(generated.config, generated.weights, ids);
      positions.forEach((position, positionIndex) => {
        const token = ids.length + position;
        for (let layer = 0; layer < layerCount; layer++) {
          const start = ((index * positions.length + positionIndex) * layerCount + layer) * hiddenSize;
          for (let k = 0; k < hiddenSize; k++) worst = Math.max(worst, Math.abs((result.activations as Float32Array)[start + k] - reference.hiddenStates[layer][token * hiddenSize + k]));
        }
      });
    });
    return worst;
  }

  async function captureWith(factory: OnnxSessionFactory, prompts: PromptRecord[], positions: number[], dir = generated.dir): Promise<CaptureResult> {
    const folder = await openNodeModelFolder(dir);
    const read = async (path: string) => {
      const source = await folder.open(path);
      return { name: path, bytes: await source.read(0, source.size) };
    };
    const capture = await openCaptureSession(factory, await read('onnx/decoder_model_merged.onnx'), { positions, numLayers: 4, embedding: await read('onnx/embed_tokens.onnx') });
    try {
      expect(capture.embedSession).not.toBeNull();
      return await captureActivations(capture, tokenizer, prompts, { batchSize: 4, label: 'mixed' });
    } finally {
      await capture.release();
    }
  }

  it('captures every layer of left-padded batches equal to the float64 reference (engine level, last three positions)', async () => {
    const prompts = [...harmful.records, ...harmless.records];
    const result = await captureWith(createNodeSessionFactory(), prompts, [-3, -2, -1]);
    expect(new Set(result.tokenCounts).size).toBeGreaterThan(1); // batches really are padded
    expect([result.hiddenSize, result.layerCount]).toEqual([32, 5]);
    const worst = captureError(result, prompts);
    console.log(`genai capture (onnxruntime-node) vs float64 reference: max |difference| ${worst.toExponential(2)} over ${prompts.length} prompts × 3 positions × 5 layers`);
    expect(worst).toBeLessThan(HIDDEN_TOLERANCE);
  });

  it('runs the same capture on onnxruntime-web’s wasm EP (the browser runtime): Skip norms and GroupQueryAttention included', async () => {
    const prompts = [...harmful.records.slice(0, 3), ...harmless.records.slice(0, 3)];
    const result = await captureWith(await wasmSessionFactory(), prompts, [-1], groupQueryDir);
    const worst = captureError(result, prompts);
    console.log(`genai capture (onnxruntime-web wasm) vs float64 reference: max |difference| ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(HIDDEN_TOLERANCE);
  });

  it('captures left-padded batches correctly through GroupQueryAttention wired as the real export (seqlens_k = T − 1, padding as attention_bias)', async () => {
    const path = join(groupQueryDir, 'onnx/decoder_model_merged.onnx');
    expect(decodeOnnxModel(path, readFileSync(path)).graph?.node?.filter((node) => node.opType === 'GroupQueryAttention')).toHaveLength(2);
    const prompts = [...harmful.records, ...harmless.records];
    const result = await captureWith(createNodeSessionFactory(), prompts, [-2, -1], groupQueryDir);
    const worst = captureError(result, prompts);
    console.log(`genai capture with GroupQueryAttention (onnxruntime-node) vs float64 reference: max |difference| ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(HIDDEN_TOLERANCE);
  });

  it('has a decoder that reads all three mRoPE axes of position_ids, as the float64 reference does', async () => {
    // The capture engine feeds text positions on all three axes; distinct axes show the fixture really uses each.
    const ids = tokenizer.encodeChat(harmful.records[0].messages);
    const axes: [number[], number[], number[]] = [ids.map((_, t) => t), ids.map((_, t) => 2 * t + 1), ids.map((_, t) => 3 + t)];
    const factory = createNodeSessionFactory();
    const read = (path: string) => ({ name: path, bytes: readFileSync(join(generated.dir, path)) });
    const [embedSession, decoderSession] = await Promise.all([factory.create(read('onnx/embed_tokens.onnx')), factory.create(read('onnx/decoder_model_merged.onnx'))]);
    try {
      const batch = padBatch([ids], 0, 'left');
      const { inputs_embeds: embeds } = await embedSession.run({ input_ids: { type: 'int64', dims: [1, ids.length], data: batch.inputIds } });
      const feeds = buildDecoderFeeds(decoderSession.inputs, batch, embeds);
      feeds.position_ids = { type: 'int64', dims: [3, 1, ids.length], data: BigInt64Array.from(axes.flat().map(BigInt)) };
      const logits = (await decoderSession.run(feeds, ['logits'])).logits.data as Float32Array;
      const distinct = genaiReferenceForward(generated.config, generated.weights, ids, { positions: axes }).logits;
      const textOnly = genaiReferenceForward(generated.config, generated.weights, ids).logits;
      let worst = 0;
      let axisEffect = 0;
      for (let k = 0; k < logits.length; k++) {
        worst = Math.max(worst, Math.abs(logits[k] - distinct[k]));
        axisEffect = Math.max(axisEffect, Math.abs(distinct[k] - textOnly[k]));
      }
      expect(axisEffect).toBeGreaterThan(0.05);
      expect(worst).toBeLessThan(HIDDEN_TOLERANCE);
    } finally {
      await Promise.all([embedSession.release(), decoderSession.release()]);
    }
  });

  it('abliterate analyze on the folder writes directions equal to the reference mean differences', () => {
    const harmfulFile = join(root, 'harmful.jsonl');
    const harmlessFile = join(root, 'harmless.jsonl');
    writeFileSync(harmfulFile, harmful.text);
    writeFileSync(harmlessFile, harmless.text);
    const out = join(root, 'analysis');
    const run = spawnSync(process.execPath, ['bin/abliterate.mjs', 'analyze', '--model', generated.dir, '--harmful', harmfulFile, '--harmless', harmlessFile, '--held-out', '0', '--batch-size', '4', '--out', out], { encoding: 'utf8', timeout: 120_000 });
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.status).toBe(0);
    const report = parseReport('report.json', readFileSync(join(out, 'report.json'), 'utf8'));
    expect([report.hiddenSize, report.numLayers, report.layers.length]).toEqual([32, 4, 5]);
    const directions = parseDirectionFile('directions.safetensors', readFileSync(join(out, 'directions.safetensors'))).rows;
    // Independent: mean last-token residual of each set from the float64 forward, then the unit difference.
    const mean = (records: PromptRecord[], layer: number) => {
      const sum = new Float64Array(32);
      for (const record of records) {
        const ids = tokenizer.encodeChat(record.messages);
        const hidden = genaiReferenceForward(generated.config, generated.weights, ids).hiddenStates[layer];
        for (let k = 0; k < 32; k++) sum[k] += hidden[(ids.length - 1) * 32 + k] / records.length;
      }
      return sum;
    };
    let worst = 0;
    for (let layer = 0; layer <= 4; layer++) {
      const a = mean(harmful.records, layer);
      const b = mean(harmless.records, layer);
      const gap = a.map((value, k) => value - b[k]);
      const norm = Math.hypot(...gap);
      // Every prompt ends with the same generation-prompt token, so layer 0 has no gap: analyze writes zeros there.
      if (layer === 0) expect(norm).toBe(0);
      gap.forEach((value, k) => (worst = Math.max(worst, Math.abs((norm === 0 ? 0 : value / norm) - directions[layer][k]))));
    }
    console.log(`genai analyze directions vs float64 reference: max |difference| ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(DIRECTION_TOLERANCE);
  });
});
