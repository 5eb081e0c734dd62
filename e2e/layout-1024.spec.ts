/**
 * The workbench at 1024 px on the demo model, as a researcher uses it: the prompt editor flags a broken JSON line
 * at once (with its line number, not counted), shows a row through the model's chat template, and the evaluation
 * follows the edited set (its held-out split, named as such); the inputs sit at the top of the page and the
 * chat columns stay readable; the capture never says "preparing the … session" past 0 %; "Sweep N layers"
 * sweeps N; the sweep plot's texts do not overlap; a cancelled sweep keeps its finished layers, which stay
 * clickable. With SCREENSHOTS_DIR set (e.g. docs/screenshots) the screenshots are also written there.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, test, type Locator, type Page, type TestInfo } from '@playwright/test';
import { clickPlotPoint } from './chat-helpers';
import { expectModelReady, openWorkbench, overlappingTexts, PROMPTS_DIR, REPO_ROOT, selectBackend } from './workbench-helpers';

const VIEWPORT = { width: 1024, height: 900 };
/** Plotly loads and draws after a capture: tens of seconds on a busy 2-core machine. */
const RENDER_TIMEOUT = 300_000;
/** Narrower than this, a chat column wraps a reply every few words. */
const MIN_CHAT_COLUMN_PX = 300;
/** Tops of boxes in one grid row may differ by borders only. */
const SAME_ROW_PX = 2;
/** Short replies keep the sweeps quick; refusal markers appear in the first few tokens. */
const EVAL_MAX_TOKENS = '8';

test.use({ viewport: VIEWPORT });

async function shot(target: Page | Locator, testInfo: TestInfo, name: string): Promise<void> {
  const path = testInfo.outputPath(`${name}.png`);
  await target.screenshot({ path });
  await testInfo.attach(name, { path, contentType: 'image/png' });
  const directory = process.env.SCREENSHOTS_DIR;
  if (directory) {
    mkdirSync(resolve(REPO_ROOT, directory), { recursive: true });
    writeFileSync(resolve(REPO_ROOT, directory, `${name}.png`), readFileSync(path));
  }
}

