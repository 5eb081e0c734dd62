/**
 * The README's sampler comparison: MOTPE vs random search at equal budget, for several seeds, on toy-llama
 * (train → val) and the demo model (train → its held-out split). Prints per seed the hypervolume of
 * (refusal rate, KL) for two reference points — KL 0.5 (the recommendation's KL bound) and KL 0.001 (which
 * still separates searches that all reach ~0 % refusals at tiny KL) — and the lowest KL among trials with at
 * most 2 % refusals, plus trials per minute.
 * Usage: npx tsx scripts/optimize-compare.ts [trials] [seeds] [toy|demo|both]
 *        npx tsx scripts/optimize-compare.ts --summarize out/optimize-compare-<model>.json   (tables from a saved run)
 * Writes the raw results to out/optimize-compare-<model>.json. False refusals are not generated (they are
 * reported, not optimized, so they do not change what either sampler sees), which halves the cost.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hypervolume2D } from '../src/core/pareto';
import { measureRecipeSearch, type SearchMeasurement } from '../src/cli/optimize-bench';

const root = path.resolve(import.meta.dirname, '..');
const REFERENCE_KLS = [0.5, 0.001];
/** "Removes refusals": the KL column is the lowest KL among trials at or below this refusal rate. */
const LOW_REFUSAL = 0.02;

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

function summarize(name: string, results: readonly Pick<SearchMeasurement, 'sampler' | 'seed' | 'trials' | 'trialsPerMinute'>[]): string {
  const seeds = [...new Set(results.map((result) => result.seed))];
  const lines = [`| model | sampler | measure | ${seeds.map((seed) => `seed ${seed}`).join(' | ')} | mean |`, `|${'---|'.repeat(seeds.length + 4)}`];
  for (const sampler of ['motpe', 'random']) {
    const runs = results.filter((result) => result.sampler === sampler);
    for (const reference of REFERENCE_KLS) {
      const volumes = runs.map((run) => hypervolume2D(run.trials.map((trial) => [trial.refusalRate, trial.klFirstToken]), [1, reference]));
      lines.push(`| ${name} | ${sampler} | hypervolume, ref (1, ${reference}) | ${volumes.map((v) => v.toPrecision(4)).join(' | ')} | ${mean(volumes).toPrecision(4)} |`);
    }
    const best = runs.map((run) => Math.min(...run.trials.filter((trial) => trial.refusalRate <= LOW_REFUSAL).map((trial) => trial.klFirstToken)));
    lines.push(`| ${name} | ${sampler} | lowest KL at ≤ ${LOW_REFUSAL * 100} % refusals | ${best.map((kl) => (Number.isFinite(kl) ? kl.toExponential(2) : 'none')).join(' | ')} | |`);
    lines.push(`| ${name} | ${sampler} | trials/min | ${runs.map((run) => run.trialsPerMinute.toFixed(1)).join(' | ')} | ${mean(runs.map((run) => run.trialsPerMinute)).toFixed(1)} |`);
  }
  return lines.join('\n') + '\n';
}

if (process.argv[2] === '--summarize') {
  const file = process.argv[3]!;
  const results = JSON.parse(await readFile(file, 'utf8')) as SearchMeasurement[];
  process.stdout.write(summarize(path.basename(file, '.json').replace('optimize-compare-', ''), results));
} else {
  const trials = Number(process.argv[2] ?? 40);
  const seeds = Array.from({ length: Number(process.argv[3] ?? 5) }, (_, i) => i);
  const which = process.argv[4] ?? 'both';
  const toy = path.join(root, 'test/fixtures/toy-llama');
  const models = {
    toy: { modelDir: toy, harmfulPath: `${toy}/prompts/harmful_train.jsonl`, harmlessPath: `${toy}/prompts/harmless_train.jsonl`, evalHarmfulPath: `${toy}/prompts/harmful_val.jsonl`, evalHarmlessPath: `${toy}/prompts/harmless_val.jsonl` },
    demo: { modelDir: path.join(root, 'public/models/demo'), harmfulPath: path.join(root, 'public/prompts/harmful.train.jsonl'), harmlessPath: path.join(root, 'public/prompts/harmless.train.jsonl') },
  };
  await mkdir(path.join(root, 'out'), { recursive: true });
  for (const [name, model] of Object.entries(models)) {
    if (which !== 'both' && which !== name) continue;
    const results: SearchMeasurement[] = await measureRecipeSearch({
      ...model,
      trials,
      seeds,
      samplers: ['motpe', 'random'],
      falseRefusals: false,
      onTrial: (run, record) => process.stderr.write(`${name} ${run.sampler} seed ${run.seed} trial ${record.trial}: refusal ${record.refusalRate.toFixed(3)} KL ${record.klFirstToken.toExponential(2)}${record.pruned ? ' (stopped early)' : ''}\n`),
    });
    await writeFile(path.join(root, `out/optimize-compare-${name}.json`), JSON.stringify(results, null, 1));
    process.stdout.write(summarize(name, results));
  }
}
