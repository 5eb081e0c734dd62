/**
 * The README's toy-llama comparison: the single-layer recommendation of `abliterate run` vs the chosen trial
 * of a 40-trial `abliterate optimize` (train → val), both scored on the held-out test files with the same
 * evaluator. Usage: npx tsx scripts/optimize-acceptance.ts RUN_OUT OPTIMIZE_OUT
 * (RUN_OUT from `abliterate run --harmful harmful_train.jsonl --harmless harmless_train.jsonl`,
 * OPTIMIZE_OUT from `abliterate optimize … --eval-harmful harmful_val.jsonl --eval-harmless harmless_val.jsonl`).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseRecipe, recipeFromShorthand } from '../src/core/recipe';
import { scoreRecipes } from '../src/cli/optimize-bench';

const root = path.resolve(import.meta.dirname, '..');
const [runOut, optimizeOut] = process.argv.slice(2);
if (!runOut || !optimizeOut) throw new Error('usage: optimize-acceptance.ts RUN_OUT OPTIMIZE_OUT');
const toy = path.join(root, 'test/fixtures/toy-llama');
const layer = (JSON.parse(await readFile(path.join(runOut, 'report.json'), 'utf8')) as { run: { recommendedLayer: number } }).run.recommendedLayer;
const chosen = (JSON.parse(await readFile(path.join(optimizeOut, 'report.json'), 'utf8')) as { optimize: { chosen: { trial: number; recipe: unknown } } }).optimize.chosen;
const pareto = (JSON.parse(await readFile(path.join(optimizeOut, 'pareto.json'), 'utf8')) as { trials: { trial: number; recipe: unknown }[] }).trials;
const recipes = [recipeFromShorthand({ layer }), parseRecipe(chosen.recipe), ...pareto.map((trial) => parseRecipe(trial.recipe))];
const scores = await scoreRecipes({
  modelDir: toy,
  harmfulPath: `${toy}/prompts/harmful_train.jsonl`,
  harmlessPath: `${toy}/prompts/harmless_train.jsonl`,
  evalHarmfulPath: `${toy}/prompts/harmful_test.jsonl`,
  evalHarmlessPath: `${toy}/prompts/harmless_test.jsonl`,
  recipes,
});
const labels = [`single layer ${layer} (abliterate run)`, `chosen trial ${chosen.trial}`, ...pareto.map((trial) => `Pareto trial ${trial.trial}`)];
process.stdout.write('| recipe | test refusal | test KL | test false refusals |\n|---|---|---|---|\n');
scores.forEach((score, i) => process.stdout.write(`| ${labels[i]} | ${(score.refusalRate * 100).toFixed(1)}% | ${score.klFirstToken.toPrecision(3)} | ${score.falseRefusalRate === null ? '—' : `${(score.falseRefusalRate * 100).toFixed(1)}%`} |\n`));
