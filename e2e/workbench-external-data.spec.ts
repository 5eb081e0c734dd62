/**
 * A model whose ONNX weights live in an external-data file (how every real export over 2 GB ships): loaded
 * through the folder input, the external file reaches onnxruntime-web as a Blob, and the capture gives the CLI's
 * report. The folder is the demo model with its initializers moved to `onnx/model.onnx_data`.
 */
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { decodeOnnxModel, encodeOnnxModel, onnx } from '../src/formats/onnx';
import {
  DEMO_MODEL_DIR,
  PROMPTS_DIR,
  captureAndDownloadReport,
  expectModelReady,
  expectReportsAgree,
  importPrompts,
  openWorkbench,
  runCliAnalyze,
  selectBackend,
} from './workbench-helpers';

/** Initializers at least this large move to the external file (small constants stay inline, as exporters do). */
const EXTERNAL_THRESHOLD_BYTES = 1024;
const EXTERNAL_FILE = 'model.onnx_data';

function externalizeDemo(target: string): void {
  mkdirSync(join(target, 'onnx'), { recursive: true });
  for (const file of readdirSync(DEMO_MODEL_DIR)) {
    if (file !== 'onnx') copyFileSync(join(DEMO_MODEL_DIR, file), join(target, file));
  }
  const model = decodeOnnxModel('demo model.onnx', readFileSync(join(DEMO_MODEL_DIR, 'onnx', 'model.onnx')));
  const chunks: Uint8Array[] = [];
  let offset = 0;
  let moved = 0;
  for (const tensor of model.graph?.initializer ?? []) {
    const raw = tensor.rawData;
    if (!raw || raw.byteLength < EXTERNAL_THRESHOLD_BYTES) continue;
    const padding = (64 - (offset % 64)) % 64; // ORT maps external data page-aligned when it can
    if (padding) chunks.push(new Uint8Array(padding));
    offset += padding;
    tensor.externalData = [
      onnx.StringStringEntryProto.create({ key: 'location', value: EXTERNAL_FILE }),
      onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
      onnx.StringStringEntryProto.create({ key: 'length', value: String(raw.byteLength) }),
    ];
    tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    tensor.rawData = new Uint8Array(0);
    chunks.push(raw.slice());
    offset += raw.byteLength;
    moved++;
  }
  expect(moved).toBeGreaterThan(0);
  writeFileSync(join(target, 'onnx', 'model.onnx'), encodeOnnxModel(model));
  writeFileSync(join(target, 'onnx', EXTERNAL_FILE), Buffer.concat(chunks));
}

test('a model with ONNX external data loads from a folder and gives the CLI report', async ({ page }, testInfo) => {
  const folder = join(testInfo.outputDir, 'demo-external-data');
  externalizeDemo(folder);
  const prompts = { harmful: join(PROMPTS_DIR, 'harmful.test.jsonl'), harmless: join(PROMPTS_DIR, 'harmless.test.jsonl') };
  const cli = runCliAnalyze(folder, prompts);
  await openWorkbench(page);
  await page.getByTestId('model.folder-input').setInputFiles(folder);
  await expectModelReady(page);
  await expect(page.getByText(`external data ${EXTERNAL_FILE}`)).toBeVisible();
  await selectBackend(page, 'wasm');
  await importPrompts(page, prompts);
  const report = await captureAndDownloadReport(page, testInfo);
  expectReportsAgree(report, cli);
  // No reference here, so only the AUC plot is checked for its L+1 points.
  await expect(page.getByTestId('plot.auc')).toHaveAttribute('data-point-count', String(report.numLayers + 1));
  await expect(page.getByTestId('layer.selected')).toHaveText(String(report.bestLayer));
});
