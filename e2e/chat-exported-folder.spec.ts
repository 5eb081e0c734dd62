/**
 * The ablated column as an exported model folder ("or an exported model loaded as a folder"). The
 * export edits safetensors and copies the ONNX graph byte for byte, so such a folder would answer exactly like
 * the base: the workbench says so. With the demo graph rebuilt from the edited weights (what re-exporting ONNX
 * does for a real model), the folder's column complies where the base refuses.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { isRefusal } from '../src/core/refusal';
import { encodeOnnxModel } from '../src/formats/onnx';
import { readSafetensorsHeader, readTensorBytes } from '../src/formats/safetensors';
import { buildDemoOnnx } from '../scripts/demo/demo-model';
import { openFileSource } from '../src/platform/node-files';
import { firstPrompt, sendAndWait, writeDirectionJson } from './chat-helpers';
import { DEMO_MODEL_DIR, PROMPTS_DIR, REPO_ROOT, expectModelReady, openWorkbench, screenshot, selectBackend } from './workbench-helpers';

async function rebuildDemoGraph(folder: string): Promise<void> {
  const source = await openFileSource(join(folder, 'model.safetensors'));
  const header = await readSafetensorsHeader(source);
  const weights = new Map<string, Float32Array>();
  for (const tensor of header.tensors) weights.set(tensor.name, new Float32Array((await readTensorBytes(source, header, tensor.name)).slice().buffer));
  await source.close();
  const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(folder, 'onnx', 'model.onnx'), encodeOnnxModel(buildDemoOnnx(config, weights)));
}

test('an exported folder as the ablated side: refused while its graph is the base graph, compliant once rebuilt', async ({ page }, testInfo) => {
  const planted = (JSON.parse(readFileSync(join(DEMO_MODEL_DIR, 'planted_direction.json'), 'utf8')) as { direction: number[] }).direction;
  const direction = writeDirectionJson(testInfo.outputPath('planted.json'), planted);
  const exported = testInfo.outputPath('demo-abliterated');
  execFileSync(process.execPath, ['bin/abliterate.mjs', 'ablate', '--model', DEMO_MODEL_DIR, '--direction', direction, '--out', exported], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const prompt = firstPrompt(join(PROMPTS_DIR, 'shell_nosys.test.jsonl'));

  await openWorkbench(page);
  await expectModelReady(page);
  await selectBackend(page, 'wasm');
  await page.getByRole('radio', { name: 'exported model folder' }).check();
  await page.getByTestId('chat.ablated-folder-input').setInputFiles(exported);
  await expect(page.getByText('ablated side: demo-abliterated')).toBeVisible();
  await page.getByTestId('chat.input').fill(prompt);
  await page.getByTestId('chat.send').click();
  await expect(page.getByTestId('error')).toContainText('same ONNX graph as the base model');
  await page.getByRole('button', { name: 'Dismiss error' }).click();

  await rebuildDemoGraph(exported);
  await page.getByTestId('chat.ablated-folder-input').setInputFiles(exported);
  await page.getByRole('button', { name: 'clear' }).click();
  const replies = await sendAndWait(page, prompt);
  expect(isRefusal(replies.base), replies.base).toBe(true);
  expect(isRefusal(replies.ablated), replies.ablated).toBe(false);
  await expect(page.getByTestId('error')).toHaveCount(0);
  await screenshot(page, testInfo, 'demo-exported-folder');
});
