/**
 * Analysis on toy-llama against its PyTorch REFERENCE.json: per-layer AUC (direction from train, AUC on test),
 * mean-gap norms, projection means and the chosen layer's direction; then `abliterate analyze` end to end and
 * its error cases.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosineSimilarity, euclideanNorm } from '../../src/core/statistics';
import { analyzeCaptures } from '../../src/engine/analyze';
import { captureActivations, openCaptureSession, type CaptureResult } from '../../src/engine/capture';
import { loadChatTokenizer } from '../../src/engine/tokenize';
import { parseDirectionFile } from '../../src/formats/direction-file';
import { encodeOnnxModel, onnx, tensorValueInfo } from '../../src/formats/onnx';
import { parsePromptFile } from '../../src/formats/prompts';
import { parseReport } from '../../src/formats/report';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { createNodeSessionFactory } from '../../src/platform/ort-node';
import { TOY_LLAMA_DIR } from '../helpers/fixtures';

const toyDir = TOY_LLAMA_DIR;
const promptsDir = `${toyDir}/prompts`;
/** The tolerance for per-layer AUC against REFERENCE.json. */
const AUC_TOLERANCE = 0.02;
/** Means of float32 activations, ORT vs PyTorch: agreement to ~1e-5 relative; allow 1e-3. */
const MEAN_RELATIVE_TOLERANCE = 1e-3;

interface ReferenceLayer {
  index: number;
  diff_norm: number;
  auc_test: number;
  auc_train: number;
  proj_mean_harmful_test?: number;
  proj_mean_harmless_test?: number;
}
const reference = JSON.parse(readFileSync(`${toyDir}/REFERENCE.json`, 'utf8')) as { per_layer: ReferenceLayer[]; chosen_layer: number; direction: number[] };
const prompts = (name: string) => parsePromptFile(`${name}.jsonl`, readFileSync(`${promptsDir}/${name}.jsonl`, 'utf8'));

/** Concatenates a train and a test capture so the analysis can take the fixture's own split. */
function concatenate(train: CaptureResult, test: CaptureResult): CaptureResult {
  const activations = new Float32Array(train.activations!.length + test.activations!.length);
  activations.set(train.activations!);
  activations.set(test.activations!, train.activations!.length);
  const sums = train.sums.map((value, index) => value + test.sums[index]);
  return { ...train, promptCount: train.promptCount + test.promptCount, activations, sums, tokenCounts: [...train.tokenCounts, ...test.tokenCounts] };
}

const range = (start: number, end: number) => Array.from({ length: end - start }, (_, i) => start + i);

describe("REFERENCE.json's protocol: direction from train, AUC on test", () => {
  let outcome: ReturnType<typeof analyzeCaptures>;
  beforeAll(async () => {
    const capture = await openCaptureSession(createNodeSessionFactory({ threads: 2 }), { bytes: readFileSync(`${toyDir}/onnx/model.onnx`), name: 'model.onnx' });
    const tokenizer = await loadChatTokenizer(await openNodeModelFolder(toyDir));
    try {
      const run = (name: string) => captureActivations(capture, tokenizer, prompts(name), { label: name, batchSize: 32 });
      const harmful = concatenate(await run('harmful_train'), await run('harmful_test'));
      const harmless = concatenate(await run('harmless_train'), await run('harmless_test'));
      outcome = analyzeCaptures({
        harmful,
        harmless,
        split: { harmful: { train: range(0, 400), heldOut: range(400, 500) }, harmless: { train: range(0, 400), heldOut: range(400, 500) } },
      });
    } finally {
      await capture.release();
    }
  });

  it('matches the per-layer AUC (test and train) within 0.02', () => {
    expect(outcome.analysis.layers).toHaveLength(reference.per_layer.length);
    for (const expected of reference.per_layer) {
      const layer = outcome.analysis.layers[expected.index];
      expect(Math.abs(layer.auc - expected.auc_test)).toBeLessThanOrEqual(AUC_TOLERANCE);
      expect(Math.abs(layer.aucTrain - expected.auc_train)).toBeLessThanOrEqual(AUC_TOLERANCE);
    }
    expect(outcome.analysis.layers[0].degenerate).toBe(true);
  });

  it('matches the mean-gap norms, the held-out projection means and the chosen direction', () => {
    for (const expected of reference.per_layer) {
      const layer = outcome.analysis.layers[expected.index];
      expect(Math.abs(layer.meanGapNorm - expected.diff_norm)).toBeLessThanOrEqual(MEAN_RELATIVE_TOLERANCE * Math.max(1, expected.diff_norm));
      if (expected.proj_mean_harmful_test === undefined || expected.proj_mean_harmless_test === undefined) continue;
      const mean = (values: Float64Array) => values.reduce((a, b) => a + b, 0) / values.length;
      expect(Math.abs(mean(layer.projections.heldOutHarmful) - expected.proj_mean_harmful_test)).toBeLessThan(MEAN_RELATIVE_TOLERANCE * 15);
      expect(Math.abs(mean(layer.projections.heldOutHarmless) - expected.proj_mean_harmless_test)).toBeLessThan(MEAN_RELATIVE_TOLERANCE * 15);
    }
    // REFERENCE.json stores the chosen layer's direction rounded to 7 decimals.
    expect(cosineSimilarity(outcome.directions[reference.chosen_layer], reference.direction)).toBeGreaterThan(0.99999);
  });
});

