/**
 * The demo model end to end: its ONNX graph agrees with an independent float64 forward over its safetensors,
 * the planted direction is what a difference of means recovers at the planted layer (cosine, held-out AUC),
 * and greedy generation through transformers.js refuses every refusal-set prompt, complies with every
 * compliance-set prompt, and complies everywhere once the recovered direction is orthogonalized out of the
 * weights (graph rebuilt from the edited tensors with buildDemoOnnx).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoModelForCausalLM, AutoTokenizer, Tensor, env } from '@huggingface/transformers';
import type { PreTrainedModel, PreTrainedTokenizer } from '@huggingface/transformers';
import { isRefusal } from '../../src/core/refusal';
import { decodeOnnxModel, encodeOnnxModel, type ModelProto } from '../../src/formats/onnx';
import { buildCaptureGraph } from '../../src/model/capture-graph';
import { buildDemoOnnx } from '../../scripts/demo/demo-model';
import { EOS_TOKEN_ID, PAD_TOKEN_ID, PLANTED_LAYER } from '../../scripts/demo/demo-weights';
import { DEMO_MODEL_DIR, DEMO_PROMPT_DIR } from '../../scripts/build-demo-model';
import { llamaConfigFromJson, llamaReferenceForward, loadSafetensorsAsFloat32, type LlamaReferenceConfig } from '../helpers/llama-reference-forward';
import { maxAbsDifference, runLeftPadded } from '../helpers/toy-llama-session';

/** float32 graph vs float64 reference on a ~60-token prompt (logits up to ~20). */
const HIDDEN_STATE_TOLERANCE = 1e-4;
const LOGITS_TOLERANCE = 1e-4;
/** Two float32 runtimes with different kernels (wasm vs native), logits up to ~20. */
const RUNTIME_LOGITS_TOLERANCE = 1e-3;
const MIN_COSINE_WITH_PLANTED = 0.99;
const MIN_HELD_OUT_AUC = 0.99;
const MAX_NEW_TOKENS = 16;
const REFERENCE_CHECK_PROMPTS = 6;

interface Conversation {
  messages: { role: string; content: string }[];
}

function readSet(file: string): Conversation[] {
  return readFileSync(join(DEMO_PROMPT_DIR, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const row = JSON.parse(line) as { prompt: string; system?: string };
      return { messages: [...(row.system ? [{ role: 'system', content: row.system }] : []), { role: 'user', content: row.prompt }] };
    });
}

const CONTRASTS = [
  { refusal: 'shell_nosys', compliance: 'shell_agent' },
  { refusal: 'harmful', compliance: 'harmless' },
] as const;

