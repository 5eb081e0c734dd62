/**
 * The main thread stays responsive during a capture and cancel stops it; a folder without
 * config.json and one with a corrupt ONNX file each show the error banner, and the app keeps working.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { PROMPTS_DIR, TOY_LLAMA_DIR, captureAndDownloadReport, expectModelReady, openWorkbench, screenshot, selectBackend } from './workbench-helpers';

test('the page answers while a capture runs, and cancel stops it', async ({ page }, testInfo) => {
  await openWorkbench(page);
  await expectModelReady(page);
  await selectBackend(page, 'wasm');
  // A long set (the harmful prompts many times over, each made unique so no cache entry matches), long enough
  // that the capture cannot finish during the checks below even on an idle machine: the bar starts to move
  // while the chat template is applied, so the checks begin seconds before the first forward pass.
  const lines = readFileSync(join(PROMPTS_DIR, 'harmful.train.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => (JSON.parse(line) as { prompt: string }).prompt);
  const many = Array.from({ length: 20_000 }, (_, index) => `${lines[index % lines.length]} (variant ${index} ${Date.now()})`);
  // Imported as a file, as a user brings a large set: typing it with fill() costs Chromium's editor minutes
  // (inserting text with thousands of line breaks is quadratic there), which measures the test tool, not the app.
  await page.getByTestId('prompts.harmful-file').setInputFiles({ name: 'many.txt', mimeType: 'text/plain', buffer: Buffer.from(many.join('\n')) });
  await expect(page.getByText('20000 prompts')).toBeVisible();

  await page.getByTestId('capture.run').click();
  const progress = page.getByTestId('capture.progress');
  await expect(progress).toHaveAttribute('data-state', 'running');
  // Work on the prompts has begun (the chat template first: "n/20000 prompts tokenized"), long before it could end.
  await expect(page.getByTestId('capture.detail')).toContainText(/\d+\/\d+ prompts/, { timeout: 120_000 });

  // The main thread runs tasks and paints frames while the worker computes: the samples below come back, and
  // typing lands, while the capture is still running. A main thread blocked by the capture would answer only once
  // it ended. The delays are logged for reading, not asserted: they measure the machine's load, not the app.
  const delays = await page.evaluate(async () => {
    const samples: { task: number; frame: number }[] = [];
    for (let sample = 0; sample < 5; sample++) {
      const start = performance.now();
      const task = await new Promise<number>((resolve) => setTimeout(() => resolve(performance.now() - start), 0));
      const frameStart = performance.now();
      const frame = await new Promise<number>((resolve) => requestAnimationFrame(() => resolve(performance.now() - frameStart)));
      samples.push({ task, frame });
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
    return { task: median(samples.map((s) => s.task)), frame: median(samples.map((s) => s.frame)) };
  });
  console.log(`main thread during capture: task delay ${delays.task.toFixed(1)} ms, frame delay ${delays.frame.toFixed(1)} ms (medians)`);
  await expect(progress).toHaveAttribute('data-state', 'running');
  await page.getByTestId('prompts.harmless-system').fill('typed during the capture');
  await expect(page.getByTestId('prompts.harmless-system')).toHaveValue('typed during the capture');
  await expect(progress).toHaveAttribute('data-state', 'running');
  await screenshot(page, testInfo, 'capture-running');

  const before = Number(await progress.getAttribute('aria-valuenow'));
  await page.getByTestId('capture.cancel').click();
  await expect(progress).toHaveAttribute('data-state', 'cancelled');
  expect(Number(await progress.getAttribute('aria-valuenow'))).toBeLessThan(100);
  expect(before).toBeLessThan(100);
  // Cancelled is not an error, and nothing was produced.
  await expect(page.getByTestId('error')).toHaveCount(0);
  await expect(page.getByTestId('report.download')).toHaveCount(0);
  // The same worker takes the next capture and finishes it: a cancelled capture neither holds the session nor
  // keeps the worker busy. (That the capture loop itself stops at the next batch is checked on the service,
  // test/integration/ui-analysis-service.test.ts.)
  await page.getByTestId('prompts.harmful').fill(lines.slice(0, 4).join('\n'));
  const report = await captureAndDownloadReport(page, testInfo, 120_000);
  expect(report.counts.harmful).toBe(4);
});

test('a folder without config.json and a corrupt ONNX file show the error banner; the app keeps working', async ({ page }, testInfo) => {
  await openWorkbench(page);
  await expectModelReady(page);

  const noConfig = join(testInfo.outputDir, 'no-config-model');
  mkdirSync(noConfig, { recursive: true });
  writeFileSync(join(noConfig, 'tokenizer.json'), '{}');
  writeFileSync(join(noConfig, 'README.md'), 'not a model');
  await page.getByTestId('model.folder-input').setInputFiles(noConfig);
  const banner = page.getByTestId('error');
  await expect(banner).toBeVisible();
  await expect(banner).toContainText('config.json');
  await expect(banner).toContainText('no-config-model');
  await expect(page.getByTestId('model.status')).not.toContainText('ready');
  await screenshot(page, testInfo, 'error-no-config');

  await page.getByTestId('model.demo').click();
  await expectModelReady(page);
  await expect(banner).toHaveCount(0);

  const corrupt = join(testInfo.outputDir, 'corrupt-onnx-model');
  mkdirSync(join(corrupt, 'onnx'), { recursive: true });
  for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(TOY_LLAMA_DIR, file), join(corrupt, file));
  // The real file's first kilobyte, then garbage: a truncated download looks like this.
  const onnx = readFileSync(join(TOY_LLAMA_DIR, 'onnx', 'model.onnx'));
  writeFileSync(join(corrupt, 'onnx', 'model.onnx'), Buffer.concat([onnx.subarray(0, 1024), Buffer.alloc(4096, 0xff)]));
  await page.getByTestId('model.folder-input').setInputFiles(corrupt);
  await expect(banner).toBeVisible();
  await expect(banner).toContainText('model.onnx');
  await expect(banner).toContainText(/not a readable ONNX model|ONNX/);
  await expect(page.getByTestId('model.status')).not.toContainText('ready');
  await screenshot(page, testInfo, 'error-corrupt-onnx');

  // Still usable: the demo loads and captures.
  await page.getByTestId('model.demo').click();
  await expectModelReady(page);
  await selectBackend(page, 'wasm');
  await page.getByTestId('capture.run').click();
  await expect(page.getByTestId('capture.progress')).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
  await expect(page.getByTestId('plot.auc')).toHaveAttribute('data-rendered', 'true');
});

test('a folder dropped on the model panel loads through its File System Access handle', async ({ page }) => {
  await openWorkbench(page);
  await expectModelReady(page);
  // A real directory handle (the origin-private file system) holding the demo's files, handed to the page's drop
  // handler the way Chromium hands a dropped folder: DataTransferItem.getAsFileSystemHandle().
  await page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const folder = await root.getDirectoryHandle('dropped-demo', { create: true });
    for (const path of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx']) {
      const parts = path.split('/');
      let directory = folder;
      for (const part of parts.slice(0, -1)) directory = await directory.getDirectoryHandle(part, { create: true });
      const writable = await (await directory.getFileHandle(parts[parts.length - 1], { create: true })).createWritable();
      await writable.write(await (await fetch(`/models/demo/${path}`)).blob());
      await writable.close();
    }
    (DataTransferItem.prototype as unknown as { getAsFileSystemHandle: () => Promise<FileSystemHandle> }).getAsFileSystemHandle = async () => folder;
    const transfer = new DataTransfer();
    transfer.items.add(new File(['placeholder'], 'dropped-demo'));
    const region = document.querySelector('[aria-labelledby="region-model"]')!;
    region.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    region.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  });
  await expect(page.getByTestId('model.status')).toContainText('dropped-demo ready');
  // Capture is possible (tokenizer + ONNX); export is not (no safetensors in the dropped folder), and the panel says so.
  await expect(page.getByText('Export needs the original *.safetensors weights')).toBeVisible();
  await expect(page.getByTestId('capture.run')).toBeEnabled();
});
