/**
 * Section 1: `abliterate ablate` on generated Qwen3.5-shaped BF16 models against copies of the same files:
 * `cat` of each file into the output folder (Debian's coreutils 9.1 cat copies a file to a file with
 * copy_file_range, as strace shows: the kernel copies the pages and no byte passes through the process),
 * `cp -r` (copy_file_range too) and a straightforward Node copy
 * that writes the manifest's SHA-256 hashes (bench/node-copy.mjs: what the engine's I/O and hashing alone would
 * cost without its deeper pipelining). Also timed on the same files:
 * the norm-preserving method (`--recipe`, same targets and weight 1) and, where Debian's python3-torch is
 * installed, the PyTorch shard-in-RAM peer (bench/torch_peer.py: each shard read whole, the same targets edited
 * in float32 with torch, saved; once per size, it is slow).
 *
 * Page cache: the model is read once before timing, so every run of every tool reads it from memory (we cannot
 * drop caches without root and side effects on the other users of the machine). Each run's output is flushed
 * with `sync` after its timer stops and deleted, so one run's write-back does not land in the next one's time;
 * the timed part of every tool is the same: until the process exits, with its writes in the page cache.
 * Runs rotate the order of the tools so a drift in machine load hits all of them alike.
 */
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { generateModelFolder } from '../test/helpers/generate-models';
import { planAblation } from '../src/engine/ablate-plan';
import { openNodeModelFolder } from '../src/platform/node-files';
import { median, timeCommand, type RssMethod } from './measure';
import { measuredRow, type BenchRow } from './table';

export interface ModelGeometry {
  hiddenSize: number;
  intermediateSize: number;
  vocabSize: number;
}
/** Qwen3.5-0.8B's block geometry; the vocabulary is cut to 32k so a 0.25 GB model still has several blocks. */
const GEOMETRY: ModelGeometry = { hiddenSize: 1024, intermediateSize: 3584, vocabSize: 32768 };
const SHARDS = 2;
const ABLATE_TARGET_RATIO_TO_CAT = 0.5;
const RSS_GROWTH_LIMIT = 1.2;
const RSS_LIMIT_BYTES = 400e6;
const TORCH_TARGET_SPEEDUP = 5;
const NORM_PRESERVING_LIMIT = 1.2;
const PYTHON = '/usr/bin/python3';

type Tool = 'cat' | 'cp' | 'node-copy' | 'ablate' | 'ablate-np' | 'torch';
const TOOLS: Tool[] = ['cat', 'cp', 'node-copy', 'ablate', 'ablate-np', 'torch'];
const TOOL_NAMES: Record<Tool, string> = {
  cat: 'cat copy',
  cp: 'cp -r',
  'node-copy': 'Node copy + SHA-256',
  ablate: 'abliterate ablate',
  'ablate-np': 'ablate norm-preserving',
  torch: 'PyTorch shard-in-RAM peer',
};

/** Whether Debian's python3-torch imports (the peer is skipped, and says so, where it does not). */
export function torchAvailable(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore', timeout: 120_000 });
    return true;
  } catch {
    return false;
  }
}

export interface AblateBenchOptions {
  sizesGB: number[];
  runs: number;
  /** Keep the generated models in the temp folder for the next bench run. */
  keepModels: boolean;
  /** Run the PyTorch peer (python3-torch importable). */
  torch: boolean;
  log: (line: string) => void;
}

