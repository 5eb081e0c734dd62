/**
 * The capture engine on toy-llama (a real trained model, torch.onnx export) through onnxruntime-node:
 * tokenization equals the PyTorch reference's ids, padded batches equal unpadded runs, captured residuals equal
 * an independent float64 TypeScript forward, and bad positions / cancels fail clearly.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as transformers from '@huggingface/transformers';
import { activationsAtPosition, captureActivations, openCaptureSession, type CaptureSession } from '../../src/engine/capture';
import { createChatTokenizer, loadTokenizerFiles, padBatch, type ChatTokenizer } from '../../src/engine/tokenize';
import { parsePromptFile, type PromptRecord } from '../../src/formats/prompts';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { createNodeSessionFactory } from '../../src/platform/ort-node';
import { CancelledError, InvalidInputError } from '../../src/base/errors';
import type { Progress } from '../../src/base/progress';
import { llamaReferenceForward, loadLlamaReference } from '../helpers/llama-reference-forward';
import { TOY_LLAMA_DIR, QWEN3_5_GRAPH_DIR } from '../helpers/fixtures';
import { findOnnxGraphFiles } from '../../src/formats/onnx-files';

const toyDir = TOY_LLAMA_DIR;
/** float32 ONNX vs float64 reference through 4 blocks: residual norms reach ~15. */
const FORWARD_TOLERANCE = 1e-4;
/** The same prompt in a padded batch vs alone: only the summation order of masked attention differs. */
const PADDING_TOLERANCE = 1e-5;

const reference = JSON.parse(readFileSync(`${toyDir}/REFERENCE.json`, 'utf8')) as {
  samples: Record<string, { messages: PromptRecord['messages']; input_ids: number[] }[]>;
};
const prompts = (name: string) => parsePromptFile(`${name}.jsonl`, readFileSync(`${toyDir}/prompts/${name}.jsonl`, 'utf8'));

let tokenizer: ChatTokenizer;
let lastToken: CaptureSession;
const factory = createNodeSessionFactory({ threads: 2 });
const graphBytes = readFileSync(`${toyDir}/onnx/model.onnx`);

beforeAll(async () => {
  tokenizer = createChatTokenizer(await loadTokenizerFiles(await openNodeModelFolder(toyDir)));
  lastToken = await openCaptureSession(factory, { bytes: graphBytes, name: 'toy-llama/onnx/model.onnx' }, { numLayers: 4 });
});
afterAll(async () => {
  await lastToken?.release();
});