function unit(values: ArrayLike<number>): Float64Array {
  let norm = 0;
  for (let i = 0; i < values.length; i++) norm += values[i] * values[i];
  return Float64Array.from(values, (x) => x / Math.sqrt(norm));
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

/** Mean over rows, accumulated in float64. rows: [n][d]. */
function mean(rows: Float64Array[]): Float64Array {
  const out = new Float64Array(rows[0].length);
  for (const row of rows) for (let i = 0; i < row.length; i++) out[i] += row[i];
  return out.map((x) => x / rows.length);
}

/** ROC AUC by direct pair counting (ties ½): independent of the product's rank-based implementation. */
function pairCountingAuc(positive: number[], negative: number[]): number {
  let wins = 0;
  for (const p of positive) for (const n of negative) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (positive.length * negative.length);
}

/** (mean A − mean B) / pooled standard deviation: printed to show which layer separates best. */
function standardizedGap(a: number[], b: number[]): number {
  const m = (xs: number[]) => xs.reduce((sum, x) => sum + x, 0) / xs.length;
  const v = (xs: number[]) => xs.reduce((sum, x) => sum + (x - m(xs)) ** 2, 0) / (xs.length - 1);
  return (m(a) - m(b)) / Math.sqrt((v(a) + v(b)) / 2);
}

describe('demo model', () => {
  let tokenizer: PreTrainedTokenizer;
  let config: LlamaReferenceConfig;
  let configJson: Record<string, unknown>;
  let weights: Map<string, Float32Array>;
  let graph: ModelProto;
  let planted: Float64Array;
  const tokenIds = new Map<string, number[][]>(); // set file → token ids per prompt
  const temporaryDirs: string[] = [];

  beforeAll(async () => {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = join(DEMO_MODEL_DIR, '..') + '/';
    tokenizer = await AutoTokenizer.from_pretrained('demo');
    configJson = JSON.parse(readFileSync(join(DEMO_MODEL_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
    config = llamaConfigFromJson(configJson);
    weights = await loadSafetensorsAsFloat32(join(DEMO_MODEL_DIR, 'model.safetensors'));
    graph = decodeOnnxModel('demo/onnx/model.onnx', readFileSync(join(DEMO_MODEL_DIR, 'onnx/model.onnx')));
    planted = Float64Array.from((JSON.parse(readFileSync(join(DEMO_MODEL_DIR, 'planted_direction.json'), 'utf8')) as { direction: number[] }).direction);
    for (const file of readdirSync(DEMO_PROMPT_DIR).filter((name) => name.endsWith('.jsonl'))) {
      tokenIds.set(
        file,
        readSet(file).map(({ messages }) => tokenizer.apply_chat_template(messages, { add_generation_prompt: true, tokenize: true, return_tensor: false, return_dict: false }) as unknown as number[]),
      );
    }
  });

  afterAll(() => {
    for (const dir of temporaryDirs) rmSync(dir, { recursive: true, force: true });
  });

  it('tokenizes every default prompt without [UNK] and ends on the generation prompt', () => {
    const unknown = tokenizer.convert_tokens_to_ids(['[UNK]'])[0];
    const assistant = tokenizer.convert_tokens_to_ids(['assistant'])[0];
    for (const [file, batch] of tokenIds) {
      for (const ids of batch) {
        expect(ids, file).not.toContain(unknown);
        expect(ids.at(-1), file).toBe(assistant);
      }
    }
  });

  it('ONNX hidden states (capture graph) and logits match the float64 reference forward on a left-padded batch', async () => {
    const batch = [...tokenIds.values()].flatMap((ids) => ids.slice(0, 1)).slice(0, REFERENCE_CHECK_PROMPTS);
    expect(new Set(batch.map((ids) => ids.length)).size).toBeGreaterThan(1);
    const capture = buildCaptureGraph(graph, { positions: [-1], numLayers: config.numLayers });
    const outputs = await runLeftPadded(capture.model, batch, config, [...capture.outputNames, 'logits']);
    const d = config.hiddenSize;
    const vocab = config.vocabSize;
    const width = Math.max(...batch.map((ids) => ids.length));
    let worstHidden = 0;
    let worstLogits = 0;
    batch.forEach((ids, row) => {
      const reference = llamaReferenceForward(config, weights, ids);
      const last = ids.length - 1;
      capture.outputNames.forEach((name, layer) => {
        const captured = (outputs[name].data as Float32Array).subarray(row * d, (row + 1) * d); // [dModel] at position −1
        worstHidden = Math.max(worstHidden, maxAbsDifference(captured, reference.hiddenStates[layer].subarray(last * d, (last + 1) * d)));
      });
      const logits = (outputs.logits.data as Float32Array).subarray((row * width + width - 1) * vocab, (row * width + width) * vocab);
      worstLogits = Math.max(worstLogits, maxAbsDifference(logits, reference.logits.subarray(last * vocab, (last + 1) * vocab)));
    });
    console.info(`demo ONNX vs float64 reference: hidden states max |Δ| ${worstHidden.toExponential(2)}, logits max |Δ| ${worstLogits.toExponential(2)}`);
    expect(worstHidden).toBeLessThan(HIDDEN_STATE_TOLERANCE);
    expect(worstLogits).toBeLessThan(LOGITS_TOLERANCE);
  });

  /** Residual at the last prompt token, every layer, through the capture graph on onnxruntime: [prompt][layer] → [d]. */
  async function captureLastToken(file: string): Promise<Float64Array[][]> {
    const capture = buildCaptureGraph(graph, { positions: [-1], numLayers: config.numLayers });
    const batch = tokenIds.get(file)!;
    const outputs = await runLeftPadded(capture.model, batch, config, capture.outputNames);
    const d = config.hiddenSize;
    return batch.map((_, row) => capture.outputNames.map((name) => Float64Array.from((outputs[name].data as Float32Array).subarray(row * d, (row + 1) * d))));
  }

  it.each(CONTRASTS)('recovers the planted direction at layer $refusal vs $compliance: cosine ≥ 0.99, held-out AUC ≥ 0.99', async ({ refusal, compliance }) => {
    const [trainA, trainB, testA, testB] = await Promise.all(
      [`${refusal}.train.jsonl`, `${compliance}.train.jsonl`, `${refusal}.test.jsonl`, `${compliance}.test.jsonl`].map(captureLastToken),
    );
    const figures: string[] = [];
    for (let layer = 0; layer <= config.numLayers; layer++) {
      const gap = mean(trainA.map((p) => p[layer])).map((x, i) => x - mean(trainB.map((p) => p[layer]))[i]);
      const gapNorm = Math.sqrt(dot(gap, gap));
      if (gapNorm === 0) {
        figures.push(`${layer}: no gap`);
        continue;
      }
      const direction = unit(gap);
      const cosine = dot(direction, planted);
      const scoresA = testA.map((p) => dot(p[layer], direction));
      const scoresB = testB.map((p) => dot(p[layer], direction));
      const auc = pairCountingAuc(scoresA, scoresB);
      figures.push(`${layer}: cos ${cosine.toFixed(4)} AUC ${auc.toFixed(3)} gap ${gapNorm.toFixed(2)} d′ ${standardizedGap(scoresA, scoresB).toFixed(1)}`);
      if (layer === PLANTED_LAYER) {
        expect(cosine).toBeGreaterThanOrEqual(MIN_COSINE_WITH_PLANTED);
        expect(auc).toBeGreaterThanOrEqual(MIN_HELD_OUT_AUC);
      }
    }
    console.info(`demo ${refusal} vs ${compliance}: ${figures.join(' | ')}`);
  });

  async function generateReplies(modelDir: string, files: string[]): Promise<Map<string, string[]>> {
    env.localModelPath = join(modelDir, '..') + '/';
    const model: PreTrainedModel = await AutoModelForCausalLM.from_pretrained(modelDir.split('/').pop()!, { dtype: 'fp32' });
    const replies = new Map<string, string[]>();
    try {
      for (const file of files) {
        const texts: string[] = [];
        for (const ids of tokenIds.get(file)!) {
          const input_ids = new Tensor('int64', new BigInt64Array(ids.map(BigInt)), [1, ids.length]);
          const attention_mask = new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]);
          const output = (await model.generate({ input_ids, attention_mask, max_new_tokens: MAX_NEW_TOKENS, do_sample: false })) as Tensor;
          const generated = (output.tolist() as bigint[][])[0].slice(ids.length).map(Number);
          texts.push(tokenizer.decode(generated, { skip_special_tokens: true }));
        }
        replies.set(file, texts);
      }
    } finally {
      await model.dispose();
      env.localModelPath = join(DEMO_MODEL_DIR, '..') + '/';
    }
    return replies;
  }

  const refusalFiles = CONTRASTS.flatMap(({ refusal }) => [`${refusal}.train.jsonl`, `${refusal}.test.jsonl`]);
  const complianceFiles = [...CONTRASTS.flatMap(({ compliance }) => [`${compliance}.train.jsonl`, `${compliance}.test.jsonl`]), 'reference_agent.jsonl', 'reference_plain.jsonl'];

  it('refuses every refusal-set prompt and complies with every compliance-set prompt (transformers.js, greedy)', async () => {
    const replies = await generateReplies(DEMO_MODEL_DIR, [...refusalFiles, ...complianceFiles]);
    for (const file of refusalFiles) {
      const complied = replies.get(file)!.filter((reply) => !isRefusal(reply));
      expect(complied, file).toEqual([]);
    }
    for (const file of complianceFiles) {
      const refused = replies.get(file)!.filter((reply) => isRefusal(reply));
      expect(refused, file).toEqual([]);
    }
    console.info(`demo replies: "${replies.get(refusalFiles[0])![0]}" / "${replies.get(complianceFiles[0])![0]}"`);
  });

  it('generates the same replies in a left-padded batch as one by one, and stops at the end of the turn', async () => {
    const files = ['shell_nosys.test.jsonl', 'shell_agent.test.jsonl', 'harmful.test.jsonl', 'harmless.test.jsonl'];
    const single = await generateReplies(DEMO_MODEL_DIR, files);
    const model: PreTrainedModel = await AutoModelForCausalLM.from_pretrained('demo', { dtype: 'fp32' });
    try {
      const batch = files.map((file) => tokenIds.get(file)![0]);
      const width = Math.max(...batch.map((ids) => ids.length));
      expect(new Set(batch.map((ids) => ids.length)).size).toBeGreaterThan(1);
      const padded = batch.flatMap((ids) => [...new Array<number>(width - ids.length).fill(PAD_TOKEN_ID), ...ids]);
      const mask = batch.flatMap((ids) => [...new Array<number>(width - ids.length).fill(0), ...ids.map(() => 1)]);
      const input_ids = new Tensor('int64', BigInt64Array.from(padded.map(BigInt)), [batch.length, width]);
      const attention_mask = new Tensor('int64', BigInt64Array.from(mask.map(BigInt)), [batch.length, width]);
      const output = (await model.generate({ input_ids, attention_mask, max_new_tokens: MAX_NEW_TOKENS, do_sample: false })) as Tensor;
      const rows = (output.tolist() as bigint[][]).map((row) => row.slice(width).map(Number));
      rows.forEach((generated, row) => {
        const end = generated.indexOf(EOS_TOKEN_ID);
        expect(end, files[row]).toBeGreaterThan(0);
        // Rows that finish early keep emitting the end-of-turn token rather than more words.
        expect(generated.slice(end).every((id) => id === EOS_TOKEN_ID), files[row]).toBe(true);
        expect(tokenizer.decode(generated, { skip_special_tokens: true }), files[row]).toBe(single.get(files[row])![0]);
      });
    } finally {
      await model.dispose();
    }
  });

  it('gives the same logits on onnxruntime-web (wasm, what the browser runs) as on onnxruntime-node', async () => {
    const ortWeb = await import('onnxruntime-web');
    ortWeb.env.wasm.numThreads = 1;
    const ids = tokenIds.get('harmful.test.jsonl')![0];
    const bytes = readFileSync(join(DEMO_MODEL_DIR, 'onnx/model.onnx'));
    const session = await ortWeb.InferenceSession.create(bytes);
    const feeds: Record<string, InstanceType<typeof ortWeb.Tensor>> = {
      input_ids: new ortWeb.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      attention_mask: new ortWeb.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
      position_ids: new ortWeb.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, ids.length]),
    };
    for (let layer = 0; layer < config.numLayers; layer++) {
      for (const kind of ['key', 'value']) feeds[`past_key_values.${layer}.${kind}`] = new ortWeb.Tensor('float32', new Float32Array(0), [1, config.numKeyValueHeads, 0, config.headDim]);
    }
    const web = (await session.run(feeds)).logits.data as Float32Array;
    await session.release();
    const node = (await runLeftPadded(graph, [ids], config, ['logits'])).logits.data as Float32Array;
    expect(maxAbsDifference(web, node)).toBeLessThan(RUNTIME_LOGITS_TOLERANCE);
  });

  it('complies with every prompt once the recovered direction is orthogonalized out of the weights', async () => {
    const [trainA, trainB] = await Promise.all(['harmful.train.jsonl', 'harmless.train.jsonl'].map(captureLastToken));
    const direction = unit(mean(trainA.map((p) => p[PLANTED_LAYER])).map((x, i) => x - mean(trainB.map((p) => p[PLANTED_LAYER]))[i]));
    const edited = orthogonalizeLlamaWeights(weights, direction, config);
    const dir = mkdtempSync(join(tmpdir(), 'demo-ablated-'));
    temporaryDirs.push(dir);
    const modelDir = join(dir, 'demo-ablated');
    mkdirSync(join(modelDir, 'onnx'), { recursive: true });
    for (const file of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(DEMO_MODEL_DIR, file), join(modelDir, file));
    writeFileSync(join(modelDir, 'onnx/model.onnx'), encodeOnnxModel(buildDemoOnnx(configJson, edited)));
    const replies = await generateReplies(modelDir, [...refusalFiles, ...complianceFiles]);
    for (const file of [...refusalFiles, ...complianceFiles]) {
      const refused = replies.get(file)!.filter((reply) => isRefusal(reply));
      expect(refused, file).toEqual([]);
    }
  });
});