export interface AblateSizeResult {
  sizeGB: number;
  bytes: number;
  files: number;
  blocks: number;
  seconds: Record<Tool, number[]>;
  ratioToCat: number[]; // per run: cat seconds / ablate seconds
  ratioToNodeCopy?: number[]; // per run: Node copy + SHA-256 seconds / ablate seconds (absent in older results)
  ablatePeakRssBytes: number[];
  ablateEngineSeconds: number[]; // the CLI's own timer: planning excluded, Node + tsx start-up excluded
  ablateUserSeconds: number[];
  rssMethod: RssMethod;
  /** Per run where both ran: ablate-np seconds / ablate seconds. */
  normPreservingRatio?: number[];
  /** Per run where the peer ran: torch seconds / ablate seconds (how many times faster ablate is). */
  torchSpeedup?: number[];
  ablateNpPeakRssBytes?: number[];
  /** CPU seconds (user + system) per tool and run. */
  cpuSeconds?: Partial<Record<Tool, number[]>>;
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
export interface BenchModel {
  dir: string;
  modelDir: string;
  direction: string;
  blocks: number;
  /** recipe.json of the norm-preserving method, same targets and weight as the standard run. */
  recipe: string;
  /** {tensor: 'rows' | 'columns'}: what ablate edits, for the PyTorch peer. */
  peerPlan: string;
}

/** The side files every timed tool reads: the norm-preserving recipe and the peer's plan (from ablate's own plan). */
async function writeSideFiles(model: Omit<BenchModel, 'recipe' | 'peerPlan'>): Promise<BenchModel> {
  const recipe = path.join(model.dir, 'recipe-norm-preserving.json');
  await fs.writeFile(recipe, JSON.stringify({ method: 'norm-preserving', direction: 0, projection: 'none', components: { embed: 1, attn: 1, mlp: 1 } }));
  const peerPlan = path.join(model.dir, 'peer-plan.json');
  const raw = JSON.parse(await fs.readFile(model.direction, 'utf8')) as number[];
  const norm = Math.hypot(...raw);
  const plan = await planAblation(await openNodeModelFolder(model.modelDir), { direction: Float32Array.from(raw, (value) => value / norm), scale: 1, targets: ['embed', 'attn', 'mlp'] }, null);
  await fs.writeFile(peerPlan, JSON.stringify(Object.fromEntries([...plan.edits].map(([name, edit]) => [name, edit.orientation]))));
  return { ...model, recipe, peerPlan };
}

export async function prepareModel(sizeGB: number, log: (line: string) => void, geometry: ModelGeometry = GEOMETRY, name = `qwen3_5-bf16-${sizeGB}GB`): Promise<BenchModel> {
  const dir = path.join(BENCH_TMP_ROOT, name);
  const modelDir = path.join(dir, 'model');
  const marker = path.join(dir, 'complete.json');
  const direction = path.join(dir, 'direction.json');
  const wanted = JSON.stringify({ sizeGB, ...geometry, shards: SHARDS });
  if (existsSync(marker) && JSON.parse(await fs.readFile(marker, 'utf8')).options === wanted) {
    const config = JSON.parse(await fs.readFile(path.join(modelDir, 'config.json'), 'utf8'));
    log(`  reusing ${modelDir}`);
    return writeSideFiles({ dir, modelDir, direction, blocks: config.text_config.num_hidden_layers });
  }
  await fs.rm(dir, { recursive: true, force: true });
  const started = Date.now();
  const model = await generateModelFolder(modelDir, { kind: 'qwen3_5', dtype: 'BF16', shards: SHARDS, ...geometry, targetBytes: sizeGB * 1e9 });
  // A dense direction (every coordinate non-zero), so no row of the edit can be skipped.
  await fs.writeFile(direction, JSON.stringify(Array.from({ length: geometry.hiddenSize }, (_, i) => Math.sin(i * 0.37) + 0.1)));
  const blocks = (model.config.text_config as { num_hidden_layers: number }).num_hidden_layers;
  await fs.writeFile(marker, JSON.stringify({ options: wanted, weightBytes: model.weightBytes }));
  log(`  generated ${(model.weightBytes / 1e9).toFixed(2)} GB (${blocks} blocks) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return writeSideFiles({ dir, modelDir, direction, blocks });
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
  if (tool.startsWith('ablate') && !outputs.has('abliteration.json')) throw new Error(`${tool} wrote no abliteration.json`);
}

interface ToolRun {
  seconds: number;
  peakRssBytes: number | null;
  engineSeconds: number | null;
  userSeconds: number | null;
  /** user + system CPU seconds of the process and its children (GNU time), null where not measured. */
  cpuSeconds: number | null;
  rssMethod: RssMethod;
}

async function runTool(tool: Tool, model: BenchModel, catScript: string): Promise<ToolRun> {
  const outDir = path.join(model.dir, `out-${tool}`);
  await fs.rm(outDir, { recursive: true, force: true });
  await fs.rm(`${outDir}.partial`, { recursive: true, force: true });
  let result;
  // Every tool under GNU time: its CPU seconds are a figure a busy machine disturbs far less than wall time.
  if (tool === 'cat') result = await timeCommand('bash', [catScript], { rss: true });
  else if (tool === 'cp') result = await timeCommand('cp', ['-r', model.modelDir, outDir], { rss: true });
  else if (tool === 'node-copy') result = await timeCommand('node', [path.join(repoRoot, 'bench/node-copy.mjs'), model.modelDir, outDir], { rss: true });
  else if (tool === 'torch') result = await timeCommand(PYTHON, [path.join(repoRoot, 'bench/torch_peer.py'), model.modelDir, model.direction, model.peerPlan, outDir], { rss: true });
  else {
    const method = tool === 'ablate-np' ? ['--recipe', model.recipe] : [];
    result = await timeCommand('node', ['bin/abliterate.mjs', 'ablate', '--model', model.modelDir, '--direction', model.direction, ...method, '--out', outDir], { rss: true, cwd: repoRoot });
  }
  const engine = /, ([\d.]+) s\)/.exec(result.stdout);
  const cpuSeconds = result.userSeconds !== null && result.systemSeconds !== null ? result.userSeconds + result.systemSeconds : null;
  return { seconds: result.seconds, peakRssBytes: result.peakRssBytes, engineSeconds: engine ? Number(engine[1]) : null, userSeconds: result.userSeconds, cpuSeconds, rssMethod: result.rssMethod };
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
  // The CLI's bundle is built by `npm ci` and rebuilt on the first run after a source change (bin/cli-bundle.mjs):
  // build it now if needed, so no timed run includes that one-off.
  await timeCommand('node', ['scripts/build-cli.mjs'], { cwd: repoRoot });

  const result: AblateSizeResult = {
    sizeGB,
    bytes,
    files: inputs.length,
    blocks: model.blocks,
    seconds: { cat: [], cp: [], 'node-copy': [], ablate: [], 'ablate-np': [], torch: [] },
    ratioToNodeCopy: [],
    ratioToCat: [],
    ablatePeakRssBytes: [],
    ablateEngineSeconds: [],
    ablateUserSeconds: [],
    rssMethod: 'not measured',
    normPreservingRatio: [],
    torchSpeedup: [],
    ablateNpPeakRssBytes: [],
    cpuSeconds: {},
  };
  for (let run = 0; run < options.runs; run++) {
    const order = TOOLS.map((_, index) => TOOLS[(index + run) % TOOLS.length]);
    const seconds: Partial<Record<Tool, number>> = {};
    for (const tool of order) {
      if (tool === 'torch' && (run > 0 || !options.torch)) continue;
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
      if (tool === 'ablate-np' && measured.peakRssBytes !== null) result.ablateNpPeakRssBytes!.push(measured.peakRssBytes);
      if (measured.cpuSeconds !== null) (result.cpuSeconds![tool] ??= []).push(measured.cpuSeconds);
    }
    result.ratioToCat.push((seconds.cat as number) / (seconds.ablate as number));
    result.ratioToNodeCopy!.push((seconds['node-copy'] as number) / (seconds.ablate as number));
    result.normPreservingRatio!.push((seconds['ablate-np'] as number) / (seconds.ablate as number));
    if (seconds.torch !== undefined) result.torchSpeedup!.push(seconds.torch / (seconds.ablate as number));
    const ran = TOOLS.filter((tool) => seconds[tool] !== undefined);
    log(`  run ${run + 1}/${options.runs}: ${ran.map((tool) => `${tool} ${(seconds[tool] as number).toFixed(2)} s`).join(', ')}, peak RSS ${((result.ablatePeakRssBytes.at(-1) ?? 0) / 1e6).toFixed(0)} MB`);
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
      const samples = size.seconds[tool] ?? [];
      if (samples.length === 0) continue;
      const throughput = samples.map((seconds) => size.bytes / seconds / 1e9);
      rows.push(measuredRow('ablate', `${TOOL_NAMES[tool]} ${label}`, median(throughput), 'GB/s', samples.length, 3, undefined, `median ${median(samples).toFixed(2)} s; ${spread(samples, 2)} s`));
    }
    const ratio = median(size.ratioToCat);
    rows.push(measuredRow('ablate', `ablate / cat throughput ${size.sizeGB} GB`, ratio, '×', runs, 2, { text: `≥ ${ABLATE_TARGET_RATIO_TO_CAT}×`, met: ratio >= ABLATE_TARGET_RATIO_TO_CAT }, `per-run ratios, ${spread(size.ratioToCat, 2)}`));
    if (size.ratioToNodeCopy && size.ratioToNodeCopy.length > 0) {
      rows.push(
        measuredRow('ablate', `ablate / Node copy + SHA-256 throughput ${size.sizeGB} GB`, median(size.ratioToNodeCopy), '×', size.ratioToNodeCopy.length, 2, undefined, `a straightforward Node copy writing the same hashes (bench/node-copy.mjs); per-run ratios, ${spread(size.ratioToNodeCopy, 2)}`),
      );
    }
    if (size.normPreservingRatio && size.normPreservingRatio.length > 0) {
      const np = median(size.normPreservingRatio);
      rows.push(measuredRow('ablate', `norm-preserving / standard time ${size.sizeGB} GB`, np, '×', size.normPreservingRatio.length, 2, { text: `≤ ${NORM_PRESERVING_LIMIT}×`, met: np <= NORM_PRESERVING_LIMIT }, `per-run ratios, ${spread(size.normPreservingRatio, 2)}`));
    }
    if (size.torchSpeedup && size.torchSpeedup.length > 0) {
      const speedup = median(size.torchSpeedup);
      rows.push(measuredRow('ablate', `ablate speed / PyTorch peer ${size.sizeGB} GB`, speedup, '×', size.torchSpeedup.length, 2, { text: `≥ ${TORCH_TARGET_SPEEDUP}×`, met: speedup >= TORCH_TARGET_SPEEDUP }, 'peer seconds / ablate seconds, same run'));
    }
    const cpu = size.cpuSeconds ?? {};
    for (const tool of TOOLS) {
      const samples = cpu[tool] ?? [];
      if (samples.length > 0) rows.push(measuredRow('ablate', `CPU time ${TOOL_NAMES[tool]} ${size.sizeGB} GB`, median(samples), 's', samples.length, 2, undefined, 'user + system seconds (GNU time), all threads and children'));
    }
    if ((cpu.torch ?? []).length > 0 && (cpu.ablate ?? []).length > 0) {
      rows.push(measuredRow('ablate', `CPU time PyTorch peer / ablate ${size.sizeGB} GB`, median(cpu.torch!) / median(cpu.ablate!), '×', cpu.torch!.length, 2, undefined, 'the work each needs, which a busy machine disturbs less than wall time'));
    }
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
