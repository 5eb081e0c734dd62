/**
 * Section 1: `abliterate ablate` on generated Qwen3.5-shaped BF16 models against two copies of the same files:
 * `cat` of each file into the output folder (user-space read + write, nothing computed: the floor for any tool
 * that must see every byte) and `cp -r` (in-kernel copy_file_range, for reference).
 *
 * Page cache: the model is read once before timing, so every run of every tool reads it from memory (we cannot
 * drop caches without root and side effects on the other users of the machine). Each run's output is flushed
 * with `sync` after its timer stops and deleted, so one run's write-back does not land in the next one's time;
 * the timed part of every tool is the same: until the process exits, with its writes in the page cache.
 * Runs rotate the order of the three tools so a drift in machine load hits all of them alike.
 */
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateModelFolder } from '../test/helpers/generate-models';
import { median, timeCommand, type RssMethod } from './measure';
import { measuredRow, type BenchRow } from './table';

/** Qwen3.5-0.8B's block geometry; the vocabulary is cut to 32k so a 0.25 GB model still has several blocks. */
const GEOMETRY = { hiddenSize: 1024, intermediateSize: 3584, vocabSize: 32768 } as const;
const SHARDS = 2;
const ABLATE_TARGET_RATIO_TO_CAT = 0.5;
const RSS_GROWTH_LIMIT = 1.2;
const RSS_LIMIT_BYTES = 400e6;

type Tool = 'cat' | 'cp' | 'ablate';
const TOOLS: Tool[] = ['cat', 'cp', 'ablate'];

export interface AblateBenchOptions {
  sizesGB: number[];
  runs: number;
  /** Keep the generated models in the temp folder for the next bench run. */
  keepModels: boolean;
  log: (line: string) => void;
}

export interface AblateSizeResult {
  sizeGB: number;
  bytes: number;
  files: number;
  blocks: number;
  seconds: Record<Tool, number[]>;
  ratioToCat: number[]; // per run: cat seconds / ablate seconds
  ablatePeakRssBytes: number[];
  ablateEngineSeconds: number[]; // the CLI's own timer: planning excluded, Node + tsx start-up excluded
  ablateUserSeconds: number[];
  rssMethod: RssMethod;
}

const repoRoot = path.resolve(import.meta.dirname, '..');
export const BENCH_TMP_ROOT = path.join(os.tmpdir(), 'abliterate-bench');

