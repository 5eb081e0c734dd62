/**
 * Abliterated ONNX from the browser export: the demo exported with `export.onnx` checked, one download per file,
 * is byte-identical to `abliterate ablate --onnx` (so onnx/model.onnx is the abliterated graph), and that folder,
 * loaded as the ablated side of the chat, complies where the base refuses — no hook involved, the weights are edited.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect, test } from '@playwright/test';
import { isRefusal } from '../src/core/refusal';
import { firstPrompt, sendAndWait, writeDirectionJson } from './chat-helpers';
import { collectDownloads, expectIdenticalTrees, readTree, runCliAblate, waitForExportDone } from './export-support';
import { DEMO_MODEL_DIR, PROMPTS_DIR, expectModelReady, openWorkbench, selectBackend } from './workbench-helpers';

/** float32 graphs computing the same function in a different operation order (hooks vs edited weights). */
const LOGIT_TOLERANCE = 1e-4;

let work: string;
test.beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'export-onnx-e2e-'));
});
test.afterEach(() => rmSync(work, { recursive: true, force: true }));

test('export with ONNX: identical to ablate --onnx, and the exported folder as the ablated side complies', async ({ page }) => {
  page.on('pageerror', (error) => console.log(`page error: ${error.message}`));
  const planted = (JSON.parse(readFileSync(join(DEMO_MODEL_DIR, 'planted_direction.json'), 'utf8')) as { direction: number[] }).direction;
  const direction = writeDirectionJson(join(work, 'planted.json'), planted);

  await openWorkbench(page);
  await expectModelReady(page);
  await selectBackend(page, 'wasm');
  await page.getByTestId('direction.file-input').setInputFiles(direction);
  await page.getByTestId('export.onnx').check();
  await page.getByTestId('export.target').selectOption('downloads');
  const downloads = collectDownloads(page);
  await page.getByTestId('export.run').click();
  await waitForExportDone(page, 180_000);
  await expect(page.getByTestId('export.status')).toContainText('ONNX ablated');

  const cliOut = join(work, 'cli');
  runCliAblate(DEMO_MODEL_DIR, direction, cliOut, ['--onnx']);
  const cli = readTree(cliOut);
  await expect.poll(() => downloads.length, { timeout: 60_000 }).toBe(cli.size);
  const exported = join(work, 'demo-abliterated');
  const browser = new Map<string, Buffer>();
  for (const download of downloads) {
    const path = download.suggestedFilename().split('__').join('/'); // downloads cannot hold folders
    const saved = join(exported, path);
    mkdirSync(dirname(saved), { recursive: true });
    await download.saveAs(saved);
    browser.set(path, readFileSync(saved));
  }
  expectIdenticalTrees(browser, cli);
  expect(JSON.parse(browser.get('abliteration.json')!.toString('utf8')).onnx).toBe('ablated');
  expect(browser.get('onnx/model.onnx')!.equals(readFileSync(join(DEMO_MODEL_DIR, 'onnx/model.onnx')))).toBe(false);

  await page.getByRole('radio', { name: 'exported model folder' }).check();
  await page.getByTestId('chat.ablated-folder-input').setInputFiles(exported);
  await expect(page.getByText('ablated side: demo-abliterated')).toBeVisible();
  const replies = await sendAndWait(page, firstPrompt(join(PROMPTS_DIR, 'shell_nosys.test.jsonl')));
  expect(isRefusal(replies.base), replies.base).toBe(true);
  expect(isRefusal(replies.ablated), replies.ablated).toBe(false);
  await expect(page.getByTestId('error')).toHaveCount(0);

  // The loop closed: the exported model against the hook preview of the same direction on the held-out prompts.
  const readout = page.getByTestId('chat.logit-diff');
  await expect(readout).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
  const difference = Number(await page.getByTestId('chat.logit-diff-value').textContent());
  expect(difference).toBeGreaterThanOrEqual(0);
  expect(difference).toBeLessThan(LOGIT_TOLERANCE);
  console.log(`export-onnx e2e: ${await readout.textContent()}`);
});
