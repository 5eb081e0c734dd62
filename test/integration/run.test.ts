/**
 * `abliterate run` end-to-end on toy-llama (a model that learned to refuse), timed, then the acceptance check
 * on its held-out test prompts with `abliterate eval` and the recommended layer's direction; figures are
 * printed beside REFERENCE.json's (a PyTorch run of the same recipe).
 */
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOY_LLAMA_DIR } from '../helpers/fixtures';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TOY = TOY_LLAMA_DIR;

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/abliterate.mjs'), ...args], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'abliterate-run-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('abliterate run on toy-llama', () => {
  it('analyzes, recommends the reference layer, removes refusals, writes every output', async () => {
    const reference = JSON.parse(await readFile(path.join(TOY, 'REFERENCE.json'), 'utf8'));
    const out = path.join(work, 'out');
    const started = Date.now();
    const run = await runCli(['run', '--model', TOY, '--harmful', path.join(TOY, 'prompts/harmful_train.jsonl'), '--harmless', path.join(TOY, 'prompts/harmless_train.jsonl'), '--out', out]);
    const elapsed = Date.now() - started;
    expect(run.stderr).not.toMatch(/^abliterate run:/m);
    expect(run.code).toBe(0);

    // Outputs: complete folder, no partial left behind.
    expect((await readdir(out)).sort()).toEqual(['README.md', 'directions.safetensors', 'eval.json', 'model', 'plots', 'prompts', 'recipe.json', 'report.json', 'reproduce.sh', 'sweep.json']);
    await expect(access(`${out}.partial`)).rejects.toThrow();
    const modelFiles = await readdir(path.join(out, 'model'));
    expect(modelFiles).toEqual(expect.arrayContaining(['model.safetensors', 'config.json', 'tokenizer.json', 'abliteration.json']));

    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8'));
    expect(report.layers).toHaveLength(5);
    const evaluation = JSON.parse(await readFile(path.join(out, 'eval.json'), 'utf8'));
    const layer = evaluation.layer as number;
    expect(report.run.recommendedLayer).toBe(layer);
    // AUC saturates on layers 1–4, so the sweep decides; it lands where the reference's validation sweep did.
    expect(layer).toBe(reference.chosen_layer);
    expect(evaluation.layerSweep.rows.map((row: { layer: number }) => row.layer)).toEqual([1, 2, 3]);
    expect(evaluation.base.refusalRate).toBeGreaterThanOrEqual(0.9);
    expect(evaluation.ablated.refusalRate).toBeLessThanOrEqual(0.1);
    expect(evaluation.klFirstToken).toBeLessThanOrEqual(0.5);
    const manifest = JSON.parse(await readFile(path.join(out, 'model/abliteration.json'), 'utf8'));
    expect(manifest.direction.layer).toBe(layer);
    // The run card: the recipe and measured figures of this run, in the card and in the edited model's card.
    expect(JSON.parse(await readFile(path.join(out, 'recipe.json'), 'utf8'))).toEqual({ method: 'standard', direction: layer, projection: 'none', components: { embed: 1, attn: 1, mlp: 1 } });
    expect(JSON.parse(await readFile(path.join(out, 'sweep.json'), 'utf8'))).toEqual(evaluation.layerSweep);
    const percent = (rate: number) => `${(rate * 100).toFixed(1)} %`;
    const resultsRow = `| refusal rate | ${percent(evaluation.base.refusalRate)} | ${percent(evaluation.ablated.refusalRate)} | ${evaluation.counts.harmful} harmful |`;
    expect(await readFile(path.join(out, 'README.md'), 'utf8')).toContain(resultsRow);
    const modelCard = await readFile(path.join(out, 'model/README.md'), 'utf8');
    expect(modelCard).toContain(resultsRow);
    expect(modelCard.endsWith(await readFile(path.join(TOY, 'README.md'), 'utf8'))).toBe(true);
    expect(await readFile(path.join(out, 'reproduce.sh'), 'utf8')).toContain(`npx abliterate run --model ${TOY} --harmful "$RUN_CARD/prompts/harmful.jsonl" --harmless "$RUN_CARD/prompts/harmless.jsonl" --out "$RUN_CARD/reproduced"`);
    expect(run.stdout).toMatch(/recommended layer \d/);
    expect(run.stdout).toMatch(/files written/);

    // Acceptance on the fixture's own held-out test prompts, with the recommended row of directions.safetensors.
    const evalOut = path.join(work, 'test-eval.json');
    const test = await runCli([
      'eval', '--model', TOY, '--direction', path.join(out, 'directions.safetensors'), '--layer', String(layer),
      '--harmful', path.join(TOY, 'prompts/harmful_test.jsonl'), '--harmless', path.join(TOY, 'prompts/harmless_test.jsonl'), '--out', evalOut,
    ]);
    expect(test.code).toBe(0);
    const figures = JSON.parse(await readFile(evalOut, 'utf8'));
    expect(figures.base.refusalRate).toBeGreaterThanOrEqual(0.9);
    expect(figures.ablated.refusalRate).toBeLessThanOrEqual(0.1);
    expect(figures.klFirstToken).toBeLessThanOrEqual(0.5);
    console.info(
      `toy-llama: run ${(elapsed / 1000).toFixed(1)} s, layer ${layer} (reference ${reference.chosen_layer}); test prompts: refusal ` +
        `${figures.base.refusalRate.toFixed(2)} → ${figures.ablated.refusalRate.toFixed(2)} (reference ${reference.refusal_rate_before_test.harmful.toFixed(2)} → ` +
        `${reference.refusal_rate_after_test.harmful.toFixed(2)}), KL ${figures.klFirstToken.toFixed(4)} (reference ${reference.kl_first_token_harmless_test.toFixed(4)})`,
    );
  });

  it('refuses an existing non-empty output folder before doing any work', async () => {
    const out = path.join(work, 'out'); // written by the previous test
    const result = await runCli(['run', '--model', TOY, '--harmful', path.join(TOY, 'prompts/harmful_val.jsonl'), '--harmless', path.join(TOY, 'prompts/harmless_val.jsonl'), '--out', out]);
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(/out/);
  });
});
