/**
 * `npm run bench [-- --quick] [--only ablate,capture,browser,search] [--keep-models] [--webgpu-export]`
 *
 * Prints one table (every figure a median over the stated number of runs, every comparison a ratio of two
 * figures measured in the same run) and writes bench/results.json with the raw samples.
 *   ablate   CLI `abliterate ablate` vs `cat` and `cp` on generated Qwen3.5-shaped BF16 models, peak RSS
 *   capture  tokens/s of the capture graph vs the plain graph: onnxruntime-node, onnxruntime-web wasm and webgpu
 *   browser  export in Chromium vs a plain streamed copy there; WebGPU kernels vs their CPU twin
 *   search   the recipe search loop on toy-llama: trials per minute, MOTPE and random sampling
 * --quick: one 0.25 GB model and fewer repetitions, for a fast check that everything runs.
 * --keep-models: leave the generated models in $TMPDIR/abliterate-bench for the next run (else deleted).
 * --webgpu-export: also time the whole browser export on the WebGPU backend (SwiftShader here: slow).
 * --large: also ablate a generated 8 GB Qwen3.5-4B-shaped model (wall time, peak RSS, GB/s; ~20 GB of disk).
 * --rerender FILE: recompute the table of a saved results.json from its raw samples (no measuring).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ablateRows, benchAblateSize, torchAvailable, type AblateSizeResult } from './ablate';
import { benchAblateLarge, largeRows, type LargeResult } from './ablate-large';
import { benchNodeKernels } from './kernels-node';
import { benchBrowser, browserRows, type BrowserRaw } from './browser';
import { benchCapture, captureRows, type ModelResult } from './capture';
import { benchSearch, searchRows, type SearchRaw } from './search';
import { CHROMIUM_PATH } from './browser-harness';
import { describeMachine } from './measure';
import { formatMarkdownTable, formatTextTable, unavailableRow, type BenchRow } from './table';

type Section = 'ablate' | 'capture' | 'browser' | 'search';
const SECTIONS: Section[] = ['ablate', 'capture', 'browser', 'search'];

interface Settings {
  quick: boolean;
  only: Section[];
  keepModels: boolean;
  webgpuExport: boolean;
  large: boolean;
  /** Recompute the rows of a saved results.json from its raw samples instead of measuring. */
  rerender: string | null;
}

function parseSettings(argv: string[]): Settings {
  const settings: Settings = { quick: false, only: [...SECTIONS], keepModels: false, webgpuExport: false, large: false, rerender: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') settings.quick = true;
    else if (arg === '--keep-models') settings.keepModels = true;
    else if (arg === '--webgpu-export') settings.webgpuExport = true;
    else if (arg === '--large') settings.large = true;
    else if (arg === '--rerender') settings.rerender = argv[++i] ?? null;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const list = arg.includes('=') ? arg.slice('--only='.length) : argv[++i];
      const names = (list ?? '').split(',').map((name) => name.trim()).filter(Boolean);
      for (const name of names) if (!SECTIONS.includes(name as Section)) throw new Error(`--only ${list}: '${name}' is not one of ${SECTIONS.join(', ')}`);
      settings.only = names as Section[];
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: npm run bench [-- --quick] [--only ablate,capture,browser,search] [--keep-models] [--webgpu-export] [--large] [--rerender results.json]\n');
      process.exit(0);
    } else throw new Error(`unknown option ${arg} (try --help)`);
  }
  return settings;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** The rows of a saved run, recomputed from its raw samples. */
