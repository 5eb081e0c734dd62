/**
 * Section "search": the recipe search loop (`abliterate optimize`'s engine) on the vendored toy-llama, train
 * prompts for the directions, validation prompts for the objectives, false refusals not generated. Trials per
 * minute of the MOTPE sampler and of random sampling on the same prepared evaluator in the same run; their ratio
 * is the cost of MOTPE's own proposals (and of the trials it chooses) against drawing recipes at random.
 */
import * as path from 'node:path';
import { measureRecipeSearch } from '../src/cli/optimize-bench';
import { median } from './measure';
import { measuredRow, type BenchRow } from './table';

export interface SearchRaw {
  trials: number;
  runs: { sampler: 'motpe' | 'random'; seed: number; seconds: number; trialsPerMinute: number; trialsRun: number }[];
}

const toy = path.resolve(import.meta.dirname, '../test/fixtures/toy-llama');

export async function benchSearch(options: { quick: boolean; log: (line: string) => void }): Promise<SearchRaw> {
  const trials = options.quick ? 4 : 10;
  const seeds = options.quick ? [0] : [0, 1];
  options.log(`search: toy-llama, ${trials} trials × seeds ${seeds.join(', ')} × MOTPE and random`);
  const results = await measureRecipeSearch({
    modelDir: toy,
    harmfulPath: `${toy}/prompts/harmful_train.jsonl`,
    harmlessPath: `${toy}/prompts/harmless_train.jsonl`,
    evalHarmfulPath: `${toy}/prompts/harmful_val.jsonl`,
    evalHarmlessPath: `${toy}/prompts/harmless_val.jsonl`,
    trials,
    seeds,
    samplers: ['motpe', 'random'],
    falseRefusals: false,
  });
  const runs = results.map((result) => ({ sampler: result.sampler, seed: result.seed, seconds: result.seconds, trialsPerMinute: result.trialsPerMinute, trialsRun: result.trials.length }));
  for (const run of runs) options.log(`  ${run.sampler} seed ${run.seed}: ${run.trialsRun} trials in ${run.seconds.toFixed(1)} s`);
  return { trials, runs };
}

export function searchRows(raw: SearchRaw): BenchRow[] {
  const rate = (sampler: 'motpe' | 'random') => raw.runs.filter((run) => run.sampler === sampler).map((run) => run.trialsPerMinute);
  const motpe = rate('motpe');
  const random = rate('random');
  const ratios = raw.runs.filter((run) => run.sampler === 'motpe').map((run) => run.trialsPerMinute / (raw.runs.find((other) => other.sampler === 'random' && other.seed === run.seed)?.trialsPerMinute ?? Number.NaN));
  return [
    measuredRow('search', `recipe search MOTPE toy-llama (${raw.trials} trials)`, median(motpe), 'trials/min', motpe.length, 1),
    measuredRow('search', `recipe search random toy-llama (${raw.trials} trials)`, median(random), 'trials/min', random.length, 1),
    measuredRow('search', 'MOTPE / random trials per minute', median(ratios), '×', ratios.length, 2, undefined, 'same seeds, same prepared evaluator, same run'),
  ];
}
