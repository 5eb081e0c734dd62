/**
 * `abliterate eval` on the demo model (planted refusal: 100% → 0%), its error lines, and the equivalence the
 * whole evaluation rests on: the hook graph's first-token distributions equal those of the graph rebuilt from
 * `abliterate ablate`'s edited safetensors (the demo builder's buildDemoOnnx).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Progress } from '../../src/base/progress';
import { CancelledError } from '../../src/base/errors';
import { klDivergenceFromLogits } from '../../src/core/kl';
import { EvaluationSession } from '../../src/engine/evaluate';
import { LanguageModel, type Conversation } from '../../src/engine/generate';
import { readSafetensorsHeader, readTensorBytes } from '../../src/formats/safetensors';
import { buildDemoOnnx } from '../../scripts/demo/demo-model';
import { openFileSource, openNodeModelFolder } from '../../src/platform/node-files';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO = path.join(ROOT, 'public/models/demo');
const PROMPTS = path.join(ROOT, 'public/prompts');
/** Hook graph vs rebuilt edited weights: both float32 graphs, so only rounding order differs. */
const HOOK_EQUIVALENCE_KL_TOLERANCE = 1e-4;

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/abliterate.mjs'), ...args], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const readPrompts = async (file: string): Promise<Conversation[]> =>
  (await readFile(path.join(PROMPTS, file), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { prompt: string; system?: string })
    .map((row) => [...(row.system ? [{ role: 'system' as const, content: row.system }] : []), { role: 'user' as const, content: row.prompt }]);

let work: string;
let directionFile: string;
let planted: number[];

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'abliterate-eval-'));
  planted = (JSON.parse(await readFile(path.join(DEMO, 'planted_direction.json'), 'utf8')) as { direction: number[] }).direction;
  directionFile = path.join(work, 'planted.json');
  await writeFile(directionFile, JSON.stringify(planted));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('abliterate eval on the demo model', () => {
  it('takes the planted refusal from 100% to 0% with a small first-token KL, and writes the contract fields', async () => {
    const out = path.join(work, 'eval.json');
    const result = await runCli(['eval', '--model', DEMO, '--direction', directionFile, '--harmful', path.join(PROMPTS, 'harmful.test.jsonl'), '--harmless', path.join(PROMPTS, 'harmless.test.jsonl'), '--out', out]);
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(out, 'utf8'));
    expect(Object.keys(report)).toEqual(expect.arrayContaining(['base', 'ablated', 'klFirstToken', 'samples']));
    expect(report.base.refusalRate).toBe(1);
    expect(report.ablated.refusalRate).toBe(0);
    expect(report.klFirstToken).toBeGreaterThanOrEqual(0);
    expect(report.klFirstToken).toBeLessThan(0.5);
    expect(report.samples).toHaveLength(18);
    for (const sample of report.samples) {
      expect(sample.base.refused).toBe(true);
      expect(sample.base.matchedMarkers.length).toBeGreaterThan(0);
      expect(sample.ablated.refused).toBe(false);
    }
    // The per-prompt KL averages to klFirstToken (batchmean), recomputed here.
    const mean = report.klPerPrompt.reduce((sum: number, value: number) => sum + value, 0) / report.klPerPrompt.length;
    expect(mean).toBeCloseTo(report.klFirstToken, 12);
    expect(result.stdout).toMatch(/refusal rate\s+base 100\.0%\s+→\s+ablated 0\.0%/);
  });

  it('--recipe: the shorthand as a recipe gives the same eval.json; a norm-preserving recipe is recorded and removes the refusal', async () => {
    // A few prompts each: three evaluations run here.
    const subset = async (file: string, count: number) => {
      const target = path.join(work, `subset-${file}`);
      await writeFile(target, `${(await readFile(path.join(PROMPTS, file), 'utf8')).trim().split('\n').slice(0, count).join('\n')}\n`);
      return target;
    };
    const harmful = await subset('harmful.test.jsonl', 3);
    const harmless = await subset('harmless.test.jsonl', 2);
    const shorthandOut = path.join(work, 'eval-shorthand.json');
    await runCli(['eval', '--model', DEMO, '--direction', directionFile, '--harmful', harmful, '--harmless', harmless, '--max-new-tokens', '8', '--out', shorthandOut]);
    const run = async (name: string, recipe: unknown) => {
      const recipeFile = path.join(work, `${name}.recipe.json`);
      await writeFile(recipeFile, JSON.stringify(recipe));
      const out = path.join(work, `eval-${name}.json`);
      const result = await runCli(['eval', '--model', DEMO, '--direction', directionFile, '--recipe', recipeFile, '--harmful', harmful, '--harmless', harmless, '--max-new-tokens', '8', '--out', out]);
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(await readFile(out, 'utf8'));
    };
    const shorthand = JSON.parse(await readFile(shorthandOut, 'utf8'));
    const same = await run('standard', { direction: 0, components: { embed: 1, attn: 1, mlp: 1 } });
    expect(same.ablated.refusalRate).toBe(shorthand.ablated.refusalRate);
    expect(same.klFirstToken).toBeCloseTo(shorthand.klFirstToken, 5);
    expect(same.settings.recipe).toEqual({ method: 'standard', direction: 0, projection: 'none', components: { embed: 1, attn: 1, mlp: 1 } });
    const normPreserving = await run('norm-preserving', { method: 'norm-preserving', direction: 0, components: { embed: 1, attn: 1, mlp: 1 } });
    expect(normPreserving.settings.recipe.method).toBe('norm-preserving');
    expect(normPreserving.base.refusalRate).toBe(1);
    expect(normPreserving.ablated.refusalRate).toBe(0);
  });

  it('uses a configured marker list: with a marker the demo never says, nothing counts as a refusal', async () => {
    const markers = path.join(work, 'markers.txt');
    await writeFile(markers, 'xyzzy\n');
    const out = path.join(work, 'eval-markers.json');
    const result = await runCli(['eval', '--model', DEMO, '--direction', directionFile, '--harmful', path.join(PROMPTS, 'harmful.test.jsonl'), '--harmless', path.join(PROMPTS, 'harmless.test.jsonl'), '--markers', markers, '--max-new-tokens', '8', '--out', out]);
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(out, 'utf8'));
    expect(report.base.refusalRate).toBe(0);
    expect(report.settings.markers).toEqual(['xyzzy']);
  });

  it('fails with one clear line naming the file for bad inputs, and writes nothing', async () => {
    const out = path.join(work, 'never.json');
    const common = ['--harmful', path.join(PROMPTS, 'harmful.test.jsonl'), '--harmless', path.join(PROMPTS, 'harmless.test.jsonl'), '--out', out];
    const missing = await runCli(['eval', '--model', DEMO, '--direction', path.join(work, 'absent.json'), ...common]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/absent\.json/);
    const short = path.join(work, 'short.json');
    await writeFile(short, JSON.stringify([1, 0, 0]));
    const wrongLength = await runCli(['eval', '--model', DEMO, '--direction', short, ...common]);
    expect(wrongLength.code).not.toBe(0);
    expect(wrongLength.stderr).toMatch(/short\.json/);
    const long = path.join(work, 'long.txt');
    await writeFile(long, `${Array.from({ length: 600 }, () => 'please').join(' ')}\n`);
    const tooLong = await runCli(['eval', '--model', DEMO, '--direction', directionFile, '--harmful', long, '--harmless', path.join(PROMPTS, 'harmless.test.jsonl'), '--out', out]);
    expect(tooLong.code).not.toBe(0);
    expect(tooLong.stderr).toMatch(/long\.txt: prompt #1 is \d+ tokens long, but the model's context \(max_position_embeddings\) is 512 tokens/);
    await expect(readFile(out)).rejects.toThrow();
  });
});