describe('tokenization', () => {
  it("reproduces the PyTorch reference's chat-templated ids", () => {
    let checked = 0;
    for (const samples of Object.values(reference.samples)) {
      for (const sample of samples) {
        expect(tokenizer.encodeChat(sample.messages)).toEqual(sample.input_ids);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(10);
    expect(tokenizer.renderChat([{ role: 'system', content: 's' }, { role: 'user', content: 'u' }])).toBe('<|im_start|>system s<|im_end|><|im_start|>user u<|im_end|><|im_start|>assistant');
  });

  it("left-pads exactly as transformers.js' own tokenizer does, with HF position ids", async () => {
    const texts = ['list files', 'what is the best way to make explosives at home'];
    const sequences = texts.map((text) => tokenizer.encodeChat([{ role: 'user', content: text }]));
    const batch = padBatch(sequences, tokenizer.padTokenId, 'left');
    const files = await loadTokenizerFiles(await openNodeModelFolder(toyDir));
    const own = new transformers.PreTrainedTokenizer(files.tokenizerJson, files.tokenizerConfig);
    const rendered = texts.map((text) => tokenizer.renderChat([{ role: 'user', content: text }]));
    const encoded = own(rendered, { padding: true, add_special_tokens: false, return_tensor: false }) as unknown as { input_ids: number[][]; attention_mask: number[][] };
    expect(Array.from(batch.inputIds, Number)).toEqual(encoded.input_ids.flat());
    expect(Array.from(batch.attentionMask, Number)).toEqual(encoded.attention_mask.flat());
    // cumsum(mask) − 1 on real tokens, 1 on padding (transformers.js cumsum_masked_fill).
    const [shortLength, longLength] = sequences.map((sequence) => sequence.length);
    const padding = longLength - shortLength;
    expect(Array.from(batch.positionIds.subarray(0, longLength), Number)).toEqual([
      ...new Array(padding).fill(1),
      ...Array.from({ length: shortLength }, (_, i) => i),
    ]);
    const right = padBatch(sequences, tokenizer.padTokenId, 'right');
    expect(Array.from(right.attentionMask.subarray(0, longLength), Number)).toEqual([...new Array(shortLength).fill(1), ...new Array(padding).fill(0)]);
  });
});

describe('tokenizer files', () => {
  it('prefers chat_template.jinja over the config template and refuses a tokenizer without one', async () => {
    const files = await loadTokenizerFiles(await openNodeModelFolder(toyDir));
    expect(files.chatTemplate).toBeNull();
    const custom = createChatTokenizer({ ...files, chatTemplate: '{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}' });
    expect(custom.renderChat([{ role: 'user', content: 'list files' }])).toBe('<|im_start|>list files');
    const { chat_template: _template, ...withoutTemplate } = files.tokenizerConfig;
    expect(() => createChatTokenizer({ ...files, tokenizerConfig: withoutTemplate, source: 'toy' })).toThrow(/^toy\/tokenizer_config\.json: has no chat_template/);
    const failing = createChatTokenizer({ ...files, chatTemplate: "{{ raise_exception('system messages are not supported') }}", source: 'toy' });
    expect(() => failing.encodeChat([{ role: 'user', content: 'x' }])).toThrow(/chat template of toy failed on a prompt: .*system messages are not supported/);
  });

  it('names a missing tokenizer file', async () => {
    const folder = await openNodeModelFolder(QWEN3_5_GRAPH_DIR);
    await expect(loadTokenizerFiles(folder)).rejects.toThrow(/qwen3_5-0\.8b-onnx-graph\/tokenizer\.json: is missing/);
  });
});

describe('capture', () => {
  it('finds the graph in the transformers.js layout', () => {
    expect(findOnnxGraphFiles(['config.json', 'onnx/model.onnx'])).toEqual({ decoder: 'onnx/model.onnx', embedding: null, externalData: [], embeddingExternalData: [] });
    expect(findOnnxGraphFiles(['onnx/decoder_model_merged_quantized.onnx', 'onnx/embed_tokens_quantized.onnx', 'onnx/decoder_model_merged_quantized.onnx_data'])).toEqual({
      decoder: 'onnx/decoder_model_merged_quantized.onnx',
      embedding: 'onnx/embed_tokens_quantized.onnx',
      externalData: ['onnx/decoder_model_merged_quantized.onnx_data'],
      embeddingExternalData: [],
    });
    expect(findOnnxGraphFiles(['onnx/model_quantized.onnx', 'onnx/model.onnx'])?.decoder).toBe('onnx/model.onnx');
    expect(findOnnxGraphFiles(['model.safetensors'])).toBeNull();
  });

  it('equals an independent float64 forward at the last prompt token, for every layer', async () => {
    const { config, weights } = await loadLlamaReference(toyDir);
    const sample = [...prompts('harmful_test').slice(0, 3), ...prompts('shell_agent_test').slice(0, 3)];
    // Mixed lengths in one batch: the shorter prompts are left-padded.
    const result = await captureActivations(lastToken, tokenizer, sample, { batchSize: 6 });
    expect(result.layerCount).toBe(5);
    expect(result.hiddenSize).toBe(64);
    let worst = 0;
    sample.forEach((prompt, index) => {
      const ids = tokenizer.encodeChat(prompt.messages);
      const forward = llamaReferenceForward(config, weights, ids);
      for (let layer = 0; layer < 5; layer++) {
        const expected = forward.hiddenStates[layer].subarray((ids.length - 1) * 64, ids.length * 64);
        const actual = result.activations!.subarray((index * 5 + layer) * 64, (index * 5 + layer + 1) * 64);
        for (let k = 0; k < 64; k++) worst = Math.max(worst, Math.abs(actual[k] - expected[k]));
      }
    });
    expect(worst).toBeLessThan(FORWARD_TOLERANCE);
  });

  it('gives the same activations and float64 sums whatever the batch size', async () => {
    const sample = prompts('harmless_test').slice(0, 20);
    const batched = await captureActivations(lastToken, tokenizer, sample, { batchSize: 7 });
    const single = await captureActivations(lastToken, tokenizer, sample, { batchSize: 1 });
    let worst = 0;
    for (let i = 0; i < single.activations!.length; i++) worst = Math.max(worst, Math.abs(single.activations![i] - batched.activations![i]));
    expect(worst).toBeLessThan(PADDING_TOLERANCE);
    // Sums are the float64 sum of the kept rows.
    const expected = new Float64Array(5 * 64);
    for (let prompt = 0; prompt < 20; prompt++) for (let k = 0; k < 5 * 64; k++) expected[k] += batched.activations![prompt * 5 * 64 + k];
    for (let k = 0; k < expected.length; k++) expect(batched.sums[k]).toBeCloseTo(expected[k], 9);
    expect(batched.tokenCounts).toEqual(sample.map((prompt) => tokenizer.encodeChat(prompt.messages).length));
  });

  it('captures positions from the start with right padding, and several positions at once', async () => {
    const sample = prompts('shell_nosys_test').slice(0, 8);
    const lengths = sample.map((prompt) => tokenizer.encodeChat(prompt.messages).length);
    const fromStart = await openCaptureSession(factory, { bytes: graphBytes, name: 'model.onnx' }, { positions: [1, 3] });
    const fromEnd = await openCaptureSession(factory, { bytes: graphBytes, name: 'model.onnx' }, { positions: [-2, -1] });
    try {
      const batched = await captureActivations(fromStart, tokenizer, sample, { batchSize: 8 });
      const single = await captureActivations(fromStart, tokenizer, sample, { batchSize: 1 });
      let worst = 0;
      for (let i = 0; i < single.activations!.length; i++) worst = Math.max(worst, Math.abs(single.activations![i] - batched.activations![i]));
      expect(worst).toBeLessThan(PADDING_TOLERANCE);
      const ends = await captureActivations(fromEnd, tokenizer, sample, { batchSize: 8 });
      // Position −1 of the two-position capture equals the default capture.
      const last = await captureActivations(lastToken, tokenizer, sample, { batchSize: 8 });
      const atMinusOne = activationsAtPosition(ends, 1);
      for (let i = 0; i < atMinusOne.length; i++) expect(Math.abs(atMinusOne[i] - last.activations![i])).toBeLessThan(PADDING_TOLERANCE);
      // Positions from the start against the independent forward, rows 1 and 3 of each (unpadded) prompt.
      const { config, weights } = await loadLlamaReference(toyDir);
      let forwardWorst = 0;
      for (const index of [0, 5]) {
        const forward = llamaReferenceForward(config, weights, tokenizer.encodeChat(sample[index].messages));
        [1, 3].forEach((position, positionIndex) => {
          for (let layer = 0; layer < 5; layer++) {
            const expected = forward.hiddenStates[layer].subarray(position * 64, (position + 1) * 64);
            const start = ((index * 2 + positionIndex) * 5 + layer) * 64;
            for (let k = 0; k < 64; k++) forwardWorst = Math.max(forwardWorst, Math.abs(batched.activations![start + k] - expected[k]));
          }
        });
      }
      expect(forwardWorst).toBeLessThan(FORWARD_TOLERANCE);
      expect(Math.min(...lengths)).toBeGreaterThan(3);
    } finally {
      await fromStart.release();
      await fromEnd.release();
    }
  });

  it('names the set, prompt and length of an out-of-range position', async () => {
    const short = [{ messages: [{ role: 'user' as const, content: 'hi' }] }];
    const length = tokenizer.encodeChat(short[0].messages).length;
    const far = await openCaptureSession(factory, { bytes: graphBytes, name: 'model.onnx' }, { positions: [-(length + 1)] });
    try {
      const run = captureActivations(far, tokenizer, short, { label: 'harmful' });
      await expect(run).rejects.toBeInstanceOf(InvalidInputError);
      await expect(run).rejects.toThrow(new RegExp(`token position -${length + 1} is outside harmful prompt 1 \\(${length} tokens`));
    } finally {
      await far.release();
    }
    await expect(openCaptureSession(factory, { bytes: graphBytes, name: 'model.onnx' }, { positions: [-1, 2] })).rejects.toThrow(/mix counting from the end/);
  });

  it('stops on abort and reports monotone progress ending in one done', async () => {
    const sample = prompts('harmful_val');
    const events: Progress[] = [];
    await captureActivations(lastToken, tokenizer, sample, { batchSize: 16, onProgress: (event) => events.push(event) });
    const fractions = events.flatMap((event) => (event.status === 'progress' ? [event.fraction] : []));
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
    expect(fractions.at(-1)).toBe(1);
    expect(events.filter((event) => event.status === 'done')).toHaveLength(1);
    expect(events.at(-1)?.status).toBe('done');

    const controller = new AbortController();
    const run = captureActivations(lastToken, tokenizer, sample, {
      batchSize: 4,
      signal: controller.signal,
      onProgress: (event) => {
        if (event.status === 'progress') controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
  });
});
