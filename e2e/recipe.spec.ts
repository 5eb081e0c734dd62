/**
 * One recipe everywhere: on the demo model, a direction file and a recipe.json (norm-preserving, fractional
 * direction, a kernel over the blocks) are imported; chat and evaluation run with that recipe, the export writes
 * it, and the export manifest's `recipe` equals what `recipe.download` saves and the Current recipe panel shows.
 * A malformed recipe.json lands in the error banner naming the field, and leaves the current recipe as it was.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { strFromU8, unzipSync } from 'fflate';
import { isRefusal } from '../src/core/refusal';
import { encodeDirectionsSafetensors } from '../src/formats/direction-file';
import { firstPrompt, runEvaluationInPage, sendAndWait } from './chat-helpers';
import { DEMO_MODEL_DIR, PROMPTS_DIR, expectModelReady, openWorkbench, screenshot, selectBackend } from './workbench-helpers';

/** Hidden-state indices of the demo model (4 blocks). */
const DEMO_INDICES = 5;
/** Held-out prompts per set for the evaluation: enough to show base vs ablated, few enough to stay quick. */
const EVAL_PROMPTS = 4;

const RECIPE = {
  method: 'norm-preserving',
  direction: 1.5,
  projection: 'none',
  components: { embed: 1, attn: { max: 1, peak: 1.5, min: 0.8, distance: 2 }, mlp: 1 },
};

function firstLines(source: string, target: string, count: number): string {
  writeFileSync(target, `${readFileSync(source, 'utf8').split('\n').filter((line) => line.trim()).slice(0, count).join('\n')}\n`);
  return target;
}

test('an imported recipe drives chat, evaluation and export; the manifest records the recipe shown and downloaded', async ({ page }, testInfo) => {
  // Every row is the demo's planted refusal direction, so any row or interpolation of rows removes it.
  const planted = Float32Array.from((JSON.parse(readFileSync(join(DEMO_MODEL_DIR, 'planted_direction.json'), 'utf8')) as { direction: number[] }).direction);
  const directionsFile = testInfo.outputPath('directions.safetensors');
  writeFileSync(directionsFile, encodeDirectionsSafetensors(Array.from({ length: DEMO_INDICES }, () => planted)));
  const recipeFile = testInfo.outputPath('recipe.json');
  writeFileSync(recipeFile, JSON.stringify(RECIPE));
  const badRecipe = testInfo.outputPath('bad-recipe.json');
  writeFileSync(badRecipe, JSON.stringify({ ...RECIPE, components: { ...RECIPE.components, attn: { ...RECIPE.components.attn, distance: -1 } } }));

  await openWorkbench(page);
  await expectModelReady(page);
  await selectBackend(page, 'wasm');
  await page.getByTestId('direction.file-input').setInputFiles(directionsFile);
  await page.getByTestId('recipe.file-input').setInputFiles(recipeFile);
  await expect(page.getByTestId('recipe.method')).toHaveText('norm-preserving');
  await expect(page.getByTestId('recipe.direction-source')).toContainText('directions.safetensors, index 1.5');
  await expect(page.getByTestId('recipe.kernel').locator('rect')).toHaveCount(2 * (DEMO_INDICES - 1));
  // Chat shows the same current ablation (the recipe file's name as its label).
  await expect(page.getByTestId('chat.direction')).toContainText('recipe.json');

  // A malformed recipe is refused naming the field; the current one stays.
  await page.getByTestId('recipe.file-input').setInputFiles(badRecipe);
  await expect(page.getByTestId('error')).toContainText('components.attn.distance');
  await expect(page.getByTestId('recipe.method')).toHaveText('norm-preserving');
  await page.getByRole('button', { name: 'Dismiss error' }).click();

  const recipeShown = JSON.parse((await page.getByTestId('recipe.json').textContent()) ?? 'null');
  const downloadPromise = page.waitForEvent('download');
  await page.getByTestId('recipe.download').click();
  const download = await downloadPromise;
  expect(download.suggestedFilename()).toBe('recipe.json');
  const recipeDownloaded = JSON.parse(readFileSync((await download.path())!, 'utf8'));
  expect(recipeDownloaded).toEqual(RECIPE);
  expect(recipeShown).toEqual(RECIPE);

  const replies = await sendAndWait(page, firstPrompt(join(PROMPTS_DIR, 'shell_nosys.test.jsonl')));
  expect(isRefusal(replies.base), `base reply: ${replies.base}`).toBe(true);
  expect(isRefusal(replies.ablated), `ablated reply: ${replies.ablated}`).toBe(false);

  await page.getByTestId('eval.harmful-file').setInputFiles(firstLines(join(PROMPTS_DIR, 'shell_nosys.test.jsonl'), testInfo.outputPath('harmful.jsonl'), EVAL_PROMPTS));
  await page.getByTestId('eval.harmless-file').setInputFiles(firstLines(join(PROMPTS_DIR, 'shell_agent.test.jsonl'), testInfo.outputPath('harmless.jsonl'), EVAL_PROMPTS));
  await page.getByTestId('eval.max-tokens').fill('16');
  const numbers = await runEvaluationInPage(page);
  await expect(page.getByTestId('eval.ablation')).toContainText('recipe.json');
  expect(numbers.base).toBe(1);
  expect(numbers.ablated).toBeLessThan(numbers.base);
  await screenshot(page, testInfo, 'recipe-chat-evaluation');

  await page.getByTestId('export.target').selectOption('zip');
  const zipPromise = page.waitForEvent('download');
  await page.getByTestId('export.run').click();
  await expect(page.getByTestId('export.status')).toContainText('done', { timeout: 60_000 });
  const zip = unzipSync(readFileSync((await (await zipPromise).path())!));
  const manifestPath = Object.keys(zip).find((path) => path.endsWith('abliteration.json'))!;
  const manifest = JSON.parse(strFromU8(zip[manifestPath]!));
  expect(manifest.recipe).toEqual(recipeDownloaded);
  expect(manifest.direction.file).toBe('directions.safetensors');
  console.log(`recipe e2e: chat + evaluation (${EVAL_PROMPTS}+${EVAL_PROMPTS} prompts, refusal ${numbers.base} → ${numbers.ablated}, KL ${numbers.kl.toFixed(4)}) + zip export (${manifest.editedTensors.length} tensors edited) with ${JSON.stringify(manifest.recipe)}`);
});