async function rerender(file: string): Promise<void> {
  const saved = JSON.parse(await fs.readFile(file, 'utf8'));
  const raw = saved.raw as { ablate?: AblateSizeResult[]; large?: LargeResult; capture?: ModelResult[]; browser?: BrowserRaw; search?: SearchRaw };
  const rows: BenchRow[] = [
    ...(raw.ablate ? ablateRows(raw.ablate) : []),
    ...(raw.large ? largeRows(raw.large) : []),
    ...(raw.capture ? captureRows(raw.capture) : []),
    ...(raw.browser ? browserRows(raw.browser) : []),
    ...(raw.search ? searchRows(raw.search) : []),
  ];
  const out = path.join(import.meta.dirname, 'results.json');
  await fs.writeFile(out, `${JSON.stringify({ ...saved, rows, markdown: formatMarkdownTable(rows), rerenderedAt: new Date().toISOString() }, null, 2)}\n`);
  process.stdout.write(`${formatTextTable(rows)}\n\nrows of the run started ${saved.startedAt}, recomputed into ${path.relative(process.cwd(), out)}\n`);
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  if (settings.rerender) return rerender(settings.rerender);
  const started = new Date();
  const machine = describeMachine(CHROMIUM_PATH);
  log(`bench ${settings.quick ? '(quick) ' : ''}on ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os} (Debian ${machine.debian}), Node ${machine.node}, ${machine.chromium}; load average ${machine.loadAverageAtStart}`);
  const rows: BenchRow[] = [];
  const raw: Record<string, unknown> = {};

  if (settings.only.includes('ablate')) {
    const sizesGB = settings.quick ? [0.25] : [0.5, 1, 2];
    const runs = 3;
    const torch = torchAvailable();
    if (!torch) log('ablate: python3-torch not importable, the PyTorch peer is skipped (apt-get install python3-torch)');
    const results: AblateSizeResult[] = [];
    for (const sizeGB of sizesGB) results.push(await benchAblateSize(sizeGB, { sizesGB, runs, keepModels: settings.keepModels, torch, log }));
    raw.ablate = results;
    rows.push(...ablateRows(results));
    rows.push(...benchNodeKernels(log));
    if (!torch) rows.push(unavailableRow('ablate', 'ablate speed / PyTorch peer', 'python3-torch is not installed (apt-get install python3-torch)', '≥ 5×'));
  }
  if (settings.large) {
    const large = await benchAblateLarge(log);
    raw.large = large;
    rows.push(...largeRows(large));
  }
  if (settings.only.includes('capture')) {
    const capture = await benchCapture({ quick: settings.quick, keepModels: settings.keepModels, log });
    raw.capture = capture.raw;
    rows.push(...capture.rows);
  }
  if (settings.only.includes('browser')) {
    const browser = await benchBrowser({ quick: settings.quick, keepModels: settings.keepModels, webgpuExport: settings.webgpuExport, log });
    raw.browser = browser.raw;
    rows.push(...browser.rows);
  }
  if (settings.only.includes('search')) {
    const search = await benchSearch({ quick: settings.quick, log });
    raw.search = search;
    rows.push(...searchRows(search));
  }

  const finished = new Date();
  const results = {
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    minutes: Number(((finished.getTime() - started.getTime()) / 60000).toFixed(1)),
    quick: settings.quick,
    machine: { ...machine, loadAverageAtEnd: (await import('node:os')).loadavg().map((load) => load.toFixed(2)).join(' ') },
    rows,
    markdown: formatMarkdownTable(rows),
    raw,
  };
  const file = path.join(import.meta.dirname, 'results.json');
  await fs.writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`\n${formatTextTable(rows)}\n\n`);
  const notes = rows.filter((row) => row.note).map((row) => `  ${row.section} / ${row.measure}: ${row.note}`);
  if (notes.length > 0) process.stdout.write(`notes:\n${notes.join('\n')}\n\n`);
  // Ready for the README's Performance section (its "final figures" place), with the conditions it was measured in.
  const conditions = `${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.chromium}; ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${results.minutes} min; load average ${machine.loadAverageAtStart} at the start, ${results.machine.loadAverageAtEnd} at the end`;
  process.stdout.write(`README rows (${conditions}):\n\n${results.markdown}\n\n`);
  process.stdout.write(`${results.minutes} min; raw samples and a Markdown copy of the table in ${path.relative(process.cwd(), file)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
