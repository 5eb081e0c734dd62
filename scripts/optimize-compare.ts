/**
 * The README's sampler comparison: MOTPE vs random search at equal budget, hypervolume (reference: refusal 1,
 * KL 0.5) for several seeds, on toy-llama (train → val) and the demo model (train → its held-out split).
 * Also prints trials per minute. Usage: npx tsx scripts/optimize-compare.ts [trials] [seeds] [toy|demo|both]
 * Writes the raw results to out/optimize-compare-<model>.json. False refusals are not generated (they are
 * reported, not optimized, so they do not change what either sampler sees), which halves the cost.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { measureRecipeSearch, type SearchMeasurement } from '../src/cli/optimize-bench';

const root = path.resolve(import.meta.dirname, '..');
const trials = Number(process.argv[2] ?? 40);
const seeds = Array.from({ length: Number(process.argv[3] ?? 5) }, (_, i) => i);
const which = process.argv[4] ?? 'both';
const toy = path.join(root, 'test/fixtures/toy-llama');
const models = {
  toy: { modelDir: toy, harmfulPath: `${toy}/prompts/harmful_train.jsonl`, harmlessPath: `${toy}/prompts/harmless_train.jsonl`, evalHarmfulPath: `${toy}/prompts/harmful_val.jsonl`, evalHarmlessPath: `${toy}/prompts/harmless_val.jsonl` },
  demo: { modelDir: path.join(root, 'public/models/demo'), harmfulPath: path.join(root, 'public/prompts/harmful.train.jsonl'), harmlessPath: path.join(root, 'public/prompts/harmless.train.jsonl') },
};

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
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
  const row = (sampler: string) => {
    const runs = results.filter((result) => result.sampler === sampler);
    return `| ${name} | ${sampler} | ${runs.map((run) => run.hypervolume.toFixed(4)).join(' | ')} | ${mean(runs.map((run) => run.hypervolume)).toFixed(4)} | ${mean(runs.map((run) => run.trialsPerMinute)).toFixed(1)} |`;
  };
  process.stdout.write(`| model | sampler | ${seeds.map((seed) => `seed ${seed}`).join(' | ')} | mean | trials/min |\n|${'---|'.repeat(seeds.length + 4)}\n${row('motpe')}\n${row('random')}\n`);
}
