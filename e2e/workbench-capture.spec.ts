/**
 * The workbench's main path: load → capture → plots with L+1 points → recommended layer selected → report.json equal
 * to `abliterate analyze` on the same model and prompts, for the demo model on WebGPU and on wasm and for the
 * toy-llama fixture loaded through the folder input.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { expect, test } from '@playwright/test';
import {
  DEMO_MODEL_DIR,
  PROMPTS_DIR,
  TOY_LLAMA_DIR,
  captureAndDownloadReport,
  expectModelReady,
  expectPlotsAndSelection,
  expectReportsAgree,
  importPrompts,
  openWorkbench,
  runCliAnalyze,
  screenshot,
  selectBackend,
  type PromptFiles,
} from './workbench-helpers';

const DEMO_PROMPTS: PromptFiles = {
  harmful: join(PROMPTS_DIR, 'harmful.train.jsonl'),
  harmless: join(PROMPTS_DIR, 'harmless.train.jsonl'),
  // public/prompts/index.json: C = agent-prompted, D = plain.
  referenceA: join(PROMPTS_DIR, 'reference_agent.jsonl'),
  referenceB: join(PROMPTS_DIR, 'reference_plain.jsonl'),
};

/**
 * WebGPU here is SwiftShader (~1 GFLOP/s): the WebGPU run uses the held-out splits and the first rows of the
 * reference pair, written to files the CLI reads too.
 */
function smallDemoPrompts(directory: string): PromptFiles {
  mkdirSync(directory, { recursive: true });
  const head = (source: string, rows: number) => {
    const target = join(directory, basename(source));
    writeFileSync(target, readFileSync(source, 'utf8').split('\n').filter((line) => line.trim()).slice(0, rows).join('\n') + '\n');
    return target;
  };
  return {
    harmful: join(PROMPTS_DIR, 'harmful.test.jsonl'),
    harmless: join(PROMPTS_DIR, 'harmless.test.jsonl'),
    referenceA: head(DEMO_PROMPTS.referenceA!, 16),
    referenceB: head(DEMO_PROMPTS.referenceB!, 16),
  };
}

for (const backend of ['webgpu', 'wasm'] as const) {
  test(`demo model on ${backend}: capture, plots, recommended layer, report equals the CLI's`, async ({ page }, testInfo) => {
    const prompts = backend === 'webgpu' ? smallDemoPrompts(testInfo.outputDir) : DEMO_PROMPTS;
    const cli = runCliAnalyze(DEMO_MODEL_DIR, prompts);
    await openWorkbench(page);
    await page.getByTestId('model.demo').click();
    await expectModelReady(page);
    await selectBackend(page, backend);
    await importPrompts(page, prompts);
    const report = await captureAndDownloadReport(page, testInfo);
    await expect(page.getByText(`captured on ${backend}`).first()).toBeVisible();
    await expectPlotsAndSelection(page, report);
    expectReportsAgree(report, cli);
    await screenshot(page, testInfo, `demo-${backend}`);

    // Clicking a layer in the AUC plot selects it; the number input follows.
    const target = report.bestLayer === 1 ? 3 : 1;
    await page.getByTestId('layer.input').fill(String(target));
    await expect(page.getByTestId('layer.selected')).toHaveText(String(target));
    await clickLayerInPlot(page, 'plot.auc', report.bestLayer);
    await expect(page.getByTestId('layer.selected')).toHaveText(String(report.bestLayer));
    // The heatmap's columns are layers too.
    await clickLayerInPlot(page, 'plot.heatmap', target, report.numLayers);
    await expect(page.getByTestId('layer.selected')).toHaveText(String(target));
    await expect(page.getByTestId('plot.histogram').locator('xpath=..')).toContainText(`layer ${target}`);

    if (backend === 'wasm') {
      // Activations are cached per model + prompts + position: after a reload nothing is recomputed.
      await page.reload();
      await expectModelReady(page);
      await selectBackend(page, backend);
      await importPrompts(page, DEMO_PROMPTS);
      const again = await captureAndDownloadReport(page, testInfo);
      await expect(page.getByTestId('capture.detail')).toContainText('activation cache');
      expectReportsAgree(again, cli);
    }
  });
}

test('toy-llama loaded through the folder input gives the CLI report', async ({ page }, testInfo) => {
  const prompts: PromptFiles = {
    harmful: join(TOY_LLAMA_DIR, 'prompts', 'harmful_test.jsonl'),
    harmless: join(TOY_LLAMA_DIR, 'prompts', 'harmless_test.jsonl'),
    referenceA: join(TOY_LLAMA_DIR, 'prompts', 'shell_nosys_test.jsonl'),
    referenceB: join(TOY_LLAMA_DIR, 'prompts', 'shell_agent_test.jsonl'),
  };
  const cli = runCliAnalyze(TOY_LLAMA_DIR, prompts);
  await openWorkbench(page);
  await page.getByTestId('model.folder-input').setInputFiles(TOY_LLAMA_DIR);
  await expectModelReady(page);
  await expect(page.getByTestId('model.status')).toContainText('toy-llama');
  await selectBackend(page, 'wasm');
  await importPrompts(page, prompts);
  const report = await captureAndDownloadReport(page, testInfo);
  await expectPlotsAndSelection(page, report);
  expectReportsAgree(report, cli);
  await screenshot(page, testInfo, 'toy-llama');
});

/** Clicks the point for `layer` through Plotly's own axis mapping: on the first trace's y, or at row `row` of a heatmap. */
async function clickLayerInPlot(page: import('@playwright/test').Page, testId: string, layer: number, row?: number): Promise<void> {
  const plot = page.getByTestId(testId);
  const point = await plot.evaluate(
    (element, { index, heatmapRow }) => {
      type Axis = { l2p(value: number): number; _offset: number };
      const full = (element as unknown as { _fullLayout: { xaxis: Axis; yaxis: Axis } })._fullLayout;
      const data = (element as unknown as { data: { y: number[] }[] }).data;
      const box = element.getBoundingClientRect();
      const y = heatmapRow ?? data[0].y[index];
      return { x: box.left + full.xaxis._offset + full.xaxis.l2p(index), y: box.top + full.yaxis._offset + full.yaxis.l2p(y) };
    },
    { index: layer, heatmapRow: row ?? null },
  );
  await page.mouse.click(point.x, point.y);
}
