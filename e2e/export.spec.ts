/**
 * Export in headless Chromium: the demo model and a generated Qwen3.5-shaped BF16 sharded model go through the
 * export panel (direction imported from a file, per-layer row picked with `layer.input`), and every delivered
 * file must be byte-identical to what `abliterate ablate` writes with the same direction — shards, index,
 * copied files and abliteration.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { unzipSync } from 'fflate';
import { generateModelFolder } from '../test/helpers/generate-models';
import { collectDownloads, expectIdenticalTrees, readTree, REPO_ROOT, runCliAblate, waitForExportDone, writeJsonDirection, writePerLayerDirections } from './export-support';

const DEMO_MODEL_DIR = join(REPO_ROOT, 'public', 'models', 'demo');

let work: string;
test.beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'export-e2e-'));
});
test.afterEach(() => rmSync(work, { recursive: true, force: true }));

test('exports the demo model as one download per file, byte-identical to abliterate ablate', async ({ page }) => {
  page.on('pageerror', (error) => console.log(`page error: ${error.message}`));
  await page.goto('/');
  await page.getByTestId('model.demo').click();
  await expect(page.getByTestId('model.status')).toContainText('ready', { timeout: 120_000 });
  const config = JSON.parse(readFileSync(join(DEMO_MODEL_DIR, 'config.json'), 'utf8'));
  const direction = writeJsonDirection(work, config.hidden_size);
  await page.getByTestId('direction.file-input').setInputFiles(direction);
  await page.getByTestId('export.target').selectOption('downloads');
  const downloads = collectDownloads(page);
  await page.getByTestId('export.run').click();
  await waitForExportDone(page, 180_000);

  const cliOut = join(work, 'cli');
  runCliAblate(DEMO_MODEL_DIR, direction, cliOut);
  const cli = readTree(cliOut);
  await expect.poll(() => downloads.length, { timeout: 60_000 }).toBe(cli.size);
  const browserDir = join(work, 'browser');
  mkdirSync(browserDir);
  const browser = new Map<string, Buffer>();
  for (const download of downloads) {
    const saved = join(browserDir, download.suggestedFilename());
    await download.saveAs(saved);
    // Downloads cannot hold folders: the panel names "onnx/model.onnx" as "onnx__model.onnx".
    browser.set(download.suggestedFilename().split('__').join('/'), readFileSync(saved));
  }
  const matched = expectIdenticalTrees(browser, cli);
  console.log(`demo export: ${matched.files} files, ${matched.bytes} bytes identical to abliterate ablate`);
  await expect(page.getByTestId('error')).toHaveCount(0);
});

for (const backend of ['auto', 'webgpu'] as const) {
test(`exports a generated Qwen3.5-shaped BF16 sharded model (no ONNX) as one zip on the ${backend} backend, byte-identical to abliterate ablate`, async ({ page }) => {
  page.on('pageerror', (error) => console.log(`page error: ${error.message}`));
  const modelDir = join(work, 'qwen3_5-bf16');
  const generated = await generateModelFolder(modelDir, { kind: 'qwen3_5', dtype: 'BF16', shards: 3, seed: 5 });
  const text = (generated.config.text_config ?? generated.config) as { hidden_size: number; num_hidden_layers: number };
  const directions = writePerLayerDirections(work, text.num_hidden_layers + 1, text.hidden_size);
  const layer = Math.min(2, text.num_hidden_layers);

  await page.goto('/');
  await page.getByTestId('model.folder-input').setInputFiles(modelDir);
  await expect(page.getByTestId('model.status')).toContainText('ready', { timeout: 120_000 });
  await page.getByTestId('direction.file-input').setInputFiles(directions);
  await page.getByTestId('layer.input').fill(String(layer));
  await page.getByTestId('export.target').selectOption('zip');
  await page.getByTestId('export.backend').selectOption(backend);
  const downloads = collectDownloads(page);
  await page.getByTestId('export.run').click();
  await waitForExportDone(page, 240_000);
  if (backend === 'webgpu') await expect(page.getByTestId('export.status')).toContainText('webgpu');
  console.log(`status: ${await page.getByTestId('export.status').textContent()}`);
  for (const note of await page.getByTestId('export.note').allTextContents()) console.log(`note: ${note}`);
  await expect.poll(() => downloads.length, { timeout: 60_000 }).toBe(1);
  const zipPath = join(work, downloads[0].suggestedFilename());
  await downloads[0].saveAs(zipPath);
  const browser = new Map(Object.entries(unzipSync(readFileSync(zipPath))).map(([path, bytes]) => [path, Buffer.from(bytes)]));

  const cliOut = join(work, 'cli');
  runCliAblate(modelDir, directions, cliOut, ['--layer', String(layer)]);
  const matched = expectIdenticalTrees(browser, readTree(cliOut));
  const manifest = JSON.parse(browser.get('abliteration.json')!.toString('utf8'));
  expect(manifest.direction.layer).toBe(layer);
  expect(manifest.editedTensors.length).toBeGreaterThan(0);
  console.log(`Qwen3.5 BF16 export (${backend}): ${matched.files} files, ${matched.bytes} bytes identical to abliterate ablate; ${manifest.editedTensors.length} tensors edited`);
});
}

test('a cancelled export leaves no output and no download', async ({ page }) => {
  const modelDir = join(work, 'llama-f32');
  await generateModelFolder(modelDir, { kind: 'llama-bias', dtype: 'F32', shards: 2, targetBytes: 200_000_000, seed: 3 });
  const config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8'));
  const direction = writeJsonDirection(work, config.hidden_size);
  await page.goto('/');
  await page.getByTestId('model.folder-input').setInputFiles(modelDir);
  await expect(page.getByTestId('model.status')).toContainText('ready', { timeout: 120_000 });
  await page.getByTestId('direction.file-input').setInputFiles(direction);
  await page.getByTestId('export.target').selectOption('downloads');
  const downloads = collectDownloads(page);
  await page.getByTestId('export.run').click();
  await expect(page.getByTestId('export.progress')).toHaveAttribute('aria-valuenow', /^([1-9]|[1-8]\d)$/, { timeout: 60_000 });
  await page.getByTestId('export.cancel').click();
  await expect(page.getByTestId('export.status')).toHaveAttribute('data-state', 'cancelled', { timeout: 60_000 });
  await expect(page.getByTestId('error')).toHaveCount(0);
  // The staging folder in the origin-private file system holds nothing: no partial, no final folder.
  const staged = await page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const names: string[] = [];
    try {
      const staging = await root.getDirectoryHandle('abliteration-exports');
      for await (const name of (staging as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
    } catch {
      /* no staging folder at all */
    }
    return names;
  });
  expect(staged).toEqual([]);
  expect(downloads).toHaveLength(0);
});

