/**
 * What the capture engine feeds a graph beyond input ids: empty caches sized from the graph's own input
 * metadata (Qwen3.5's conv/recurrent states, mRoPE position ids), and weights kept in external-data files
 * (the capture graph is created from bytes, so ORT must be told where those files live).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildDecoderFeeds, captureActivations, openCaptureSession } from '../../src/engine/capture';
import { loadChatTokenizer, padBatch } from '../../src/engine/tokenize';
import { decodeOnnxModel, encodeOnnxModel, externalInitializers, onnx } from '../../src/formats/onnx';
import { parsePromptFile } from '../../src/formats/prompts';
import { parseReport } from '../../src/formats/report';
import { openNodeModelFolder } from '../../src/platform/node-files';
import type { OnnxValueInfo } from '../../src/ports/onnx-session';
import { createNodeSessionFactory } from '../../src/platform/ort-node';
import { UnsupportedModelError } from '../../src/base/errors';
import path from 'node:path';
import { TOY_LLAMA_DIR, QWEN3_5_GRAPH_DIR } from '../helpers/fixtures';

const toyDir = TOY_LLAMA_DIR;
const qwenGraph = path.join(QWEN3_5_GRAPH_DIR, 'onnx/decoder_model_merged_quantized.onnx');
const ELEMENT_TYPES: Record<number, string> = { 1: 'float32', 7: 'int64', 10: 'float16', 9: 'bool' };

describe('decoder feeds', () => {
  it("sizes Qwen3.5's empty caches and mRoPE positions from its graph inputs", () => {
    const model = decodeOnnxModel(qwenGraph, readFileSync(qwenGraph));
    const inputs: OnnxValueInfo[] = (model.graph?.input ?? []).map((input) => ({
      name: input.name ?? '',
      type: ELEMENT_TYPES[input.type?.tensorType?.elemType ?? 0] ?? 'unknown',
      shape: (input.type?.tensorType?.shape?.dim ?? []).map((dim) => dim.dimParam || Number(dim.dimValue)),
    }));
    const batch = padBatch([[5, 6, 7], [8]], 0, 'left');
    const embeds = { type: 'float32' as const, dims: [2, 3, 1024], data: new Float32Array(2 * 3 * 1024) };
    const feeds = buildDecoderFeeds(inputs, batch, embeds);
    expect(Object.keys(feeds).sort()).toEqual(inputs.map((input) => input.name).sort());
    expect(feeds.inputs_embeds).toBe(embeds);
    expect(feeds.attention_mask.dims).toEqual([2, 3]);
    expect(feeds['past_conv.0'].dims).toEqual([2, 6144, 4]);
    expect(feeds['past_recurrent.0'].dims).toEqual([2, 16, 128, 128]);
    expect(feeds['past_key_values.3.key'].dims).toEqual([2, 2, 0, 256]);
    // Text-only mRoPE: the same positions on all three axes; padding gets 1 as in transformers.js.
    expect(feeds.position_ids.dims).toEqual([3, 2, 3]);
    expect(Array.from(feeds.position_ids.data as BigInt64Array, Number)).toEqual([0, 1, 2, 1, 1, 0, 0, 1, 2, 1, 1, 0, 0, 1, 2, 1, 1, 0]);
    expect(() => buildDecoderFeeds(inputs, batch, null)).toThrow(UnsupportedModelError);
  });

  it('names an input it cannot fill', () => {
    const batch = padBatch([[1]], 0);
    expect(() => buildDecoderFeeds([{ name: 'pixel_values', type: 'float32', shape: ['batch', 3, 224, 224] }], batch, null)).toThrow(/pixel_values/);
    expect(() => buildDecoderFeeds([{ name: 'past_key_values.0.key', type: 'float32', shape: ['batch', 'heads', 0, 4] }], batch, null)).toThrow(/"heads"/);
  });
});

/** Moves every large initializer of the graph into `model.onnx_data` (how big exports ship). */
function externalize(bytes: Uint8Array): { graph: Uint8Array; data: Uint8Array } {
  const model = decodeOnnxModel('model.onnx', bytes);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const tensor of model.graph?.initializer ?? []) {
    const raw = tensor.rawData;
    if (!raw || raw.length < 1024) continue;
    chunks.push(raw);
    tensor.externalData = [
      { key: 'location', value: 'model.onnx_data' },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
    tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    tensor.rawData = new Uint8Array(0);
    offset += raw.length;
  }
  const data = new Uint8Array(offset);
  let position = 0;
  for (const chunk of chunks) {
    data.set(chunk, position);
    position += chunk.length;
  }
  expect(externalInitializers(model).length).toBeGreaterThan(10);
  return { graph: encodeOnnxModel(model), data };
}

describe('external data', () => {
  const work = mkdtempSync(join(tmpdir(), 'capture-external-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('captures the same residuals from a graph whose weights live in model.onnx_data, in the engine and the CLI', async () => {
    const model = join(work, 'toy-external');
    mkdirSync(join(model, 'onnx'), { recursive: true });
    for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(`${toyDir}/${file}`, join(model, file));
    const original = readFileSync(`${toyDir}/onnx/model.onnx`);
    const { graph, data } = externalize(original);
    expect(graph.length).toBeLessThan(original.length / 4);
    writeFileSync(join(model, 'onnx', 'model.onnx'), graph);
    writeFileSync(join(model, 'onnx', 'model.onnx_data'), data);

    const factory = createNodeSessionFactory({ threads: 2 });
    const tokenizer = await loadChatTokenizer(await openNodeModelFolder(toyDir));
    const prompts = parsePromptFile('harmful_val.jsonl', readFileSync(`${toyDir}/prompts/harmful_val.jsonl`, 'utf8')).slice(0, 12);
    const plain = await openCaptureSession(factory, { bytes: original, name: 'model.onnx' });
    const external = await openCaptureSession(factory, {
      bytes: graph,
      name: 'model.onnx',
      externalData: [{ path: 'model.onnx_data', data: join(model, 'onnx', 'model.onnx_data') }],
    });
    try {
      const expected = await captureActivations(plain, tokenizer, prompts);
      const actual = await captureActivations(external, tokenizer, prompts);
      expect(Array.from(actual.activations!)).toEqual(Array.from(expected.activations!));
    } finally {
      await plain.release();
      await external.release();
    }

    const out = join(work, 'out');
    const prompt = (name: string) => `${toyDir}/prompts/${name}.jsonl`;
    const result = spawnSync(process.execPath, ['bin/abliterate.mjs', 'analyze', '--model', model, '--harmful', prompt('harmful_val'), '--harmless', prompt('harmless_val'), '--out', out], { encoding: 'utf8', timeout: 240_000 });
    expect(result.stderr).not.toMatch(/abliterate analyze:/);
    expect(result.status).toBe(0);
    const report = parseReport('report.json', readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.layers[2].auc).toBe(1);
  });
});
