/**
 * The WebGPU orthogonalization kernels in Chromium (SwiftShader here): the same comparison with the CPU twin as
 * test/unit/gpu-kernels.test.ts, bundled into the page, plus a timing of both backends on one BF16 matrix that
 * justifies the export's default backend.
 */
import { build } from 'esbuild';
import { expect, test } from '@playwright/test';
import type { ComparisonReport } from '../test/unit/gpu-kernel-comparison';
import { REPO_ROOT } from './export-support';

/** What the bundled gpuKernelCheck() below returns from the page. */
interface KernelCheck {
  report: ComparisonReport;
  timing: { bytes: number; gpuMs: number; cpuMs: number };
  adapter: { description: string; fallback: boolean; maxBinding: number; exact: boolean };
}

/**
 * Same bounds as the Node test: within one ulp for every dtype where the shader compiler keeps the double-f32
 * arithmetic (SwiftShader does), else F32 in absolute terms (see there) and 16-bit types within one ulp.
 */
const F32_ABSOLUTE_TOLERANCE_RELATIVE_TO_LARGEST = 2 ** -20;
const PROJECTION_RELATIVE_TOLERANCE = 1e-6;

const entry = `
import { acquireGpuDevice } from './src/gpu/device';
import { GpuOrthogonalizeBackend } from './src/engine/gpu-orthogonalize-backend';
import { cpuOrthogonalizeBackend } from './src/engine/orthogonalize-backend';
import { encodeFromFloat64 } from './src/core/dtypes';
import { compareWithCpuTwin } from './test/unit/gpu-kernel-comparison';

async function timeColumns(backend, weight, rows, cols, direction) {
  const started = performance.now();
  const projection = await backend.projectColumns(weight, 'BF16', 0, rows, cols, direction);
  await backend.applyColumns(weight, 'BF16', 0, rows, cols, direction, projection, 1);
  return performance.now() - started;
}

globalThis.gpuKernelCheck = async () => {
  const context = await acquireGpuDevice();
  const gpu = new GpuOrthogonalizeBackend(context);
  const report = await compareWithCpuTwin(gpu);
  const rows = 1024, cols = 2048; // [dModel, in] BF16, 4 MiB
  const weight = encodeFromFloat64(Float64Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.001) * 0.05), 'BF16');
  const direction = Float32Array.from({ length: rows }, (_, i) => Math.cos(i) / Math.sqrt(rows / 2));
  await timeColumns(gpu, weight, rows, cols, direction); // compile the pipelines first
  const gpuMs = await timeColumns(gpu, weight, rows, cols, direction);
  const cpuMs = await timeColumns(cpuOrthogonalizeBackend, weight, rows, cols, direction);
  const adapter = { description: context.description, fallback: context.isFallbackAdapter, maxBinding: context.limits.maxStorageBufferBindingSize, exact: await gpu.preservesDoubleFloat() };
  gpu.destroy();
  return { report, timing: { bytes: weight.byteLength, gpuMs, cpuMs }, adapter };
};
`;

test('WebGPU kernels match the CPU twin in Chromium, and the faster backend is measured', async ({ page }) => {
  test.setTimeout(300_000);
  const bundle = await build({ stdin: { contents: entry, resolveDir: REPO_ROOT, loader: 'ts' }, bundle: true, format: 'iife', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent' });
  await page.goto('/');
  await page.addScriptTag({ content: bundle.outputFiles[0].text });
  const { report, timing, adapter } = await page.evaluate(() => (globalThis as unknown as { gpuKernelCheck: () => Promise<KernelCheck> }).gpuKernelCheck());
  console.log(`adapter: ${adapter.description} (fallback ${adapter.fallback}, max binding ${adapter.maxBinding} bytes, double-f32 preserved ${adapter.exact})`);
  console.log(`projection relative error ${report.maxProjectionRelativeError.toExponential(2)}`);
  let differing = 0;
  let total = 0;
  for (const row of report.comparisons) {
    console.log(`  ${row.kernel.padEnd(32)} ${row.dtype.padEnd(4)} [${row.shape}] ${row.elements}: ${row.equal} equal, ${row.oneUlp} at 1 ulp, ${row.moreThanOneUlp} beyond (max ${row.maxUlp} ulp)`);
    const label = `${row.kernel} ${row.dtype} [${row.shape}]`;
    if (row.dtype === 'F32' && !adapter.exact) expect(row.maxAbsoluteDifference, label).toBeLessThanOrEqual(F32_ABSOLUTE_TOLERANCE_RELATIVE_TO_LARGEST * row.maxAbsoluteValue);
    else expect(row.moreThanOneUlp, label).toBe(0);
    differing += row.oneUlp + row.moreThanOneUlp;
    total += row.elements;
  }
  expect(report.maxProjectionRelativeError).toBeLessThan(PROJECTION_RELATIVE_TOLERANCE);
  console.log(`elements that differ from the CPU twin: ${differing} of ${total}`);
  const megabytes = timing.bytes / 2 ** 20;
  console.log(`columns edit of a [1024, 2048] BF16 matrix: WebGPU ${timing.gpuMs.toFixed(0)} ms (${(megabytes / (timing.gpuMs / 1000)).toFixed(1)} MiB/s), CPU ${timing.cpuMs.toFixed(0)} ms (${(megabytes / (timing.cpuMs / 1000)).toFixed(1)} MiB/s)`);
  expect(timing.gpuMs).toBeGreaterThan(0);
  expect(timing.cpuMs).toBeGreaterThan(0);
});