test('exports to a picked folder: streamed into NAME.partial, moved to NAME after verification', async ({ page }) => {
  // The directory picker is a native dialog headless Chromium cannot answer: hand the page a folder of its
  // origin-private file system instead, which is the same FileSystemDirectoryHandle API.
  await page.addInitScript(() => {
    (window as unknown as { showDirectoryPicker: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker = async () =>
      (await navigator.storage.getDirectory()).getDirectoryHandle('picked', { create: true });
  });
  await page.goto('/');
  await page.evaluate(async () => (await navigator.storage.getDirectory()).removeEntry('picked', { recursive: true }).catch(() => undefined));
  await page.getByTestId('model.demo').click();
  await expect(page.getByTestId('model.status')).toContainText('ready', { timeout: 120_000 });
  const config = JSON.parse(readFileSync(join(DEMO_MODEL_DIR, 'config.json'), 'utf8'));
  const direction = writeJsonDirection(work, config.hidden_size, 23);
  await page.getByTestId('direction.file-input').setInputFiles(direction);
  await page.getByTestId('export.target').selectOption('folder');
  await page.getByTestId('export.run').click();
  await waitForExportDone(page, 180_000);

  const picked = await page.evaluate(async () => {
    const folder = await (await navigator.storage.getDirectory()).getDirectoryHandle('picked');
    type Entries = { entries(): AsyncIterable<[string, FileSystemHandle]> };
    const files: Record<string, string> = {};
    const top: string[] = [];
    const walk = async (directory: FileSystemDirectoryHandle, prefix: string) => {
      for await (const [name, handle] of (directory as unknown as Entries).entries()) {
        if (handle.kind === 'directory') await walk(handle as FileSystemDirectoryHandle, `${prefix}${name}/`);
        else {
          const bytes = new Uint8Array(await (await (handle as FileSystemFileHandle).getFile()).arrayBuffer());
          let binary = '';
          for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
          files[`${prefix}${name}`] = btoa(binary);
        }
      }
    };
    for await (const [name] of (folder as unknown as Entries).entries()) top.push(name);
    await walk(folder, '');
    return { top, files };
  });
  expect(picked.top).toEqual(['demo-abliterated']); // no demo-abliterated.partial left behind
  const browser = new Map(Object.entries(picked.files).map(([path, base64]) => [path.replace(/^demo-abliterated\//, ''), Buffer.from(base64, 'base64')]));
  const cliOut = join(work, 'cli');
  runCliAblate(DEMO_MODEL_DIR, direction, cliOut);
  const matched = expectIdenticalTrees(browser, readTree(cliOut));
  console.log(`folder export: ${matched.files} files identical to abliterate ablate`);
});

test('a direction of the wrong length fails before any output, with an error naming the file', async ({ page }) => {
  await page.goto('/');
  await page.getByTestId('model.demo').click();
  await expect(page.getByTestId('model.status')).toContainText('ready', { timeout: 120_000 });
  const config = JSON.parse(readFileSync(join(DEMO_MODEL_DIR, 'config.json'), 'utf8'));
  const wrong = join(work, 'wrong-length.json');
  writeFileSync(wrong, JSON.stringify(Array.from({ length: config.hidden_size + 1 }, (_, i) => (i % 2 ? 1 : -1))));
  await page.getByTestId('direction.file-input').setInputFiles(wrong);
  await page.getByTestId('export.target').selectOption('downloads');
  const downloads = collectDownloads(page);
  await page.getByTestId('export.run').click();
  await expect(page.getByTestId('export.status')).toHaveAttribute('data-state', 'failed', { timeout: 60_000 });
  await expect(page.getByTestId('error')).toContainText('wrong-length.json');
  expect(downloads).toHaveLength(0);
});

test('after a capture, exports with the selected layer of the analysis (recorded as directions.safetensors in the manifest)', async ({ page }) => {
  test.setTimeout(600_000);
  await page.goto('/');
  await page.getByTestId('model.demo').click();
  await expect(page.getByTestId('model.status')).toContainText('ready', { timeout: 120_000 });
  await page.getByTestId('backend.select').selectOption('wasm');
  const prompts = join(REPO_ROOT, 'public', 'prompts');
  await page.getByTestId('prompts.harmful-file').setInputFiles(join(prompts, 'harmful.test.jsonl'));
  await page.getByTestId('prompts.harmless-file').setInputFiles(join(prompts, 'harmless.test.jsonl'));
  for (const set of ['reference-a', 'reference-b']) {
    await page.getByTestId(`prompts.${set}`).fill('');
    await page.getByTestId(`prompts.${set}-system`).fill('');
  }
  await page.getByTestId('capture.run').click();
  await expect(page.getByTestId('capture.progress')).toHaveAttribute('data-state', /done|failed/, { timeout: 400_000 });
  await expect(page.getByTestId('error')).toHaveCount(0);
  const layer = 1;
  await page.getByTestId('layer.input').fill(String(layer));
  await expect(page.getByTestId('layer.selected')).toContainText(String(layer));
  await page.getByTestId('export.target').selectOption('zip');
  const downloads = collectDownloads(page);
  await page.getByTestId('export.run').click();
  await waitForExportDone(page, 180_000);
  await expect.poll(() => downloads.length, { timeout: 60_000 }).toBe(1);
  const zipPath = join(work, downloads[0].suggestedFilename());
  await downloads[0].saveAs(zipPath);
  const files = unzipSync(readFileSync(zipPath));
  const manifest = JSON.parse(Buffer.from(files['abliteration.json']).toString('utf8'));
  expect(manifest.direction.file).toBe('directions.safetensors');
  expect(manifest.direction.layer).toBe(layer);
  expect(manifest.editedTensors.length).toBeGreaterThan(0);
  // Every file but the manifest, the edited shard and the model card is the input's, byte for byte; the card
  // keeps the demo's README text below its own part.
  const input = readTree(DEMO_MODEL_DIR);
  for (const [path, bytes] of input) {
    if (path === 'model.safetensors') expect(Buffer.from(files[path]).equals(bytes)).toBe(false);
    else if (path === 'README.md') expect(Buffer.from(files[path]).subarray(files[path].byteLength - bytes.byteLength).equals(bytes)).toBe(true);
    else expect(Buffer.from(files[path]).equals(bytes), path).toBe(true);
  }
  expect(Buffer.from(files['README.md']).toString('utf8')).toMatch(/^---\nbase_model: demo\n/);
});