test('1024 px: prompt validation and template, layout, capture labels, sweep count, labels, cancel keeps layers', async ({ page }, testInfo) => {
  test.setTimeout(1_500_000);
  await openWorkbench(page);
  await expectModelReady(page);
  await selectBackend(page, 'wasm');

  // Prompt editing: the default A set, then a broken JSON row appended.
  const editor = page.getByTestId('prompts.harmful');
  await expect(editor).not.toHaveValue('');
  const original = await editor.inputValue();
  const lines = original.split('\n');
  const count = lines.filter((line) => line.trim().length > 0).length;
  await expect(page.getByTestId('prompts.harmful-count')).toHaveText(`${count} prompts`);
  await editor.fill(`${original}\n{"prompt": "unterminated`);
  const brokenLine = lines.length + 1;
  await expect(page.getByTestId('prompts.harmful-count')).toHaveText(`${count} prompts · 1 line with errors`);
  await expect(page.getByTestId('prompts.harmful-problems')).toContainText(`line ${brokenLine}: not valid JSON`);
  await expect(page.getByTestId('eval.harmful-source')).toContainText(`A has errors (line ${brokenLine})`);
  await editor.fill(original);
  await expect(page.getByTestId('prompts.harmful-problems')).toHaveCount(0);
  // Edited, A is no longer the preset's set: the evaluation follows its held-out split, as the capture splits it.
  const heldOut = Math.round(count * 0.25);
  await expect(page.getByTestId('eval.harmful-source')).toContainText(`held-out split of A: ${heldOut} of ${count} prompts (25 %, seed 0)`);

  // A row through the chat template.
  await page.getByTestId('prompts.harmful-rows-toggle').click();
  await expect(page.getByTestId('prompts.harmful-row')).toHaveCount(Math.min(count, 200));
  const second = page.getByTestId('prompts.harmful-row').nth(1);
  const user = (await second.locator('td').nth(2).textContent())!;
  await second.click();
  await expect(page.getByTestId('prompts.harmful-template')).toContainText(user);
  await expect(page.getByTestId('prompts.harmful-template-tokens')).toContainText(/^\d+ tokens; the capture reads token \d+/);
  await shot(page.locator('section[aria-labelledby="region-prompts"]'), testInfo, 'prompts-rows-template-1024');

  // Layout: one column; model and prompts side by side at the top, results below; chat columns readable.
  const model = (await page.locator('section[aria-labelledby="region-model"]').boundingBox())!;
  const prompts = (await page.locator('section[aria-labelledby="region-prompts"]').boundingBox())!;
  const results = (await page.locator('section[aria-labelledby="region-analysis"]').boundingBox())!;
  expect(Math.abs(model.y - prompts.y)).toBeLessThanOrEqual(SAME_ROW_PX);
  expect(results.y).toBeGreaterThan(Math.max(model.y + model.height, prompts.y + prompts.height) - SAME_ROW_PX);
  for (const column of await page.locator('.chat-column').all()) expect((await column.boundingBox())!.width).toBeGreaterThanOrEqual(MIN_CHAT_COLUMN_PX);

  // The capture's labels, as the page shows them while it runs.
  await page.getByTestId('capture.detail').evaluate((element) => {
    const seen: string[] = [];
    (window as unknown as { captureLabels: string[] }).captureLabels = seen;
    new MutationObserver(() => seen.push(element.textContent ?? '')).observe(element, { childList: true, characterData: true, subtree: true });
  });
  await page.getByTestId('capture.run').click();
  await expect(page.getByTestId('capture.progress')).toHaveAttribute('data-state', 'done', { timeout: 600_000 });
  await expect(page.getByTestId('error')).toHaveCount(0);
  const labels = await page.evaluate(() => (window as unknown as { captureLabels: string[] }).captureLabels);
  expect(labels.length).toBeGreaterThan(0);
  expect(labels.filter((label) => /preparing the \w+ session · [1-9]\d*%/.test(label))).toEqual([]);
  await expect(page.getByTestId('plot.auc')).toHaveAttribute('data-rendered', 'true', { timeout: RENDER_TIMEOUT });
  await expect(page.getByTestId('eval.harmful-source')).toContainText(`held-out split of the captured A: ${heldOut} of ${count} prompts`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, testInfo, 'workbench-1024');

  // "Sweep N layers" sweeps N; nothing skipped is reported as "Skipped: 0".
  await page.getByTestId('eval.max-tokens').fill(EVAL_MAX_TOKENS);
  const label = (await page.getByTestId('sweep.run').textContent())!;
  const swept = Number(/^Sweep (\d+) layers?$/.exec(label)?.[1]);
  expect(swept).toBeGreaterThan(1);
  await page.getByTestId('sweep.run').click();
  await expect(page.getByTestId('sweep.progress')).toHaveAttribute('data-state', 'done', { timeout: 900_000 });
  await expect(page.getByTestId('plot.sweep')).toHaveAttribute('data-rendered', 'true', { timeout: RENDER_TIMEOUT });
  await expect(page.getByTestId('plot.sweep')).toHaveAttribute('data-point-count', String(swept));
  await expect(page.getByTestId('sweep.recommendation')).not.toContainText('Skipped');
  await expect(page.getByTestId('sweep.recommendation')).toContainText(`on ${heldOut} refusal prompts (held-out split of the captured A`);
  expect(await overlappingTexts(page, 'plot.sweep')).toEqual([]);
  await shot(page.locator('.evaluation-panel'), testInfo, 'sweep-1024');

  // Cancel keeps the finished layers: a long evaluation set so that each layer takes a while.
  const base = readFileSync(join(PROMPTS_DIR, 'harmful.train.jsonl'), 'utf8').split('\n').filter((line) => line.trim());
  const long = testInfo.outputPath('long-harmful.jsonl');
  writeFileSync(long, `${Array.from({ length: 160 }, (_, index) => base[index % base.length]).join('\n')}\n`);
  await page.getByTestId('eval.harmful-file').setInputFiles(long);
  await expect(page.getByTestId('eval.harmful-source')).toContainText('long-harmful.jsonl');
  await page.getByTestId('sweep.run').click();
  const progress = page.getByTestId('sweep.progress');
  // The first layer is done once the bar passes the base replies (10 %) and that layer's share.
  const firstLayerDone = 10 + 90 / swept;
  await expect.poll(async () => Number(await progress.getAttribute('aria-valuenow')), { timeout: 900_000 }).toBeGreaterThanOrEqual(Math.ceil(firstLayerDone));
  await page.getByTestId('sweep.cancel').click();
  await expect(progress).toHaveAttribute('data-state', 'cancelled', { timeout: 120_000 });
  await expect(page.getByTestId('sweep.cancelled')).toBeVisible();
  await expect(page.getByTestId('error')).toHaveCount(0);
  const kept = await page.getByTestId('plot.sweep').evaluate((element) => (element as unknown as { data: { x: number[] }[] }).data[0]!.x);
  expect(kept.length).toBeGreaterThanOrEqual(1);
  expect(kept.length).toBeLessThan(swept);
  await expect(page.getByTestId('sweep.recommendation')).toContainText('long-harmful.jsonl');
  // The kept layers are usable: clicking one selects it.
  await clickPlotPoint(page, 'plot.sweep', kept[0]!);
  await expect(page.getByTestId('layer.selected')).toHaveText(String(kept[0]));
  expect(await overlappingTexts(page, 'plot.sweep')).toEqual([]);
  await shot(page.locator('.evaluation-panel'), testInfo, 'sweep-cancelled-1024');
});
