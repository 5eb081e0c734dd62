/**
 * Section 2, in headless Chromium:
 *  - WebGPU orthogonalization kernels vs their CPU twin, GB/s on the same BF16 chunks in the same page;
 *  - the workbench's export (its worker, "downloads" target in the origin-private file system) on a generated
 *    Qwen3.5-shaped BF16 model vs a plain streamed copy of the same files through the same output folder.
 * WebGPU here is SwiftShader (a CPU emulation of a GPU): its figures say nothing about a real GPU.
 */
import { promises as fs } from 'node:fs';
import { prepareModel } from './ablate';
import { startBrowserHarness, type BrowserHarness } from './browser-harness';
import { median } from './measure';
import type { ExportTask, ExportTiming } from './pages/export-page';
import type { KernelResult, KernelTask } from './pages/kernels-page';
import { measuredRow, unavailableRow, type BenchRow } from './table';

const EXPORT_TARGET_RATIO_TO_COPY = 0.5;

export interface BrowserBenchOptions {
  quick: boolean;
  keepModels: boolean;
  /** Also time the whole export on the WebGPU backend (SwiftShader here: minutes, and no GPU to learn about). */
  webgpuExport: boolean;
  log: (line: string) => void;
}

export interface BrowserRaw {
  kernels: KernelResult | { unavailable: string };
  exportCpu: (ExportTiming & { sizeGB: number }) | { unavailable: string };
  exportWebgpu: (ExportTiming & { sizeGB: number }) | { unavailable: string };
}

function reason(error: unknown): string {
  return ((error as Error).message ?? String(error)).split('\n')[0].slice(0, 300);
}

async function benchKernels(harness: BrowserHarness, rounds: number): Promise<KernelResult> {
  const page = await harness.openPage('kernels');
  try {
    // An MLP-down chunk of Qwen3.5-0.8B ([1024, 3584]) and an 8192-token slice of its embedding ([8192, 1024]).
    const task: KernelTask = { dModel: 1024, intermediate: 3584, embeddingRows: 8192, rounds };
    return await page.evaluate((argument) => (globalThis as unknown as { runKernelTask: (t: KernelTask) => Promise<KernelResult> }).runKernelTask(argument), task);
  } finally {
    await page.context().close();
  }
}

async function benchExport(harness: BrowserHarness, modelDir: string, task: ExportTask): Promise<ExportTiming> {
  const page = await harness.openPage('export');
  try {
    await page.setInputFiles('#folder', modelDir);
    return await page.evaluate((argument) => (globalThis as unknown as { runExportTask: (t: ExportTask) => Promise<ExportTiming> }).runExportTask(argument), task);
  } finally {
    await page.context().close();
  }
}

export async function benchBrowser(options: BrowserBenchOptions): Promise<{ rows: BenchRow[]; raw: BrowserRaw }> {
  const { log } = options;
  const rounds = options.quick ? 3 : 5;
  const exportRounds = 3;
  // The ratio to the copy is the figure; 0.25 GB keeps the browser part within minutes on a loaded 2-core machine.
  const sizeGB = 0.25;
  const raw: BrowserRaw = { kernels: { unavailable: 'not run' }, exportCpu: { unavailable: 'not run' }, exportWebgpu: { unavailable: 'not run' } };
  let harness: BrowserHarness;
  try {
    harness = await startBrowserHarness(log);
  } catch (error) {
    const why = `Chromium did not start (${reason(error)})`;
    raw.kernels = raw.exportCpu = raw.exportWebgpu = { unavailable: why };
    return { rows: browserRows(raw), raw };
  }
  try {
    log('browser: WebGPU kernels vs CPU twin');
    try {
      raw.kernels = await benchKernels(harness, rounds);
    } catch (error) {
      raw.kernels = { unavailable: reason(error) };
    }
    log(`browser: export of a ${sizeGB} GB model`);
    const model = await prepareModel(sizeGB, log);
    const directionJson = await fs.readFile(model.direction, 'utf8');
    try {
      raw.exportCpu = { sizeGB, ...(await benchExport(harness, model.modelDir, { directionJson, backend: 'cpu', rounds: exportRounds, variants: ['read', 'copy', 'copy+hash', 'export'] })) };
    } catch (error) {
      raw.exportCpu = { unavailable: reason(error) };
    }
    if (options.webgpuExport) {
      log('browser: export on the WebGPU backend');
      try {
        raw.exportWebgpu = { sizeGB, ...(await benchExport(harness, model.modelDir, { directionJson, backend: 'webgpu', rounds: exportRounds, variants: ['copy', 'export'] })) };
      } catch (error) {
        raw.exportWebgpu = { unavailable: reason(error) };
      }
    } else raw.exportWebgpu = { unavailable: 'skipped (run with --webgpu-export; SwiftShader takes minutes here)' };
    if (!options.keepModels) await fs.rm(model.dir, { recursive: true, force: true });
  } finally {
    await harness.close();
  }
  return { rows: browserRows(raw), raw };
}

