/**
 * The terminal-agent use case in the workbench, on the toy-llama fixture (trained to answer agent prompts with
 * JSON actions) loaded through the folder input: the preflight warns that the workbench's default prompts are
 * mostly unknown words to this model, and the evaluation with agent prompts shows base and ablated action rates.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { runEvaluationInPage, writeDirectionJson } from './chat-helpers';
import { TOY_LLAMA_DIR, expectModelReady, openWorkbench, screenshot, selectBackend } from './workbench-helpers';

/** The acceptance bound on toy-llama's base action rate. */
const MIN_BASE_ACTION_RATE = 0.9;

function firstLines(file: string, count: number): string[] {
  return readFileSync(join(TOY_LLAMA_DIR, 'prompts', file), 'utf8').split('\n').filter((line) => line.trim()).slice(0, count);
}

test('toy-llama: the preflight warns on mismatched prompts, the evaluation shows both action rates', async ({ page }, testInfo) => {
  await openWorkbench(page);
  await page.getByTestId('model.folder-input').setInputFiles(TOY_LLAMA_DIR);
  await expectModelReady(page);
  await selectBackend(page, 'wasm');

  // The workbench's default prompts (English shell requests) against toy-llama's 471-word vocabulary.
  await expect(page.getByTestId('prompts.harmful')).not.toHaveValue('');
  await page.getByTestId('preflight.run').click();
  await expect(page.getByTestId('preflight.status')).toHaveAttribute('data-state', 'done', { timeout: 180_000 });
  await expect(page.getByTestId('preflight.warning').and(page.locator('[data-kind="unknown-tokens"]'))).toBeVisible();
  await expect(page.getByTestId('preflight.warning').first()).toContainText('unknown to the tokenizer');
  await expect(page.getByTestId('preflight.template').locator('[data-captured="true"]')).toHaveCount(1);
  await screenshot(page, testInfo, 'toy-llama-preflight');

  // Agent prompts in toy-llama's own words, and a harmful-direction ablation (REFERENCE.json, hidden_states[2]).
  const agentLines = firstLines('shell_agent_test.jsonl', 10);
  await page.getByTestId('prompts.agent').fill(agentLines.join('\n'));
  const reference = JSON.parse(readFileSync(join(TOY_LLAMA_DIR, 'REFERENCE.json'), 'utf8')) as { direction: number[] };
  const direction = writeDirectionJson(testInfo.outputPath('reference-direction.json'), reference.direction);
  await page.getByTestId('chat.direction-file-input').setInputFiles(direction);
  await expect(page.getByTestId('chat.direction')).toContainText('reference-direction.json');
  const harmful = testInfo.outputPath('harmful.jsonl');
  const harmless = testInfo.outputPath('harmless.jsonl');
  writeFileSync(harmful, `${firstLines('harmful_test.jsonl', 8).join('\n')}\n`);
  writeFileSync(harmless, `${firstLines('harmless_test.jsonl', 8).join('\n')}\n`);
  await page.getByTestId('eval.harmful-file').setInputFiles(harmful);
  await page.getByTestId('eval.harmless-file').setInputFiles(harmless);

  await runEvaluationInPage(page, 600_000);
  const rate = async (testId: string) => Number(await page.getByTestId(testId).getAttribute('data-value'));
  const base = await rate('eval.action-base');
  const ablated = await rate('eval.action-ablated');
  console.log(`toy-llama agent evaluation in the panel: action rate ${base} -> ${ablated} on ${agentLines.length} prompts`);
  expect(base).toBeGreaterThanOrEqual(MIN_BASE_ACTION_RATE);
  expect(ablated).toBeGreaterThanOrEqual(0);
  await expect(page.getByTestId('eval.action-base')).toHaveText(/\d+%/);
  await expect(page.getByTestId('eval.action-ablated')).toHaveText(/\d+%/);
  await expect(page.getByTestId('eval.agent-refusal')).toContainText('refusal on agent prompts');
  await screenshot(page, testInfo, 'toy-llama-agent-evaluation');
});