describe('hook evaluation ≡ exported weights (demo model)', () => {
  it('gives the same first-token distributions as the graph rebuilt from abliterate ablate output', async () => {
    const edited = path.join(work, 'ablated-demo');
    const ablate = await runCli(['ablate', '--model', DEMO, '--direction', directionFile, '--out', edited]);
    expect(ablate.code).toBe(0);

    const config = JSON.parse(await readFile(path.join(edited, 'config.json'), 'utf8')) as Record<string, unknown>;
    const source = await openFileSource(path.join(edited, 'model.safetensors'));
    const header = await readSafetensorsHeader(source);
    const weights = new Map<string, Float32Array>();
    for (const tensor of header.tensors) {
      expect(tensor.dtype).toBe('F32');
      const bytes = await readTensorBytes(source, header, tensor.name);
      weights.set(tensor.name, new Float32Array(bytes.slice().buffer));
    }
    await source.close();
    const rebuilt = buildDemoOnnx(config, weights);

    const session = await EvaluationSession.open(await openNodeModelFolder(DEMO));
    const hooked = await session.loadAblated({ direction: Float32Array.from(planted), scale: 1, targets: ['embed', 'attn', 'mlp'] });
    const exported = await LanguageModel.load(await openNodeModelFolder(edited), session.tokenizer, { graph: rebuilt });
    try {
      const prompts = [...(await readPrompts('harmful.test.jsonl')), ...(await readPrompts('harmless.test.jsonl'))];
      const [hookLogits, exportedLogits, baseLogits] = await Promise.all([hooked.nextTokenLogits(prompts), exported.nextTokenLogits(prompts), session.base.nextTokenLogits(prompts)]);
      let worst = 0;
      let baseShift = 0;
      prompts.forEach((_, index) => {
        worst = Math.max(worst, klDivergenceFromLogits(hookLogits[index]!, exportedLogits[index]!), klDivergenceFromLogits(exportedLogits[index]!, hookLogits[index]!));
        baseShift = Math.max(baseShift, klDivergenceFromLogits(baseLogits[index]!, hookLogits[index]!));
      });
      expect(worst).toBeLessThan(HOOK_EQUIVALENCE_KL_TOLERANCE);
      // Not vacuous: the ablation moves the harmful prompts' first token a lot.
      expect(baseShift).toBeGreaterThan(1);
      // And greedy replies agree token for token.
      const sample = prompts.slice(0, 4);
      const [fromHooks, fromWeights] = await Promise.all([hooked.generateBatch(sample), exported.generateBatch(sample)]);
      expect(fromHooks.map((generation) => generation.tokenIds)).toEqual(fromWeights.map((generation) => generation.tokenIds));
    } finally {
      await hooked.dispose();
      await exported.dispose();
      await session.dispose();
    }
  });
});