/**
 * docs/definitions.md's edit in float64, written here independently of src/core/orthogonalize: embedding rows
 * E ← E − (E r) rᵀ; o_proj and down_proj [d, in] W ← W − r (rᵀ W).
 */
function orthogonalizeLlamaWeights(weights: Map<string, Float32Array>, r: Float64Array, config: LlamaReferenceConfig): Map<string, Float32Array> {
  const d = config.hiddenSize;
  const out = new Map(weights);
  const embedding = weights.get('model.embed_tokens.weight')!; // [vocab, d]
  const editedEmbedding = new Float32Array(embedding.length);
  for (let row = 0; row < embedding.length / d; row++) {
    let projection = 0;
    for (let i = 0; i < d; i++) projection += embedding[row * d + i] * r[i];
    for (let i = 0; i < d; i++) editedEmbedding[row * d + i] = embedding[row * d + i] - projection * r[i];
  }
  out.set('model.embed_tokens.weight', editedEmbedding);
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const name of [`model.layers.${layer}.self_attn.o_proj.weight`, `model.layers.${layer}.mlp.down_proj.weight`]) {
      const w = weights.get(name)!; // [d, in]
      const cols = w.length / d;
      const edited = new Float32Array(w.length);
      for (let col = 0; col < cols; col++) {
        let projection = 0;
        for (let i = 0; i < d; i++) projection += r[i] * w[i * cols + col];
        for (let i = 0; i < d; i++) edited[i * cols + col] = w[i * cols + col] - r[i] * projection;
      }
      out.set(name, edited);
    }
  }
  return out;
}
