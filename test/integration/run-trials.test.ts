/**
 * `abliterate run --trials N` on toy-llama: the recipe search replaces the single-layer sweep. The chosen trial is
 * recomputed here from trials.jsonl by the rule the README states (lowest refusal rate on the Pareto front with
 * KL ≤ the bound, ties by KL; none within: the lowest KL), and the edited model must be byte-for-byte what
 * `abliterate ablate --recipe` writes for that recipe over the run's directions.safetensors. Bad input fails
 * before any work with one line.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOY_LLAMA_DIR } from '../helpers/fixtures';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TOY = TOY_LLAMA_DIR;
/** run's documented default --kl-bound (its --help). */
const KL_BOUND = 0.5;
const TRIALS = 4;

function runCli(args: string[], cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/abliterate.mjs'), ...args], { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

interface Trial {
  trial: number;
  recipe: Record<string, unknown>;
  refusalRate: number;
  klFirstToken: number;
}

/** The README's choice rule, written independently of the engine's. */
function expectedChoice(trials: Trial[], klBound: number): Trial {
  const dominated = (a: Trial) => trials.some((b) => b !== a && b.refusalRate <= a.refusalRate && b.klFirstToken <= a.klFirstToken && (b.refusalRate < a.refusalRate || b.klFirstToken < a.klFirstToken));
  const front = trials.filter((trial) => !dominated(trial));
  const within = front.filter((trial) => trial.klFirstToken <= klBound).sort((a, b) => a.refusalRate - b.refusalRate || a.klFirstToken - b.klFirstToken || a.trial - b.trial);
  return within[0] ?? [...front].sort((a, b) => a.klFirstToken - b.klFirstToken || a.refusalRate - b.refusalRate)[0]!;
}

async function readTree(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of (await readdir(dir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile())) {
    const full = path.join(name.parentPath, name.name);
    files.set(path.relative(dir, full), await readFile(full));
  }
  return files;
}

const prompts = ['--harmful', path.join(TOY, 'prompts/harmful_val.jsonl'), '--harmless', path.join(TOY, 'prompts/harmless_val.jsonl')];
let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'abliterate-run-trials-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('abliterate run --trials on toy-llama', () => {
  it('chooses a recipe by search, evaluates it on the held-out prompts and writes the edit of that recipe', async () => {
    const out = path.join(work, 'out');
    const run = await runCli(['run', '--model', TOY, ...prompts, '--trials', String(TRIALS), '--sweep-prompts', '8', '--max-new-tokens', '16', '--out', out]);
    expect(run.stderr).not.toMatch(/^abliterate run:/m);
    expect(run.code).toBe(0);
    expect(await readdir(out)).toEqual(expect.arrayContaining(['directions.safetensors', 'eval.json', 'model', 'recipe.json', 'report.json', 'trials.jsonl']));

    const trials = (await readFile(path.join(out, 'trials.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Trial);
    expect(trials.map((trial) => trial.trial)).toEqual([0, 1, 2, 3]);
    const chosen = expectedChoice(trials, KL_BOUND);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8'));
    const evaluation = JSON.parse(await readFile(path.join(out, 'eval.json'), 'utf8'));
    const manifest = JSON.parse(await readFile(path.join(out, 'model/abliteration.json'), 'utf8'));
    expect(evaluation.search.chosenTrial).toBe(chosen.trial);
    const cardRecipe = JSON.parse(await readFile(path.join(out, 'recipe.json'), 'utf8'));
    for (const recipe of [report.run.recipe, evaluation.recipe, evaluation.settings.recipe, manifest.recipe, cardRecipe]) expect(recipe).toEqual(chosen.recipe);
    // The held-out quarter of 50 + 50 prompts, not the train sample the search scored on.
    expect(evaluation.counts).toEqual({ harmful: 13, harmless: 13 });
    expect(evaluation.base.refusalRate).toBeGreaterThanOrEqual(0.9);
    expect(evaluation.ablated.refusalRate).toBeLessThan(evaluation.base.refusalRate);
    expect(run.stdout).toMatch(new RegExp(`chosen recipe: .*\\n  search trial ${chosen.trial} of ${TRIALS}`));

    // The edit is `ablate --recipe` of the run card's recipe.json over the run's own directions file, byte for byte
    // (the model card aside: it reports the run's measured figures, which a bare ablate does not have).
    const ablated = path.join(work, 'ablate');
    const ablate = await runCli(['ablate', '--model', TOY, '--direction', 'directions.safetensors', '--recipe', 'recipe.json', '--out', ablated], out);
    expect(ablate.code).toBe(0);
    const [fromRun, fromAblate] = [await readTree(path.join(out, 'model')), await readTree(ablated)];
    expect([...fromRun.keys()].sort()).toEqual([...fromAblate.keys()].sort());
    for (const [file, bytes] of fromRun) {
      if (file === 'README.md' || file === 'abliteration.json') continue;
      expect(bytes.equals(fromAblate.get(file)!), file).toBe(true);
    }
    const ablateManifest = JSON.parse(fromAblate.get('abliteration.json')!.toString('utf8'));
    for (const key of ['recipe', 'direction', 'editedTensors', 'edits', 'tiedEmbeddings']) expect(manifest[key], key).toEqual(ablateManifest[key]);
    console.info(`toy-llama run --trials ${TRIALS}: trial ${chosen.trial} ${JSON.stringify(chosen.recipe)}; held-out refusal ${evaluation.base.refusalRate.toFixed(2)} → ${evaluation.ablated.refusalRate.toFixed(2)}, KL ${evaluation.klFirstToken.toFixed(4)}`);
  });

  it.each([
    [['--trials', '0'], /--trials/],
    [['--trials', '3', '--layer', '2'], /--trials chooses the whole recipe; drop --layer/],
    [['--trials', '3', '--sweep-layers', '1-2'], /drop --sweep-layers/],
  ])('refuses %j before any work, in one line', async (extra, message) => {
    const out = path.join(work, `bad-${extra.join('')}`);
    const result = await runCli(['run', '--model', TOY, ...prompts, ...extra, '--out', out]);
    expect(result.code).not.toBe(0);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    await expect(readdir(out)).rejects.toThrow();
  });
});