describe('evaluation engine (as the eval panel calls it)', () => {
  it('reports progress that never goes back and ends each task with one done; a fired signal cancels', async () => {
    const session = await EvaluationSession.open(await openNodeModelFolder(DEMO));
    try {
      const prompts = { harmful: (await readPrompts('harmful.test.jsonl')).slice(0, 6), harmless: (await readPrompts('harmless.test.jsonl')).slice(0, 6) };
      const events: Progress[] = [];
      const report = await session.evaluate({ direction: Float32Array.from(planted), scale: 1, targets: ['embed', 'attn', 'mlp'] }, prompts, { maxNewTokens: 12, onProgress: (event) => events.push(event) });
      expect(report.ablated.refusalRate).toBe(0);
      const byTask = new Map<string, Progress[]>();
      for (const event of events) byTask.set(event.task, [...(byTask.get(event.task) ?? []), event]);
      for (const [task, taskEvents] of byTask) {
        expect(taskEvents[0]!.status, task).toBe('start');
        expect(taskEvents.filter((event) => event.status === 'done'), task).toHaveLength(1);
        expect(taskEvents.at(-1)!.status, task).toBe('done');
        const fractions = taskEvents.flatMap((event) => (event.status === 'progress' ? [event.fraction] : []));
        fractions.forEach((fraction, index) => {
          expect(fraction).toBeGreaterThanOrEqual(index > 0 ? fractions[index - 1]! : 0);
          expect(fraction).toBeLessThanOrEqual(1);
        });
      }

      const controller = new AbortController();
      const cancelled = session.evaluate({ direction: Float32Array.from(planted), scale: 1, targets: ['embed', 'attn', 'mlp'] }, { harmful: [...prompts.harmful], harmless: prompts.harmless }, {
        signal: controller.signal,
        onProgress: (event) => {
          if (event.status === 'progress' && event.fraction > 0) controller.abort();
        },
      });
      await expect(cancelled).rejects.toThrow(CancelledError);
    } finally {
      await session.dispose();
    }
  });
});