async function listFiles(dir: string): Promise<{ relative: string; size: number }[]> {
  const out: { relative: string; size: number }[] = [];
  const walk = async (current: string, prefix: string) => {
    for (const entry of (await fs.readdir(current, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(current, entry.name);
      const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(full, relative);
      else out.push({ relative, size: (await fs.stat(full)).size });
    }
  };
  await walk(dir, '');
  return out;
}

/** Generates the model of `sizeGB` once (reused when a previous --keep-models run left it complete). */
export async function prepareModel(sizeGB: number, log: (line: string) => void): Promise<{ dir: string; modelDir: string; direction: string; blocks: number }> {
  const dir = path.join(BENCH_TMP_ROOT, `qwen3_5-bf16-${sizeGB}GB`);
  const modelDir = path.join(dir, 'model');
  const marker = path.join(dir, 'complete.json');
  const direction = path.join(dir, 'direction.json');
  const wanted = JSON.stringify({ sizeGB, ...GEOMETRY, shards: SHARDS });
  if (existsSync(marker) && JSON.parse(await fs.readFile(marker, 'utf8')).options === wanted) {
    const config = JSON.parse(await fs.readFile(path.join(modelDir, 'config.json'), 'utf8'));
    log(`  reusing ${modelDir}`);
    return { dir, modelDir, direction, blocks: config.text_config.num_hidden_layers };
  }
  await fs.rm(dir, { recursive: true, force: true });
  const started = Date.now();
  const model = await generateModelFolder(modelDir, { kind: 'qwen3_5', dtype: 'BF16', shards: SHARDS, ...GEOMETRY, targetBytes: sizeGB * 1e9 });
  // A dense direction (every coordinate non-zero), so no row of the edit can be skipped.
  await fs.writeFile(direction, JSON.stringify(Array.from({ length: GEOMETRY.hiddenSize }, (_, i) => Math.sin(i * 0.37) + 0.1)));
  const blocks = (model.config.text_config as { num_hidden_layers: number }).num_hidden_layers;
  await fs.writeFile(marker, JSON.stringify({ options: wanted, weightBytes: model.weightBytes }));
  log(`  generated ${(model.weightBytes / 1e9).toFixed(2)} GB (${blocks} blocks) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { dir, modelDir, direction, blocks };
}

async function writeCatScript(modelDir: string, outDir: string, files: { relative: string }[], scriptPath: string): Promise<void> {
  const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
  const folders = [...new Set(files.map((file) => path.posix.dirname(file.relative)).filter((folder) => folder !== '.'))];
  const lines = ['set -e', `mkdir -p ${quote(outDir)}`, ...folders.map((folder) => `mkdir -p ${quote(path.join(outDir, folder))}`)];
  for (const file of files) lines.push(`cat ${quote(path.join(modelDir, file.relative))} > ${quote(path.join(outDir, file.relative))}`);
  await fs.writeFile(scriptPath, `${lines.join('\n')}\n`);
}

/** Every input file has an output of the same size (the ablated shards keep their layout), plus the manifest. */
async function checkOutput(tool: Tool, outDir: string, inputs: { relative: string; size: number }[]): Promise<void> {
  const outputs = new Map((await listFiles(outDir)).map((file) => [file.relative, file.size]));
  for (const input of inputs) {
    if (outputs.get(input.relative) !== input.size) throw new Error(`${tool}: ${input.relative} is ${outputs.get(input.relative)} bytes in the output, ${input.size} in the input`);
  }
  if (tool === 'ablate' && !outputs.has('abliteration.json')) throw new Error('ablate wrote no abliteration.json');
}

async function runTool(tool: Tool, model: { dir: string; modelDir: string; direction: string }, catScript: string): Promise<{ seconds: number; peakRssBytes: number | null; engineSeconds: number | null; userSeconds: number | null; rssMethod: RssMethod }> {
  const outDir = path.join(model.dir, `out-${tool}`);
  await fs.rm(outDir, { recursive: true, force: true });
  await fs.rm(`${outDir}.partial`, { recursive: true, force: true });
  let result;
  if (tool === 'cat') result = await timeCommand('bash', [catScript]);
  else if (tool === 'cp') result = await timeCommand('cp', ['-r', model.modelDir, outDir]);
  else {
    result = await timeCommand('node', ['bin/abliterate.mjs', 'ablate', '--model', model.modelDir, '--direction', model.direction, '--out', outDir], { rss: true, cwd: repoRoot });
  }
  const engine = /, ([\d.]+) s\)/.exec(result.stdout);
  return { seconds: result.seconds, peakRssBytes: result.peakRssBytes, engineSeconds: engine ? Number(engine[1]) : null, userSeconds: result.userSeconds, rssMethod: result.rssMethod };
}

async function flushAndRemove(dir: string): Promise<void> {
  await timeCommand('sync', []);
  await fs.rm(dir, { recursive: true, force: true });
}

export async function benchAblateSize(sizeGB: number, options: AblateBenchOptions): Promise<AblateSizeResult> {
  const { log } = options;
  log(`ablate: ${sizeGB} GB model`);
  const model = await prepareModel(sizeGB, log);
  const inputs = await listFiles(model.modelDir);
  const bytes = inputs.reduce((sum, file) => sum + file.size, 0);
  const catScript = path.join(model.dir, 'cat-copy.sh');
  await writeCatScript(model.modelDir, path.join(model.dir, 'out-cat'), inputs, catScript);
  // Warm the page cache: every timed run then reads from memory (see the header comment).
  await timeCommand('bash', ['-c', `cat ${inputs.map((file) => `'${path.join(model.modelDir, file.relative)}'`).join(' ')} > /dev/null`]);
  await timeCommand('sync', []);

  const result: AblateSizeResult = {
    sizeGB,
    bytes,
    files: inputs.length,
    blocks: model.blocks,
    seconds: { cat: [], cp: [], ablate: [] },
    ratioToCat: [],
    ablatePeakRssBytes: [],
    ablateEngineSeconds: [],
    ablateUserSeconds: [],
    rssMethod: 'not measured',
  };
  for (let run = 0; run < options.runs; run++) {
    const order = TOOLS.map((_, index) => TOOLS[(index + run) % TOOLS.length]);
    const seconds: Partial<Record<Tool, number>> = {};
    for (const tool of order) {
      const measured = await runTool(tool, model, catScript);
      const outDir = path.join(model.dir, `out-${tool}`);
      await checkOutput(tool, outDir, inputs);
      await flushAndRemove(outDir);
      seconds[tool] = measured.seconds;
      result.seconds[tool].push(measured.seconds);
      if (tool === 'ablate') {
        if (measured.peakRssBytes !== null) result.ablatePeakRssBytes.push(measured.peakRssBytes);
        if (measured.engineSeconds !== null) result.ablateEngineSeconds.push(measured.engineSeconds);
        if (measured.userSeconds !== null) result.ablateUserSeconds.push(measured.userSeconds);
        result.rssMethod = measured.rssMethod;
      }
    }
    result.ratioToCat.push((seconds.cat as number) / (seconds.ablate as number));
    log(`  run ${run + 1}/${options.runs}: ${TOOLS.map((tool) => `${tool} ${(seconds[tool] as number).toFixed(2)} s`).join(', ')}, peak RSS ${((result.ablatePeakRssBytes.at(-1) ?? 0) / 1e6).toFixed(0)} MB`);
  }
  await fs.rm(catScript, { force: true });
  if (!options.keepModels) await fs.rm(model.dir, { recursive: true, force: true });
  return result;
}

function spread(values: number[], digits: number): string {
  const sorted = [...values].sort((a, b) => a - b);
  return `runs ${sorted.map((value) => value.toFixed(digits)).join(' / ')}`;
}

export function ablateRows(results: readonly AblateSizeResult[]): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const size of results) {
    const label = `${size.sizeGB} GB (${(size.bytes / 1e9).toFixed(2)} GB, ${size.blocks} blocks)`;
    const runs = size.seconds.ablate.length;
    for (const tool of TOOLS) {
      const throughput = size.seconds[tool].map((seconds) => size.bytes / seconds / 1e9);
      rows.push(measuredRow('ablate', `${tool === 'ablate' ? 'abliterate ablate' : tool === 'cat' ? 'cat copy' : 'cp -r'} ${label}`, median(throughput), 'GB/s', runs, 3, undefined, `median ${median(size.seconds[tool]).toFixed(2)} s; ${spread(size.seconds[tool], 2)} s`));
    }
    const ratio = median(size.ratioToCat);
    rows.push(measuredRow('ablate', `ablate / cat throughput ${size.sizeGB} GB`, ratio, '×', runs, 2, { text: `≥ ${ABLATE_TARGET_RATIO_TO_CAT}×`, met: ratio >= ABLATE_TARGET_RATIO_TO_CAT }, `per-run ratios, ${spread(size.ratioToCat, 2)}`));
    if (size.ablateEngineSeconds.length > 0) {
      const engine = median(size.ablateEngineSeconds);
      const startup = median(size.seconds.ablate) - engine;
      rows.push(measuredRow('ablate', `ablate engine only ${size.sizeGB} GB`, size.bytes / engine / 1e9, 'GB/s', size.ablateEngineSeconds.length, 3, undefined, `CLI's own timer (writing only): ${engine.toFixed(1)} s; start-up + validation ${startup.toFixed(1)} s; user CPU ${median(size.ablateUserSeconds).toFixed(1)} s`));
    }
    if (size.ablatePeakRssBytes.length > 0) {
      const rss = median(size.ablatePeakRssBytes);
      const isLargest = size === results[results.length - 1] && results.length > 1;
      rows.push(
        measuredRow('ablate', `ablate peak RSS ${size.sizeGB} GB`, rss / 1e6, 'MB', size.ablatePeakRssBytes.length, 0, isLargest ? { text: `< ${RSS_LIMIT_BYTES / 1e6} MB`, met: rss < RSS_LIMIT_BYTES } : undefined, size.rssMethod),
      );
    }
  }
  if (results.length > 1) {
    const smallest = results[0];
    const largest = results[results.length - 1];
    const ratio = median(largest.ablatePeakRssBytes) / median(smallest.ablatePeakRssBytes);
    rows.push(measuredRow('ablate', `peak RSS ${largest.sizeGB} GB / ${smallest.sizeGB} GB`, ratio, '×', Math.min(largest.ablatePeakRssBytes.length, smallest.ablatePeakRssBytes.length), 2, { text: `≤ ${RSS_GROWTH_LIMIT}×`, met: ratio <= RSS_GROWTH_LIMIT }));
  }
  return rows;
}