function runCli(args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/abliterate.mjs', 'analyze', ...args], { cwd: process.cwd(), encoding: 'utf8', timeout: 240_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The single error line `main` prints: "abliterate analyze: <file>: <problem>". */
function errorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((line) => line.startsWith('abliterate analyze:'));
  expect(lines).toHaveLength(1);
  return lines[0];
}

describe('abliterate analyze', () => {
  const work = mkdtempSync(join(tmpdir(), 'analyze-cli-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const base = ['--model', toyDir, '--harmful', `${promptsDir}/harmful_train.jsonl`, '--harmless', `${promptsDir}/harmless_train.jsonl`];

  it('writes report.json and directions.safetensors per the contract, AUC within 0.02 of REFERENCE.json', () => {
    const out = join(work, 'ok');
    const result = runCli([...base, '--reference-a', `${promptsDir}/shell_nosys_train.jsonl`, '--reference-b', `${promptsDir}/shell_agent_train.jsonl`, '--position', '-1', '--batch-size', '32', '--out', out]);
    expect(result.stderr).toMatch(/capture harmful: done/);
    expect(result.status).toBe(0);
    expect(existsSync(`${out}.partial`)).toBe(false);
    const report = parseReport(`${out}/report.json`, readFileSync(`${out}/report.json`, 'utf8'));
    expect(report).toMatchObject({ hiddenSize: 64, numLayers: 4, position: -1, counts: { harmful: 400, harmless: 400, heldOut: 200 } });
    for (const expected of reference.per_layer) {
      expect(Math.abs(report.layers[expected.index].auc - expected.auc_test)).toBeLessThanOrEqual(AUC_TOLERANCE);
    }
    // AUC saturates on layers 1–3: the recommended layer comes from the d′ tie-break, inside [0.2 L, 0.9 L].
    expect([1, 2, 3]).toContain(report.bestLayer);
    const best = report.layers[report.bestLayer];
    expect(best.dPrime as number).toBe(Math.max(...[1, 2, 3].map((index) => report.layers[index].dPrime as number)));
    expect(report.layers[2].cosineReference).toBeGreaterThan(0.5);
    expect(report.layers[0].cosineReference).toBeNull();

    const directions = parseDirectionFile(`${out}/directions.safetensors`, new Uint8Array(readFileSync(`${out}/directions.safetensors`)));
    expect(directions.perLayer).toBe(true);
    expect(directions.rows).toHaveLength(5);
    expect(directions.rows.every((row) => row.length === 64)).toBe(true);
    expect(euclideanNorm(directions.rows[0])).toBe(0); // no direction at the embedding output (every prompt ends in "assistant")
    for (const row of directions.rows.slice(1)) expect(euclideanNorm(row)).toBeCloseTo(1, 6);
    // 75 % of train vs all of train: the same direction.
    expect(cosineSimilarity(directions.rows[reference.chosen_layer], reference.direction)).toBeGreaterThan(0.99);
  });

  it('refuses a folder without an ONNX graph', () => {
    const model = join(work, 'no-onnx');
    mkdirSync(model);
    for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(`${toyDir}/${file}`, join(model, file));
    const result = runCli(['--model', model, '--harmful', `${promptsDir}/harmful_val.jsonl`, '--harmless', `${promptsDir}/harmless_val.jsonl`, '--out', join(work, 'out-no-onnx')]);
    expect(result.status).not.toBe(0);
    expect(errorLine(result.stderr)).toMatch(/no-onnx\/onnx: no ONNX graph found/);
    expect(existsSync(join(work, 'out-no-onnx.partial'))).toBe(false);
  });

  it('refuses an empty prompt file, naming it', () => {
    const empty = join(work, 'empty.jsonl');
    writeFileSync(empty, '\n\n');
    const result = runCli(['--model', toyDir, '--harmful', empty, '--harmless', `${promptsDir}/harmless_val.jsonl`, '--out', join(work, 'out-empty')]);
    expect(result.status).not.toBe(0);
    expect(errorLine(result.stderr)).toBe(`abliterate analyze: ${empty}: contains no prompts (the file is empty or blank)`);
  });

  it('refuses a graph whose residual stream it cannot find', () => {
    const model = join(work, 'unknown-style');
    mkdirSync(join(model, 'onnx'), { recursive: true });
    for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(`${toyDir}/${file}`, join(model, file));
    // A valid graph with no embedding and no residual adds: input_ids → Identity → logits.
    const graph = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'not-a-transformer',
        node: [{ opType: 'Identity', name: 'copy', input: ['input_ids'], output: ['logits'] }],
        input: [tensorValueInfo('input_ids', 7, ['batch_size', 'sequence_length'])],
        output: [tensorValueInfo('logits', 7, ['batch_size', 'sequence_length'])],
      },
    });
    writeFileSync(join(model, 'onnx', 'model.onnx'), encodeOnnxModel(graph));
    const result = runCli(['--model', model, '--harmful', `${promptsDir}/harmful_val.jsonl`, '--harmless', `${promptsDir}/harmless_val.jsonl`, '--out', join(work, 'out-style')]);
    expect(result.status).not.toBe(0);
    expect(errorLine(result.stderr)).toMatch(/no embedding output found/);
    expect(existsSync(join(work, 'out-style.partial'))).toBe(false);
    expect(existsSync(join(work, 'out-style'))).toBe(false);
  });

  it('refuses a position outside a prompt, naming the set, prompt and length', () => {
    const result = runCli([...base.slice(0, 2), '--harmful', `${promptsDir}/harmful_val.jsonl`, '--harmless', `${promptsDir}/harmless_val.jsonl`, '--position', '-100', '--out', join(work, 'out-position')]);
    expect(result.status).not.toBe(0);
    expect(errorLine(result.stderr)).toMatch(/token position -100 is outside harmful prompt \d+ \(\d+ tokens after the chat template, the shortest of the set\); positions from -\d+ to -1/);
    expect(existsSync(join(work, 'out-position.partial'))).toBe(false);
  });

  it('refuses half a reference pair and a non-empty output folder', () => {
    const half = runCli([...base, '--reference-a', `${promptsDir}/shell_nosys_val.jsonl`, '--out', join(work, 'out-half')]);
    expect(half.status).not.toBe(0);
    expect(errorLine(half.stderr)).toMatch(/--reference-a and --reference-b go together/);
    const occupied = join(work, 'occupied');
    mkdirSync(occupied);
    writeFileSync(join(occupied, 'keep.txt'), 'x');
    const result = runCli([...base.slice(0, 2), '--harmful', `${promptsDir}/harmful_val.jsonl`, '--harmless', `${promptsDir}/harmless_val.jsonl`, '--out', occupied]);
    expect(result.status).not.toBe(0);
    expect(errorLine(result.stderr)).toMatch(/already exists and is not empty/);
    expect(readFileSync(join(occupied, 'keep.txt'), 'utf8')).toBe('x');
  });

  it('prints its help', () => {
    const result = runCli(['--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/--reference-direction FILE/);
    expect(result.stdout).toMatch(/--position N/);
  });
});
