/**
 * Shared steps of the workbench e2e specs: drive the page, run `abliterate analyze` on the same inputs, and
 * compare the two report.json files field by field.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, type Page, type TestInfo } from '@playwright/test';
import type { ReportJson as Report } from '../src/formats/report-json';

export const REPO_ROOT = resolve(import.meta.dirname, '..');
export const DEMO_MODEL_DIR = join(REPO_ROOT, 'public', 'models', 'demo');
export const PROMPTS_DIR = join(REPO_ROOT, 'public', 'prompts');
export const TOY_LLAMA_DIR = process.env.TOY_LLAMA_DIR ?? resolve(REPO_ROOT, 'test', 'fixtures', 'toy-llama');

/** The contract's AUC tolerance between browser (ORT web, f32) and CLI (ORT node, f32) captures. */
export const AUC_TOLERANCE = 1e-3;
/** Cosines and norms come from the same f32 activations through f64 math: as close as the AUCs. */
export const COSINE_TOLERANCE = 1e-3;
export const RELATIVE_NORM_TOLERANCE = 1e-3;

/** The report.json both sides write (one definition, shared with the CLI and the worker API). */
export type { ReportJson as Report, ReportLayer } from '../src/formats/report-json';

export interface PromptFiles {
  harmful: string;
  harmless: string;
  referenceA?: string;
  referenceB?: string;
}

