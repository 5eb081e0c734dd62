/**
 * The memory preflight in the browser: the demo with its weights in an external-data file grown (sparse: no disk
 * used, nothing read) to 5 GiB is picked as a folder on wasm; asking the chat a question is refused before any
 * session loads, with the one line that says how much wasm memory it needs and what would fit — and the page
 * stays usable: the demo, picked again, answers.
 */
import { cpSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { moveInitializersToExternalData } from '../test/helpers/onnx-export-check';
import { firstPrompt } from './chat-helpers';
import { DEMO_MODEL_DIR, PROMPTS_DIR, expectModelReady, openWorkbench, selectBackend } from './workbench-helpers';

const GiB = 1024 ** 3;

test('a model too large for wasm is refused before it loads, with what would fit; the page stays usable', async ({ page }) => {
  const work = mkdtempSync(join(tmpdir(), 'memory-preflight-e2e-'));
  try {
    const dir = join(work, 'demo-5gib');
    cpSync(DEMO_MODEL_DIR, dir, { recursive: true });
    moveInitializersToExternalData(join(dir, 'onnx', 'model.onnx'));
    const data = join(dir, 'onnx', 'model.onnx_data');
    truncateSync(data, 5 * GiB); // every initializer still lies inside it; the rest is a hole
    expect(statSync(data).size).toBe(5 * GiB);

    await openWorkbench(page);
    await expectModelReady(page);
    await selectBackend(page, 'wasm');
    await page.getByTestId('model.folder-input').setInputFiles(dir);
    await expect(page.getByTestId('model.status')).toContainText('ready', { timeout: 120_000 });
    const prompt = firstPrompt(join(PROMPTS_DIR, 'shell_nosys.test.jsonl'));
    await page.getByTestId('chat.input').fill(prompt);
    await page.getByTestId('chat.send').click();
    const error = page.getByTestId('error');
    await expect(error).toContainText(/demo-5gib\/onnx\/model\.onnx: needs about [\d.]+ GiB of wasm memory .* but wasm has at most 4\.00 GiB/, { timeout: 120_000 });
    await expect(error).toContainText(/fp16/);

    await page.getByRole('button', { name: 'Dismiss error' }).click();
    await expect(error).toHaveCount(0);
    await page.getByTestId('model.folder-input').setInputFiles(DEMO_MODEL_DIR);
    await expect(page.getByTestId('model.status')).toContainText('ready', { timeout: 120_000 });
    await page.getByTestId('chat.input').fill(prompt);
    await page.getByTestId('chat.send').click();
    await expect(page.getByTestId('chat.base')).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
    await expect(error).toHaveCount(0);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
