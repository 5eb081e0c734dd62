/**
 * `abliterate optimize` end to end on the demo model: the contract's files (trials.jsonl one line per trial,
 * pareto.json = the non-dominated trials in ascending refusal rate, report.json, directions.safetensors),
 * --resume continuing the numbering, --agent's per-trial action rate (checked against `eval --recipe --agent`,
 * which bakes the recipe into its own graph), and the bad-input lines (no output left behind).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRecipe } from '../../src/core/recipe';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO = path.join(ROOT, 'public/models/demo');
const PROMPTS = path.join(ROOT, 'public/prompts');
const TOY = path.join(ROOT, 'test/fixtures/toy-llama');
const TOY_PROMPTS = path.join(TOY, 'prompts');
const base = ['optimize', '--model', DEMO, '--harmful', path.join(PROMPTS, 'shell_nosys.train.jsonl'), '--harmless', path.join(PROMPTS, 'shell_agent.train.jsonl'), '--max-new-tokens', '16'];

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/abliterate.mjs'), ...args], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

interface Trial {
  trial: number;
  recipe: unknown;
  refusalRate: number;
  klFirstToken: number;
  pruned: boolean;
  actionRate?: number | null;
}

const readTrials = async (dir: string): Promise<Trial[]> =>
  (await readFile(path.join(dir, 'trials.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Trial);

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'abliterate-optimize-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('abliterate optimize', () => {
  it('writes trials.jsonl, pareto.json (the non-dominated trials, ascending refusal) and report.json; --resume continues', async () => {
    const out = path.join(work, 'search');
    const first = await runCli([...base, '--trials', '4', '--out', out]);
    expect(first.stderr).not.toMatch(/Error|abliterate optimize:/);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/Pareto trials/);
    const trials = await readTrials(out);
    expect(trials.map((trial) => trial.trial)).toEqual([0, 1, 2, 3]);
    for (const trial of trials) {
      expect(parseRecipe(trial.recipe)).toBeTruthy();
      expect(trial.refusalRate).toBeGreaterThanOrEqual(0);
      expect(trial.refusalRate).toBeLessThanOrEqual(1);
      expect(trial.klFirstToken).toBeGreaterThanOrEqual(0);
    }
    // The front by the definition, checked pair by pair here.
    const dominated = (a: Trial, b: Trial) => b.refusalRate <= a.refusalRate && b.klFirstToken <= a.klFirstToken && (b.refusalRate < a.refusalRate || b.klFirstToken < a.klFirstToken);
    const expected = trials.filter((a) => !trials.some((b) => dominated(a, b))).map((trial) => trial.trial);
    const pareto = JSON.parse(await readFile(path.join(out, 'pareto.json'), 'utf8')) as { trials: Trial[] };
    expect(pareto.trials.map((trial) => trial.trial).sort()).toEqual(expected.sort());
    const rates = pareto.trials.map((trial) => trial.refusalRate);
    expect(rates).toEqual([...rates].sort((a, b) => a - b));
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as { layers: unknown[]; optimize: { trials: number } };
    expect(report.layers.length).toBeGreaterThan(1);
    expect(report.optimize.trials).toBe(4);
    await access(path.join(out, 'directions.safetensors'));
    // The run card beside them: the chosen trial's recipe, its figures in the model card, the command.
    const chosen = (report as unknown as { optimize: { chosen: { trial: number; recipe: unknown; refusalRate: number } } }).optimize.chosen;
    expect(JSON.parse(await readFile(path.join(out, 'recipe.json'), 'utf8'))).toEqual(chosen.recipe);
    const card = await readFile(path.join(out, 'README.md'), 'utf8');
    expect(card).toContain(`From trial ${chosen.trial} in trials.jsonl`);
    expect(card).toContain(`| refusal rate | — | ${(chosen.refusalRate * 100).toFixed(1)} % |`);
    expect(await readFile(path.join(out, 'reproduce.sh'), 'utf8')).toContain(
      `npx abliterate optimize --model ${DEMO} --harmful "$RUN_CARD/prompts/harmful.jsonl" --harmless "$RUN_CARD/prompts/harmless.jsonl" --max-new-tokens 16 --trials 4 --out "$RUN_CARD/reproduced"`,
    );
    await access(path.join(out, 'prompts/SHA256SUMS'));
    await access(path.join(out, 'plots/auc.svg'));

    const resumed = await runCli([...base, '--trials', '6', '--resume', out]);
    expect(resumed.code).toBe(0);
    const continued = await readTrials(out);
    expect(continued.map((trial) => trial.trial)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(continued.slice(0, 4)).toEqual(trials);
  });

  it('--agent: every finished trial records its action rate, the one eval --recipe --agent measures (toy-llama)', async () => {
    const out = path.join(work, 'agent');
    const toy = (file: string) => path.join(TOY_PROMPTS, file);
    const agentFile = toy('shell_agent_val.jsonl');
    const common = ['--model', TOY, '--max-new-tokens', '24'];
    const result = await runCli(['optimize', ...common, '--harmful', toy('harmful_val.jsonl'), '--harmless', toy('harmless_val.jsonl'), '--trials', '3', '--agent', agentFile, '--no-false-refusals', '--out', out]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/action/);
    const trials = await readTrials(out);
    for (const trial of trials) {
      if (trial.pruned) expect(trial.actionRate).toBeNull();
      else expect(typeof trial.actionRate).toBe('number');
    }
    const finished = trials.filter((trial) => !trial.pruned).at(-1)!;
    const recipeFile = path.join(work, 'agent-recipe.json');
    await writeFile(recipeFile, JSON.stringify(finished.recipe));
    const evalOut = path.join(work, 'agent-eval.json');
    const evaluation = await runCli([
      'eval', ...common, '--direction', path.join(out, 'directions.safetensors'), '--recipe', recipeFile,
      '--harmful', toy('harmful_test.jsonl'), '--harmless', toy('harmless_test.jsonl'), '--agent', agentFile, '--out', evalOut,
    ]);
    expect(evaluation.code).toBe(0);
    const evalJson = JSON.parse(await readFile(evalOut, 'utf8')) as { agent: { count: number; base: { actionRate: number }; ablated: { actionRate: number } } };
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as { optimize: { agent: { count: number; base: { actionRate: number } } } };
    // toy-llama answers its agent prompts with JSON commands, so the rates compared are not trivially 0.
    expect(evalJson.agent.base.actionRate).toBeGreaterThan(0.5);
    expect(report.optimize.agent.count).toBe(evalJson.agent.count);
    expect(report.optimize.agent.base.actionRate).toBe(evalJson.agent.base.actionRate);
    expect(finished.actionRate).toBe(evalJson.agent.ablated.actionRate);
  });

  it('bad input: one clear line and a non-zero exit', async () => {
    const empty = path.join(work, 'empty.txt');
    await writeFile(empty, '\n');
    const cases: [string[], RegExp][] = [
      [[...base, '--trials', '0', '--out', path.join(work, 'a')], /--trials 0: the number of trials must be a whole number ≥ 1/],
      [[...base, '--eval-harmful', empty, '--eval-harmless', path.join(PROMPTS, 'shell_agent.test.jsonl'), '--out', path.join(work, 'b')], /empty\.txt: .*no prompts/],
      [[...base, '--range', 'embed=1-0.5', '--out', path.join(work, 'c')], /"embed": range minimum 1 is greater than its maximum 0.5/],
      [[...base, '--direction-range', '3-1', '--out', path.join(work, 'd')], /"direction": range minimum 3 is greater than its maximum 1/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args);
      expect(result.code).not.toBe(0);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(message);
      const out = args[args.indexOf('--out') + 1]!;
      await expect(access(out)).rejects.toThrow();
      await expect(access(`${out}.partial`)).rejects.toThrow();
    }
  });
});