/** Runs the CLI exactly as a user would and returns its report.json. */
export function runCliAnalyze(modelDir: string, prompts: PromptFiles): Report {
  const out = join(mkdtempSync(join(tmpdir(), 'workbench-e2e-')), 'analysis');
  try {
    const args = ['bin/abliterate.mjs', 'analyze', '--model', modelDir, '--harmful', prompts.harmful, '--harmless', prompts.harmless, '--out', out];
    if (prompts.referenceA && prompts.referenceB) args.push('--reference-a', prompts.referenceA, '--reference-b', prompts.referenceB);
    execFileSync(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    return JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
  } finally {
    rmSync(resolve(out, '..'), { recursive: true, force: true });
  }
}

export function expectReportsAgree(browser: Report, cli: Report): void {
  expect(browser.hiddenSize).toBe(cli.hiddenSize);
  expect(browser.numLayers).toBe(cli.numLayers);
  expect(browser.position).toBe(cli.position);
  expect(browser.counts.harmful).toBe(cli.counts.harmful);
  expect(browser.counts.harmless).toBe(cli.counts.harmless);
  expect(browser.counts.heldOut).toBe(cli.counts.heldOut);
  expect(browser.bestLayer).toBe(cli.bestLayer);
  expect(browser.layers).toHaveLength(cli.layers.length);
  cli.layers.forEach((expected, layer) => {
    const actual = browser.layers[layer];
    expect(actual.index).toBe(expected.index);
    expect(Math.abs(actual.auc - expected.auc), `layer ${layer} held-out AUC`).toBeLessThanOrEqual(AUC_TOLERANCE);
    expect(Math.abs(actual.aucTrain - expected.aucTrain), `layer ${layer} train AUC`).toBeLessThanOrEqual(AUC_TOLERANCE);
    if (expected.cosineReference === null) expect(actual.cosineReference).toBeNull();
    else expect(Math.abs(actual.cosineReference! - expected.cosineReference), `layer ${layer} cosine`).toBeLessThanOrEqual(COSINE_TOLERANCE);
    const scale = Math.max(1e-6, Math.abs(expected.meanGapNorm));
    expect(Math.abs(actual.meanGapNorm - expected.meanGapNorm) / scale, `layer ${layer} mean-gap norm`).toBeLessThanOrEqual(RELATIVE_NORM_TOLERANCE);
  });
}

export async function openWorkbench(page: Page): Promise<void> {
  page.on('pageerror', (error) => console.log(`page error: ${error.message}`));
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Abliteration Workbench' })).toBeVisible();
}

export async function selectBackend(page: Page, backend: 'auto' | 'webgpu' | 'wasm'): Promise<void> {
  await page.getByTestId('backend.select').selectOption(backend);
}

/** Loads the prompt sets from files through the editors' import buttons (the parser the CLI uses). */
export async function importPrompts(page: Page, prompts: PromptFiles): Promise<void> {
  await page.getByTestId('prompts.harmful-file').setInputFiles(prompts.harmful);
  await page.getByTestId('prompts.harmless-file').setInputFiles(prompts.harmless);
  for (const [set, file] of [['reference-a', prompts.referenceA], ['reference-b', prompts.referenceB]] as const) {
    if (file) await page.getByTestId(`prompts.${set}-file`).setInputFiles(file);
    else {
      await page.getByTestId(`prompts.${set}`).fill('');
      await page.getByTestId(`prompts.${set}-system`).fill('');
    }
  }
}

export async function expectModelReady(page: Page): Promise<void> {
  await expect(page.getByTestId('model.status')).toContainText('ready', { timeout: 120_000 });
}

/** Runs a capture to the end and returns the report the page downloads. */
export async function captureAndDownloadReport(page: Page, testInfo: TestInfo, timeout = 240_000): Promise<Report> {
  await page.getByTestId('capture.run').click();
  await expect(page.getByTestId('capture.progress')).toHaveAttribute('data-state', /done|failed/, { timeout });
  await expect(page.getByTestId('error')).toHaveCount(0);
  await expect(page.getByTestId('capture.progress')).toHaveAttribute('aria-valuenow', '100');
  const downloadPromise = page.waitForEvent('download');
  await page.getByTestId('report.download').click();
  const download = await downloadPromise;
  expect(download.suggestedFilename()).toBe('report.json');
  const path = testInfo.outputPath('report.json');
  await download.saveAs(path);
  return JSON.parse(readFileSync(path, 'utf8')) as Report;
}

/** Both layer plots drew L+1 points and the recommended layer is the selected one. */
export async function expectPlotsAndSelection(page: Page, report: Report): Promise<void> {
  const layerIndices = String(report.numLayers + 1);
  for (const plot of ['plot.auc', 'plot.cosine']) {
    await expect(page.getByTestId(plot)).toHaveAttribute('data-rendered', 'true');
    await expect(page.getByTestId(plot)).toHaveAttribute('data-point-count', layerIndices);
    // What Plotly holds, not only what we told it: the first trace has one point per layer index.
    const plotted = await page.getByTestId(plot).evaluate((element) => ((element as unknown as { data?: { x: unknown[] }[] }).data?.[0]?.x ?? []).length);
    expect(plotted).toBe(report.numLayers + 1);
  }
  await expect(page.getByTestId('layer.selected')).toHaveText(String(report.bestLayer));
  await expect(page.getByTestId('layer.input')).toHaveValue(String(report.bestLayer));
}

export async function screenshot(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  const path = testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path, fullPage: true });
  await testInfo.attach(name, { path, contentType: 'image/png' });
}

/** Text boxes may touch (shared baselines) but not cover each other by more than this many square pixels. */
const OVERLAP_AREA_TOLERANCE = 1;

/** Every pair of visible text elements (ticks, legend, axis titles) in a Plotly container, checked for overlap. */
export async function overlappingTexts(page: Page, testId: string): Promise<string[]> {
  return page.getByTestId(testId).evaluate((element, tolerance) => {
    const boxes = [...element.querySelectorAll('svg.main-svg text')]
      .filter((text) => (text.textContent ?? '').trim().length > 0 && !text.closest('.hoverlayer'))
      .map((text) => ({ text: text.textContent!.trim(), box: text.getBoundingClientRect() }))
      .filter(({ box }) => box.width > 0 && box.height > 0);
    const overlaps: string[] = [];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i]!.box;
        const b = boxes[j]!.box;
        const width = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const height = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (width > 0 && height > 0 && width * height > tolerance) overlaps.push(`"${boxes[i]!.text}" × "${boxes[j]!.text}"`);
      }
    }
    return overlaps;
  }, OVERLAP_AREA_TOLERANCE);
}
