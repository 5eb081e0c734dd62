/**
 * Shared steps of the chat and evaluation e2e specs: send a chat turn, wait for both replies, run
 * the evaluation, stop a generation and time it inside the page, click a sweep point.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { expect, type Page } from '@playwright/test';
import { REPO_ROOT } from './workbench-helpers';

export interface CliEvaluation {
  base: { refusalRate: number };
  ablated: { refusalRate: number };
  klFirstToken: number;
  klPerPrompt: number[];
  samples: { base: { response: string }; ablated: { response: string } }[];
}

export function firstPrompt(file: string): string {
  const row = JSON.parse(readFileSync(file, 'utf8').split('\n').find((line) => line.trim())!) as { prompt?: string; messages?: { role: string; content: string }[] };
  return row.prompt ?? row.messages!.find((message) => message.role === 'user')!.content;
}

/** `abliterate eval` as a user runs it; returns eval.json. */
export function runCliEval(args: { model: string; direction: string; harmful: string; harmless: string; out: string; layer?: number; markers?: string }): CliEvaluation {
  const argv = ['bin/abliterate.mjs', 'eval', '--model', args.model, '--direction', args.direction, '--harmful', args.harmful, '--harmless', args.harmless, '--out', args.out];
  if (args.layer !== undefined) argv.push('--layer', String(args.layer));
  if (args.markers !== undefined) argv.push('--markers', args.markers);
  execFileSync(process.execPath, argv, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(readFileSync(args.out, 'utf8')) as CliEvaluation;
}

/** Writes a direction as a .json array file (a format both the CLI and the workbench read). */
export function writeDirectionJson(path: string, values: number[]): string {
  writeFileSync(path, JSON.stringify(values));
  return path;
}

export async function sendAndWait(page: Page, message: string, timeout = 120_000): Promise<{ base: string; ablated: string }> {
  await page.getByTestId('chat.input').fill(message);
  await page.getByTestId('chat.send').click();
  await expect(page.getByTestId('chat.base')).toHaveAttribute('data-state', 'done', { timeout });
  await expect(page.getByTestId('chat.ablated')).toHaveAttribute('data-state', 'done', { timeout });
  return { base: await page.getByTestId('chat.base').innerText(), ablated: await page.getByTestId('chat.ablated').innerText() };
}

export async function runEvaluationInPage(page: Page, timeout = 240_000): Promise<{ base: number; ablated: number; kl: number }> {
  await page.getByTestId('eval.run').click();
  await expect(page.getByTestId('eval.progress')).toHaveAttribute('data-state', /done|failed/, { timeout });
  await expect(page.getByTestId('error')).toHaveCount(0);
  await expect(page.getByTestId('eval.progress')).toHaveAttribute('data-state', 'done');
  const value = async (testId: string) => Number(await page.getByTestId(testId).getAttribute('data-value'));
  return { base: await value('eval.refusal-base'), ablated: await value('eval.refusal-ablated'), kl: await value('eval.kl') };
}

/**
 * Clicks Stop inside the page and measures, with the page's own clock, the time until both replies report
 * `stopped` (the worker confirmed the end of generation, not just the button's click).
 */
export async function stopAndTime(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      new Promise<number>((resolve, reject) => {
        const stopped = () => ['chat.base', 'chat.ablated'].every((id) => document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-state') === 'stopped');
        const observer = new MutationObserver(() => {
          if (stopped()) {
            observer.disconnect();
            resolve(performance.now() - started);
          }
        });
        observer.observe(document.body, { subtree: true, attributes: true, childList: true, attributeFilter: ['data-state', 'data-testid'] });
        setTimeout(() => {
          observer.disconnect();
          reject(new Error('replies did not reach "stopped" within 10 s'));
        }, 10_000);
        const started = performance.now();
        (document.querySelector('[data-testid="chat.stop"]') as HTMLButtonElement).click();
      }),
  );
}

/** Clicks a trace point through Plotly's own coordinate mapping (trace 0 of the plot). */
export async function clickPlotPoint(page: Page, testId: string, layer: number): Promise<void> {
  await page.getByTestId(testId).scrollIntoViewIfNeeded();
  const point = await page.getByTestId(testId).evaluate((element, target) => {
    type Axis = { l2p(value: number): number; _offset: number };
    const full = (element as unknown as { _fullLayout: { xaxis: Axis; yaxis: Axis } })._fullLayout;
    const trace = (element as unknown as { data: { x: number[]; y: number[] }[] }).data[0]!;
    const index = trace.x.indexOf(target);
    const box = element.getBoundingClientRect();
    return { x: box.left + full.xaxis._offset + full.xaxis.l2p(target), y: box.top + full.yaxis._offset + full.yaxis.l2p(trace.y[index]!) };
  }, layer);
  await page.mouse.click(point.x, point.y);
}
