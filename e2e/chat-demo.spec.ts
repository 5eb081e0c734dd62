/**
 * Chat and evaluation on the demo model (planted refusal direction): a refusal prompt is refused by the base
 * column and answered by the ablated one; the evaluation shows 100% → 0% and a KL; the sweep plot selects a
 * layer; Stop ends both replies mid-way and no token follows it; sending while generating is refused with a message.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { isRefusal } from '../src/core/refusal';
import { clickPlotPoint, firstPrompt, runEvaluationInPage, sendAndWait, stopAndTime, writeDirectionJson } from './chat-helpers';
import { DEMO_MODEL_DIR, PROMPTS_DIR, expectModelReady, openWorkbench, screenshot, selectBackend } from './workbench-helpers';

test('demo model: base refuses and ablated complies, evaluation 100% → 0% with a KL, sweep point selects its layer', async ({ page }, testInfo) => {
  await openWorkbench(page);
  await expectModelReady(page);
  await selectBackend(page, 'wasm');
  // The default prompt sets (shell: no system prompt vs terminal agent) give the direction per layer.
  await page.getByTestId('capture.run').click();
  await expect(page.getByTestId('capture.progress')).toHaveAttribute('data-state', 'done', { timeout: 240_000 });
  const layer = Number(await page.getByTestId('layer.selected').innerText());

  const started = Date.now();
  const replies = await sendAndWait(page, firstPrompt(join(PROMPTS_DIR, 'shell_nosys.test.jsonl')));
  testInfo.annotations.push({ type: 'first chat turn (models loaded + generated)', description: `${Date.now() - started} ms` });
  console.log(`first chat turn (models loaded + both replies) ${Date.now() - started} ms`);
  expect(isRefusal(replies.base), `base reply: ${replies.base}`).toBe(true);
  expect(isRefusal(replies.ablated), `ablated reply: ${replies.ablated}`).toBe(false);
  expect(replies.ablated.trim().length).toBeGreaterThan(0);
  await expect(page.getByTestId('chat.base').locator('mark.refusal-marker')).not.toHaveCount(0);
  await expect(page.getByTestId('chat.ablated').locator('mark.refusal-marker')).toHaveCount(0);

  // The held-out halves of the default preset: shell_nosys.test (A) and shell_agent.test (B).
  await expect(page.getByText('held-out: shell_nosys.test.jsonl', { exact: true }).first()).toBeVisible();
  const evaluationStarted = Date.now();
  const numbers = await runEvaluationInPage(page);
  testInfo.annotations.push({ type: 'evaluation (18 + 18 prompts)', description: `${Date.now() - evaluationStarted} ms` });
  console.log(`evaluation (18 + 18 prompts) ${Date.now() - evaluationStarted} ms, KL ${numbers.kl}`);
  expect(numbers.base).toBe(1);
  expect(numbers.ablated).toBe(0);
  await expect(page.getByTestId('eval.refusal-base')).toHaveText('100%');
  await expect(page.getByTestId('eval.refusal-ablated')).toHaveText('0%');
  expect(Number.isFinite(numbers.kl) && numbers.kl >= 0).toBe(true);
  await expect(page.getByTestId('eval.kl')).toHaveText(/^\d/);
  await expect(page.getByTestId('eval.samples').locator('tbody tr')).toHaveCount(18);
  await expect(page.getByTestId('eval.samples').locator('mark.refusal-marker').first()).toBeVisible();
  await screenshot(page, testInfo, 'demo-chat-evaluation');

  await page.getByTestId('sweep.run').click();
  await expect(page.getByTestId('sweep.progress')).toHaveAttribute('data-state', 'done', { timeout: 240_000 });
  await expect(page.getByTestId('plot.sweep')).toHaveAttribute('data-rendered', 'true');
  const swept = await page.getByTestId('plot.sweep').evaluate((element) => (element as unknown as { data: { x: number[] }[] }).data[0]!.x);
  expect(swept.length).toBeGreaterThan(1);
  const other = swept.find((index) => index !== layer)!;
  await clickPlotPoint(page, 'plot.sweep', other);
  await expect(page.getByTestId('layer.selected')).toHaveText(String(other));
  await screenshot(page, testInfo, 'demo-sweep');
});

test('Stop ends both replies mid-way; a message sent while generating is refused with a notice and kept', async ({ page }, testInfo) => {
  const planted = (JSON.parse(readFileSync(join(DEMO_MODEL_DIR, 'planted_direction.json'), 'utf8')) as { direction: number[] }).direction;
  const directionFile = writeDirectionJson(testInfo.outputPath('planted.json'), planted);
  await openWorkbench(page);
  await expectModelReady(page);
  await selectBackend(page, 'wasm');
  await page.getByTestId('chat.direction-file-input').setInputFiles(directionFile);
  await expect(page.getByTestId('chat.direction')).toContainText('planted.json');

  // End-of-turn suppressed up to the demo's context (512): a reply long enough to be stopped mid-way.
  await page.getByTestId('chat.max-tokens').fill('480');
  await page.getByTestId('chat.min-tokens').fill('480');
  await page.getByTestId('chat.input').fill('Tell me about the weather today.');
  await page.getByTestId('chat.send').click();
  await expect(page.getByTestId('chat.base')).toHaveAttribute('data-state', 'streaming', { timeout: 120_000 });
  await expect(page.getByTestId('chat.ablated')).toHaveAttribute('data-state', 'streaming', { timeout: 60_000 });

  await page.getByTestId('chat.input').fill('And tomorrow?');
  await page.getByTestId('chat.input').press('Enter');
  await expect(page.getByTestId('chat.notice')).toContainText('still being generated');
  await expect(page.getByTestId('chat.input')).toHaveValue('And tomorrow?');

  const latency = await stopAndTime(page);
  testInfo.annotations.push({ type: 'stop latency', description: `${latency.toFixed(0)} ms` });
  console.log(`stop latency ${latency.toFixed(0)} ms`);
  // Both replies ended as "stopped", not "done" (480 tokens were forced, so they were cut mid-way), and no token
  // lands after Stop: the text seen when both were stopped is the text after the screenshot. The latency is
  // logged for reading; a wall-clock bound would measure the machine's load.
  const atStop: string[] = [];
  for (const side of ['chat.base', 'chat.ablated']) {
    await expect(page.getByTestId(side)).toHaveAttribute('data-state', 'stopped');
    atStop.push(await page.getByTestId(side).innerText());
    expect(atStop.at(-1)!.length).toBeGreaterThan(0);
  }
  await screenshot(page, testInfo, 'demo-chat-stopped');
  expect([await page.getByTestId('chat.base').innerText(), await page.getByTestId('chat.ablated').innerText()]).toEqual(atStop);

  // The kept message goes out once the turn is over; both sides answer it with the history of their own side.
  await page.getByTestId('chat.min-tokens').fill('0');
  await page.getByTestId('chat.max-tokens').fill('48');
  await page.getByTestId('chat.send').click();
  await expect(page.getByTestId('chat.base')).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
  await expect(page.getByTestId('chat.ablated')).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
});
