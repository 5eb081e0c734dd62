/**
 * Recipe search in the browser on the demo model: a 10-trial search runs in the search worker, the Pareto plot
 * shows one point per finished trial, and clicking a point makes that trial's recipe the chat's ablated side.
 */
import { expect, test } from '@playwright/test';
import { expectModelReady, openWorkbench, screenshot, selectBackend } from './workbench-helpers';

const TRIALS = 10;

test('demo model: 10-trial search, 10 points on the Pareto plot, clicking one changes the chat recipe', async ({ page }, testInfo) => {
  test.setTimeout(600_000);
  await openWorkbench(page);
  await expectModelReady(page);
  await selectBackend(page, 'wasm');
  await page.getByTestId('capture.run').click();
  await expect(page.getByTestId('capture.progress')).toHaveAttribute('data-state', 'done', { timeout: 240_000 });
  await expect(page.getByText('held-out: shell_nosys.test.jsonl').first()).toBeVisible();

  await page.getByTestId('optimize.trials').fill(String(TRIALS));
  const started = Date.now();
  await page.getByTestId('optimize.run').click();
  await expect(page.getByTestId('optimize.status')).toContainText('done', { timeout: 480_000 });
  console.log(`${TRIALS}-trial search in the browser (wasm): ${Date.now() - started} ms`);
  const plot = page.getByTestId('plot.pareto');
  await expect(plot).toHaveAttribute('data-point-count', String(TRIALS));
  await expect(plot).toHaveAttribute('data-rendered', 'true');
  await expect(page.getByTestId('optimize.table').locator('tbody tr')).toHaveCount(TRIALS);

  const before = await page.getByTestId('chat.direction').innerText();
  expect(before).not.toContain('search trial');
  // Click the first point of the Pareto-front trace, where Plotly drew it (the KL axis is logarithmic: d2p).
  await plot.scrollIntoViewIfNeeded();
  const target = await plot.evaluate((element) => {
    type Axis = { d2p(value: number): number; _offset: number };
    const full = (element as unknown as { _fullLayout: { xaxis: Axis; yaxis: Axis } })._fullLayout;
    const front = (element as unknown as { data: { x: number[]; y: number[]; customdata: number[] }[] }).data[1]!;
    const box = element.getBoundingClientRect();
    return { trial: front.customdata[0]!, x: box.left + full.xaxis._offset + full.xaxis.d2p(front.x[0]!), y: box.top + full.yaxis._offset + full.yaxis.d2p(front.y[0]!) };
  });
  await page.mouse.click(target.x, target.y);
  await expect(page.getByTestId('chat.direction')).toContainText(`recipe of search trial ${target.trial}`);
  await screenshot(page, testInfo, 'demo-recipe-search');
});
