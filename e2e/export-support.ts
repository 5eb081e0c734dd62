/**
 * Shared steps of the export specs: direction files, `abliterate ablate` run from the test, reading a folder
 * tree, and comparing the browser's export with the CLI's byte for byte.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { expect, type Download, type Page } from '@playwright/test';
import { encodeDirectionsSafetensors } from '../src/formats/direction-file';

export const REPO_ROOT = resolve(import.meta.dirname, '..');

/** Seeded unit vectors, so every run exports with the same directions. */
export function seededUnitRows(rows: number, length: number, seed: number): Float32Array[] {
  let state = seed >>> 0;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296 - 0.5;
  };
  return Array.from({ length: rows }, () => {
    const values = Array.from({ length }, random);
    const norm = Math.hypot(...values);
    return Float32Array.from(values, (value) => value / norm);
  });
}

/** `direction.json` (one [d] array, as f64 text) in `dir`. */
export function writeJsonDirection(dir: string, hiddenSize: number, seed = 7): string {
  const [row] = seededUnitRows(1, hiddenSize, seed);
  const file = join(dir, 'direction.json');
  writeFileSync(file, JSON.stringify(Array.from(row)));
  return file;
}

/** `directions.safetensors` (F32 [L+1, d], as `abliterate analyze` writes it) in `dir`. */
export function writePerLayerDirections(dir: string, layerCount: number, hiddenSize: number, seed = 11): string {
  const file = join(dir, 'directions.safetensors');
  writeFileSync(file, encodeDirectionsSafetensors(seededUnitRows(layerCount, hiddenSize, seed)));
  return file;
}

/**
 * Runs `abliterate ablate` with the direction file given by its bare name (cwd = its folder), as the browser
 * only knows the file's name: the manifests then agree too.
 */
export function runCliAblate(modelDir: string, directionFile: string, out: string, extra: string[] = []): void {
  const directionDir = resolve(directionFile, '..');
  const name = relative(directionDir, directionFile);
  execFileSync(process.execPath, [join(REPO_ROOT, 'bin', 'abliterate.mjs'), 'ablate', '--model', resolve(modelDir), '--direction', name, '--out', resolve(out), ...extra], {
    cwd: directionDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Every file under `dir`, by '/'-separated relative path. */
export function readTree(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (current: string) => {
    for (const entry of readdirSync(current)) {
      const path = join(current, entry);
      if (statSync(path).isDirectory()) walk(path);
      else files.set(relative(dir, path).split('\\').join('/'), readFileSync(path));
    }
  };
  walk(dir);
  return files;
}

/** Asserts the two trees hold the same paths with the same bytes; returns how many files and bytes matched. */
export function expectIdenticalTrees(browser: Map<string, Buffer>, cli: Map<string, Buffer>): { files: number; bytes: number } {
  expect([...browser.keys()].sort()).toEqual([...cli.keys()].sort());
  let bytes = 0;
  for (const [path, expected] of cli) {
    const actual = browser.get(path) as Buffer;
    expect(actual.byteLength, `${path} size`).toBe(expected.byteLength);
    expect(actual.equals(expected), `${path} bytes`).toBe(true);
    bytes += expected.byteLength;
  }
  return { files: cli.size, bytes };
}

/** Collects the page's downloads as they start. */
export function collectDownloads(page: Page): Download[] {
  const downloads: Download[] = [];
  page.on('download', (download) => downloads.push(download));
  return downloads;
}

export async function waitForExportDone(page: Page, timeout: number): Promise<void> {
  await expect(page.getByTestId('export.status')).toHaveAttribute('data-state', /done|failed|cancelled/, { timeout });
  const status = await page.getByTestId('export.status').textContent();
  expect(status, status ?? '').toContain('done');
}
