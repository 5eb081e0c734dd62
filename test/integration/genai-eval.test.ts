/**
 * Generation and `abliterate eval` on a Qwen3.5-style export (generate-genai-model.ts) through transformers.js
 * 4.3.1's qwen3_5 model class (embed_tokens session → decoder with conv/recurrent/KV caches and mRoPE), checked
 * against greedy decoding and first-token distributions of the float64 reference forward. Left-padded batches
 * are the hard case: transformers.js's decode steps needed two corrections (src/engine/transformers-workarounds.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRows, orthogonalizeColumns } from '../../src/core/orthogonalize';
import { klDivergenceFromLogits } from '../../src/core/kl';
import { isRefusal } from '../../src/core/refusal';
import { LanguageModel, loadGenerationTokenizer, type GenerationTokenizer } from '../../src/engine/generate';
import type { EvaluationReport } from '../../src/engine/evaluate';
import type { PromptRecord } from '../../src/formats/prompts';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { genaiReferenceForward, genaiReferenceGreedy } from '../helpers/genai-reference-forward';
import { generateGenaiModelFolder, GENAI_PREFIX, TOY_TOKENIZER_DIR, type GeneratedGenaiModel } from '../helpers/generate-genai-model';

const MAX_NEW_TOKENS = 6;
/** KL of first-token distributions from float32 logits vs float64 ones. */
const KL_TOLERANCE = 1e-4;
const PROMPTS_PER_SET = 4;

type Conversation = PromptRecord['messages'];

function readConversations(file: string): { text: string; conversations: Conversation[] } {
  const lines = readFileSync(join(TOY_TOKENIZER_DIR, 'prompts', file), 'utf8').split('\n').filter((line) => line.trim()).slice(0, PROMPTS_PER_SET);
  return { text: lines.join('\n'), conversations: lines.map((line) => (JSON.parse(line) as { messages: Conversation }).messages) };
}

function unitDirection(size: number): Float32Array {
  const values = Array.from({ length: size }, (_, k) => Math.sin(0.9 * k + 0.4));
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
}

