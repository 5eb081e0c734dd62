/**
 * Sessions and run cards at 1024 px: capture and sweep on the demo model; a reload brings the plots back with no
 * new capture; the run card downloaded from the page, loaded in a fresh browser context (empty IndexedDB),
 * brings them back without the model's capture; and the run card's own reproduce.sh — `npx abliterate analyze`
 * — recomputes report.json's AUCs within 1e-3. Screenshots: test-results/<this test>/session-1024-*.png.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { unzipSync } from 'fflate';
import { AUC_TOLERANCE, expectModelReady, openWorkbench, overlappingTexts, REPO_ROOT, screenshot, selectBackend, type Report } from './workbench-helpers';

const VIEWPORT = { width: 1024, height: 900 };
/** Plotly (3 MB) loads and draws six figures after a capture: tens of seconds on a busy 2-core machine. */
const RENDER_TIMEOUT = 300_000;

test.use({ viewport: VIEWPORT });

async function expectPlotsBack(page: Page, origin: RegExp): Promise<void> {
  await expect(page.getByTestId('result.origin')).toContainText(origin);
  for (const plot of ['plot.auc', 'plot.cosine', 'plot.layers', 'plot.sweep']) await expect(page.getByTestId(plot)).toHaveAttribute('data-rendered', 'true', { timeout: RENDER_TIMEOUT });
  await expect(page.getByTestId('plot.auc')).toHaveAttribute('data-point-count', '5');
  await expect(page.getByTestId('layers.recommendation')).toHaveAttribute('data-source', 'sweep');
}

test('capture → reload → run card in a fresh context → the CLI reproduces its AUCs', async ({ page, browser }, testInfo) => {
  test.setTimeout(1_500_000);
  await openWorkbench(page);
  await expectModelReady(page);
  await selectBackend(page, 'wasm');
  await page.getByTestId('capture.run').click();
  await expect(page.getByTestId('capture.progress')).toHaveAttribute('data-state', 'done', { timeout: 600_000 });
  await expect(page.getByTestId('plot.auc')).toHaveAttribute('data-rendered', 'true', { timeout: RENDER_TIMEOUT });
  await expect(page.getByTestId('sweep.run')).toHaveText('Sweep 4 layers'); // layer 0 has no direction on the demo
  await page.getByTestId('sweep.run').click();
  await expect(page.getByTestId('plot.sweep')).toHaveAttribute('data-rendered', 'true', { timeout: 900_000 });
  await expect(page.getByTestId('error')).toHaveCount(0);
  expect(await overlappingTexts(page, 'plot.sweep')).toEqual([]);
  expect(await overlappingTexts(page, 'plot.layers')).toEqual([]);
  await screenshot(page, testInfo, 'session-1024-captured');

  // A reload restores the session from IndexedDB: the plots are back and no capture ran.
  await page.reload();
  await expectPlotsBack(page, /the last session/);
  await expect(page.getByTestId('capture.detail')).toHaveText('Restored from the last session');
  await screenshot(page, testInfo, 'session-1024-reloaded');

  // The toolbar is there on hover, with the SVG download.
  await page.getByTestId('plot.auc').hover();
  await expect(page.getByTestId('plot.auc').locator('.modebar-btn[data-title="Download plot as SVG"]')).toHaveCount(1);

  const downloadPromise = page.waitForEvent('download');
  await page.getByTestId('session.download').click();
  const download = await downloadPromise;
  const zipPath = testInfo.outputPath('run-card.zip');
  await download.saveAs(zipPath);

  // A fresh profile: nothing in IndexedDB; the run card alone brings the plots back.
  const context = await browser.newContext({ viewport: VIEWPORT, acceptDownloads: true });
  const fresh = await context.newPage();
  await openWorkbench(fresh);
  await fresh.getByTestId('session.file-input').setInputFiles(zipPath);
  await expectPlotsBack(fresh, /run card/);
  await screenshot(fresh, testInfo, 'session-1024-run-card-loaded');
  await context.close();

  // The run card's command, run in a shell from the checkout, recomputes report.json.
  const card = unzipSync(readFileSync(zipPath));
  const runCard = testInfo.outputPath('run-card');
  for (const [name, bytes] of Object.entries(card)) {
    mkdirSync(dirname(join(runCard, name)), { recursive: true });
    writeFileSync(join(runCard, name), bytes);
  }
  const script = readFileSync(join(runCard, 'reproduce.sh'), 'utf8');
  expect(script).toContain('npx abliterate analyze --model public/models/demo');
  execFileSync('sh', [join(runCard, 'reproduce.sh')], { cwd: REPO_ROOT, env: { ...process.env, RUN_CARD: runCard }, stdio: ['ignore', 'pipe', 'pipe'] });
  const saved = JSON.parse(readFileSync(join(runCard, 'report.json'), 'utf8')) as Report;
  const reproduced = JSON.parse(readFileSync(join(runCard, 'reproduced', 'report.json'), 'utf8')) as Report;
  expect(reproduced.layers).toHaveLength(saved.layers.length);
  expect(reproduced.counts).toEqual(saved.counts);
  saved.layers.forEach((layer, index) => {
    expect(Math.abs(reproduced.layers[index]!.auc - layer.auc), `layer ${index} AUC`).toBeLessThanOrEqual(AUC_TOLERANCE);
    expect(Math.abs(reproduced.layers[index]!.aucTrain - layer.aucTrain), `layer ${index} train AUC`).toBeLessThanOrEqual(AUC_TOLERANCE);
  });
  expect(reproduced.bestLayer).toBe(saved.bestLayer);
});