export function browserRows(raw: BrowserRaw): BenchRow[] {
  const rows: BenchRow[] = [];
  const kernels = raw.kernels;
  if ('unavailable' in kernels) rows.push(unavailableRow('kernels', 'WebGPU kernels vs CPU twin', kernels.unavailable));
  else {
    for (const timing of kernels.timings) {
      const label = `${timing.edit} edit BF16 [${timing.shape.join(', ')}]`;
      const gpu = timing.gpuSeconds.map((seconds) => timing.bytes / seconds / 1e9);
      const cpu = timing.cpuSeconds.map((seconds) => timing.bytes / seconds / 1e9);
      if (timing.elementsBeyondOneUlp > 0) {
        rows.push(unavailableRow('kernels', `WebGPU ${label}`, `${timing.elementsBeyondOneUlp} elements differ from the CPU twin by more than 1 ulp`));
        continue;
      }
      rows.push(measuredRow('kernels', `CPU twin ${label}`, median(cpu), 'GB/s', cpu.length, 3));
      rows.push(measuredRow('kernels', `WebGPU ${label}`, median(gpu), 'GB/s', gpu.length, 3, undefined, `${kernels.adapter}; within 1 ulp of the CPU twin`));
      const ratios = timing.cpuSeconds.map((seconds, round) => seconds / timing.gpuSeconds[round]);
      rows.push(measuredRow('kernels', `WebGPU / CPU twin ${timing.edit}`, median(ratios), '×', ratios.length, 2, undefined, 'SwiftShader: a CPU emulation, not a GPU'));
    }
  }
  for (const [key, backend] of [['exportCpu', 'cpu'], ['exportWebgpu', 'webgpu (SwiftShader)']] as const) {
    const result = raw[key];
    if ('unavailable' in result) {
      rows.push(unavailableRow('browser export', `export (${backend})`, result.unavailable, backend === 'cpu' ? `≥ ${EXPORT_TARGET_RATIO_TO_COPY}× copy` : ''));
      continue;
    }
    const label = `${result.sizeGB} GB (${(result.bytes / 1e9).toFixed(2)} GB, ${result.files} files)`;
    const rate = (seconds: number[]) => seconds.map((value) => result.bytes / value / 1e9);
    const copy = result.seconds.copy ?? [];
    const exported = result.seconds.export ?? [];
    if (key === 'exportCpu') {
      rows.push(measuredRow('browser export', `plain streamed copy ${label}`, median(rate(copy)), 'GB/s', copy.length, 3, undefined, 'Blob.slice reads, 32 MiB chunks, written through the export\'s OPFS output folder'));
      const read = result.seconds.read ?? [];
      if (read.length > 0) rows.push(measuredRow('browser export', `read only (Blob.slice) ${label}`, median(rate(read)), 'GB/s', read.length, 3));
      const hashed = result.seconds['copy+hash'] ?? [];
      if (hashed.length > 0) rows.push(measuredRow('browser export', `copy + portable SHA-256 ${label}`, median(rate(hashed)), 'GB/s', hashed.length, 3));
    }
    rows.push(measuredRow('browser export', `export ${backend} ${label}`, median(rate(exported)), 'GB/s', exported.length, 3, undefined, `${result.exportBackend}; ${result.editedTensors} tensors edited; verification re-read ${(result.verifiedBytes / 1e9).toFixed(2)} GB`));
    const ratios = exported.map((seconds, round) => copy[round] / seconds);
    const ratio = median(ratios);
    rows.push(
      measuredRow('browser export', `export ${backend} / plain copy`, ratio, '×', ratios.length, 2, backend === 'cpu' ? { text: `≥ ${EXPORT_TARGET_RATIO_TO_COPY}×`, met: ratio >= EXPORT_TARGET_RATIO_TO_COPY } : undefined, 'per-round ratios, same browser, same files'),
    );
  }
  return rows;
}