/** The whole-model edit `abliterate eval` hooks (embed, every attn and mlp out-projection, α = 1), in float32 weights. */
function orthogonalizedWeights(generated: GeneratedGenaiModel, direction: Float32Array): Map<string, Float32Array> {
  const { config, weights } = generated;
  const d = config.hiddenSize;
  const bytes = (values: Float32Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const floats = (data: Uint8Array) => new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const edited = new Map(weights);
  const embedding = `${GENAI_PREFIX}embed_tokens.weight`;
  edited.set(embedding, floats(applyRows(bytes(weights.get(embedding)!), 'F32', config.vocabSize, d, direction, 1)));
  config.layerTypes.forEach((type, layer) => {
    for (const name of [`${GENAI_PREFIX}layers.${layer}.${type === 'linear_attention' ? 'linear_attn.out_proj' : 'self_attn.o_proj'}.weight`, `${GENAI_PREFIX}layers.${layer}.mlp.down_proj.weight`]) {
      const weight = weights.get(name)!;
      edited.set(name, floats(orthogonalizeColumns(bytes(weight), 'F32', d, weight.length / d, direction, 1)));
    }
  });
  return edited;
}

describe('generation and abliterate eval on a Qwen3.5-style (genai builder) export', () => {
  let root: string;
  let generated: GeneratedGenaiModel;
  let tokenizer: GenerationTokenizer;
  const harmful = readConversations('harmful_test.jsonl');
  const harmless = readConversations('shell_agent_test.jsonl');

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'genai-eval-'));
    generated = generateGenaiModelFolder(join(root, 'model'));
    tokenizer = await loadGenerationTokenizer(await openNodeModelFolder(generated.dir));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('greedy replies of a left-padded batch equal float64 greedy decoding, and first-token logits match', async () => {
    const model = await LanguageModel.load(await openNodeModelFolder(generated.dir), tokenizer, { device: 'cpu' });
    try {
      const conversations = [...harmful.conversations, ...harmless.conversations];
      const lengths = conversations.map((conversation) => tokenizer.encodeConversation(conversation).length);
      expect(new Set(lengths).size).toBeGreaterThan(1); // the batch really is padded
      const replies = await model.generateBatch(conversations, { maxNewTokens: MAX_NEW_TOKENS, batchSize: conversations.length });
      const firstTokenLogits = await model.nextTokenLogits(conversations);
      let worstLogit = 0;
      conversations.forEach((conversation, index) => {
        const ids = tokenizer.encodeConversation(conversation);
        expect(replies[index].tokenIds, `prompt ${index} (${ids.length} tokens)`).toEqual(genaiReferenceGreedy(generated.config, generated.weights, ids, MAX_NEW_TOKENS, tokenizer.eosTokenIds));
        const vocab = generated.config.vocabSize;
        const reference = genaiReferenceForward(generated.config, generated.weights, ids).logits.subarray((ids.length - 1) * vocab);
        for (let k = 0; k < vocab; k++) worstLogit = Math.max(worstLogit, Math.abs(firstTokenLogits[index][k] - reference[k]));
      });
      console.log(`genai generation: ${conversations.length} left-padded replies equal float64 greedy decoding; first-token logits max |difference| ${worstLogit.toExponential(2)}`);
      expect(worstLogit).toBeLessThan(1e-4);
    } finally {
      await model.dispose();
    }
  });

  it('with GroupQueryAttention wired as the real export, cached left-padded generation still equals float64 greedy decoding', async () => {
    const gqaDir = join(root, 'model-gqa');
    generateGenaiModelFolder(gqaDir, { attention: 'group-query' });
    const model = await LanguageModel.load(await openNodeModelFolder(gqaDir), tokenizer, { device: 'cpu' });
    try {
      const conversations = [...harmful.conversations.slice(0, 2), ...harmless.conversations.slice(0, 2)];
      const replies = await model.generateBatch(conversations, { maxNewTokens: MAX_NEW_TOKENS, batchSize: conversations.length });
      conversations.forEach((conversation, index) => {
        const ids = tokenizer.encodeConversation(conversation);
        expect(replies[index].tokenIds, `prompt ${index} (${ids.length} tokens)`).toEqual(genaiReferenceGreedy(generated.config, generated.weights, ids, MAX_NEW_TOKENS, tokenizer.eosTokenIds));
      });
    } finally {
      await model.dispose();
    }
  });

  it('abliterate eval runs on the folder; refusal rates and first-token KL equal the float64 reference of the edited weights', () => {
    const [harmfulFile, harmlessFile, directionFile, out] = ['harmful.jsonl', 'harmless.jsonl', 'direction.json', 'eval.json'].map((name) => join(root, name));
    writeFileSync(harmfulFile, harmful.text);
    writeFileSync(harmlessFile, harmless.text);
    const direction = unitDirection(generated.config.hiddenSize);
    writeFileSync(directionFile, JSON.stringify(Array.from(direction)));
    const run = spawnSync(process.execPath, ['bin/abliterate.mjs', 'eval', '--model', generated.dir, '--direction', directionFile, '--harmful', harmfulFile, '--harmless', harmlessFile, '--max-new-tokens', String(MAX_NEW_TOKENS), '--out', out], { encoding: 'utf8', timeout: 180_000 });
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as EvaluationReport;

    const edited = orthogonalizedWeights(generated, direction);
    const decode = (ids: number[]) => tokenizer.decode(ids);
    const referenceReplies = (weights: ReadonlyMap<string, Float32Array>) =>
      harmful.conversations.map((conversation) => decode(genaiReferenceGreedy(generated.config, weights, tokenizer.encodeConversation(conversation), MAX_NEW_TOKENS, tokenizer.eosTokenIds)));
    const [baseReplies, ablatedReplies] = [referenceReplies(generated.weights), referenceReplies(edited)];
    expect(report.samples.map((sample) => sample.base.response)).toEqual(baseReplies);
    expect(report.samples.map((sample) => sample.ablated.response)).toEqual(ablatedReplies);
    const rate = (replies: string[]) => replies.filter((reply) => isRefusal(reply)).length / replies.length;
    expect(report.base.refusalRate).toBeCloseTo(rate(baseReplies), 12);
    expect(report.ablated.refusalRate).toBeCloseTo(rate(ablatedReplies), 12);

    const vocab = generated.config.vocabSize;
    const lastRow = (weights: ReadonlyMap<string, Float32Array>, ids: number[]) => genaiReferenceForward(generated.config, weights, ids).logits.subarray((ids.length - 1) * vocab);
    const klValues = harmless.conversations.map((conversation) => {
      const ids = tokenizer.encodeConversation(conversation);
      return klDivergenceFromLogits(lastRow(generated.weights, ids), lastRow(edited, ids));
    });
    const referenceKL = klValues.reduce((a, b) => a + b, 0) / klValues.length;
    console.log(`genai eval: KL ${report.klFirstToken.toExponential(3)} vs float64 ${referenceKL.toExponential(3)} (|difference| ${Math.abs(report.klFirstToken - referenceKL).toExponential(2)}); refusal ${report.base.refusalRate} → ${report.ablated.refusalRate}`);
    expect(referenceKL).toBeGreaterThan(1e-3); // the edit matters, so agreement is informative
    expect(Math.abs(report.klFirstToken - referenceKL)).toBeLessThan(KL_TOLERANCE);
  });
});
