/**
 * WebGPU orthogonalization kernels vs the CPU twin, in Node through the `webgpu` package (see
 * gpu-node-device.ts for which adapter serves). The same comparison runs in Chromium in
 * e2e/export-gpu-kernels.spec.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFromFloat64, type FloatDType } from '../../src/core/dtypes';
import { applyColumns, applyRows, projectColumns } from '../../src/core/orthogonalize';
import { GpuOrthogonalizeBackend } from '../../src/engine/gpu-orthogonalize-backend';
import { BackendError } from '../../src/base/errors';
import { compareWithCpuTwin, countUlpDifferences, type KernelComparison } from './gpu-kernel-comparison';
import { acquireNodeGpu, type NodeGpu } from './gpu-node-device';

/** f32 accumulation (Kahan-compensated) against f64: a few f32 ulps of the magnitude of the sum. */
const PROJECTION_RELATIVE_TOLERANCE = 1e-6;
/**
 * In plain f32 (a compiler that drops the double-f32 terms), F32 storage shows the f32 rounding of α·r·p: where
 * W − α r p nearly cancels, that error (relative 2^-24 of the operands) is many ulps of the small result. So F32
 * is then bounded in absolute terms, a few f32 ulps of the largest value.
 */
const F32_ABSOLUTE_TOLERANCE_RELATIVE_TO_LARGEST = 2 ** -20;

/**
 * Where the compiler keeps the double-f32 arithmetic (SwiftShader, in Chromium and through Vulkan here), every
 * dtype must be within one ulp (in practice: identical). Where it does not (Mesa llvmpipe through OpenGL ES
 * simplifies the error-free transformations away), the kernels compute in plain f32: 16-bit types still round
 * within one ulp, F32 is bounded in absolute terms.
 */
function expectWithinTolerance(row: KernelComparison, exact = true): void {
  const label = `${row.kernel} ${row.dtype} [${row.shape}]`;
  if (exact) expect(row.moreThanOneUlp, label).toBe(0);
  else if (row.dtype === 'F32') expect(row.maxAbsoluteDifference, label).toBeLessThanOrEqual(F32_ABSOLUTE_TOLERANCE_RELATIVE_TO_LARGEST * row.maxAbsoluteValue);
  else expect(row.moreThanOneUlp, label).toBe(0);
}

let gpu: NodeGpu;
let backend: GpuOrthogonalizeBackend | null = null;
let exact = false;

beforeAll(async () => {
  gpu = await acquireNodeGpu();
  if (gpu.context) {
    backend = new GpuOrthogonalizeBackend(gpu.context);
    exact = await backend.preservesDoubleFloat();
  }
  else console.warn(`WebGPU kernel tests skipped in Node: ${gpu.reason}`);
}, 60_000);

afterAll(() => backend?.destroy());

describe('WebGPU orthogonalization kernels in Node', () => {
  it('finds an adapter through the webgpu package', () => {
    // On this project's machines llvmpipe always serves; a machine without Mesa reports why in the reason.
    expect(gpu.context, gpu.context ? '' : (gpu as { reason: string }).reason).not.toBeNull();
  });

  it('matches the CPU twin on random BF16/F16/F32 matrices (within one ulp where the compiler keeps double-f32) and counts the differences', async () => {
    if (!backend) return;
    const report = await compareWithCpuTwin(backend);
    console.log(`GPU vs CPU twin (${(gpu as { backend: string }).backend}), projection relative error ${report.maxProjectionRelativeError.toExponential(2)}`);
    for (const row of report.comparisons) {
      console.log(`  ${row.kernel.padEnd(32)} ${row.dtype.padEnd(4)} [${row.shape}] ${row.elements} elements: ${row.equal} equal, ${row.oneUlp} at 1 ulp, ${row.moreThanOneUlp} beyond (max ${row.maxUlp} ulp, |Δ| ≤ ${row.maxAbsoluteDifference.toExponential(2)})`);
    }
    expect(report.maxProjectionRelativeError).toBeLessThan(PROJECTION_RELATIVE_TOLERANCE);
    console.log(`double-f32 arithmetic preserved by this shader compiler: ${exact}`);
    for (const row of report.comparisons) expectWithinTolerance(row, exact);
    const sixteenBit = report.comparisons.filter((row) => row.dtype !== 'F32');
    const total = sixteenBit.reduce((sum, row) => sum + row.elements, 0);
    const differing = sixteenBit.reduce((sum, row) => sum + row.oneUlp, 0);
    // Most 16-bit elements must be bit-identical; a kernel systematically off by one rounding would fail here.
    expect(differing / total).toBeLessThan(0.001);
  });

  it('leaves every 16-bit pattern unchanged at scale 0 (decoder and RNE encoder are inverse, NaN stays NaN)', async () => {
    if (!backend) return;
    for (const dtype of ['BF16', 'F16'] as FloatDType[]) {
      const patterns = new Uint16Array(65536).map((_, index) => index);
      const bytes = new Uint8Array(patterns.buffer);
      const direction = new Float32Array(256).fill(1 / 16); // [cols]
      const edited = new Uint16Array((await backend.applyRows(bytes, dtype, 256, 256, direction, 0)).buffer);
      let mismatches = 0;
      for (let bits = 0; bits < 65536; bits++) {
        const isNaN = dtype === 'BF16' ? (bits & 0x7fff) > 0x7f80 : (bits & 0x7fff) > 0x7c00;
        if (isNaN ? !((edited[bits] & 0x7fff) > (dtype === 'BF16' ? 0x7f80 : 0x7c00)) : edited[bits] !== bits) mismatches++;
      }
      expect(mismatches, dtype).toBe(0);
    }
  });

  it('splits chunks above the storage binding limit into runs of whole rows with the same result', async () => {
    if (!backend || !gpu.context) return;
    // 33 columns of BF16 = 66 bytes a row: odd element counts per run, so runs start off a u32 boundary.
    const small = new GpuOrthogonalizeBackend(gpu.context, { maxBindingBytes: 300 });
    const rows = 45;
    const cols = 33;
    for (const dtype of ['BF16', 'F32'] as FloatDType[]) {
      const weight = encodeFromFloat64(Float64Array.from({ length: rows * cols }, (_, index) => Math.sin(index * 0.37) * 0.1), dtype); // [rows, cols]
      const direction = Float32Array.from({ length: rows }, (_, index) => Math.cos(index) / Math.sqrt(rows / 2)); // [rows]
      const cpuProjection = projectColumns(weight, dtype, 0, rows, cols, direction);
      const splitProjection = await small.projectColumns(weight, dtype, 0, rows, cols, direction);
      for (let column = 0; column < cols; column++) expect(Math.abs(splitProjection[column] - cpuProjection[column])).toBeLessThan(PROJECTION_RELATIVE_TOLERANCE);
      const whole = await backend.applyColumns(weight, dtype, 0, rows, cols, direction, cpuProjection, 1);
      const split = await small.applyColumns(weight, dtype, 0, rows, cols, direction, cpuProjection, 1);
      expect(Buffer.from(split).equals(Buffer.from(whole))).toBe(true);
      expectWithinTolerance(countUlpDifferences('columns', dtype, [rows, cols], applyColumns(weight, dtype, 0, rows, cols, direction, cpuProjection, 1), split), exact);
      const rowDirection = Float32Array.from({ length: cols }, (_, index) => Math.sin(index + 1) / Math.sqrt(cols / 2)); // [cols]
      const splitRows = await small.applyRows(weight, dtype, rows, cols, rowDirection, 1);
      expect(Buffer.from(splitRows).equals(Buffer.from(await backend.applyRows(weight, dtype, rows, cols, rowDirection, 1)))).toBe(true);
      expectWithinTolerance(countUlpDifferences('rows', dtype, [rows, cols], applyRows(weight, dtype, rows, cols, rowDirection, 1), splitRows), exact);
    }
  });

  it('turns a lost device into a BackendError instead of a hang', async () => {
    if (!backend) return;
    const second = await acquireNodeGpu();
    if (!second.context) return;
    const doomed = new GpuOrthogonalizeBackend(second.context);
    second.context.device.destroy(); // as a driver reset would
    await new Promise((resolve) => setTimeout(resolve, 50)); // let device.lost settle
    await expect(doomed.applyRows(new Uint8Array(8), 'F32', 1, 2, new Float32Array(2), 1)).rejects.toBeInstanceOf(BackendError);
  });

  it('rejects a chunk whose size does not match its shape, naming the operation', async () => {
    if (!backend) return;
    await expect(backend.applyRows(new Uint8Array(10), 'BF16', 2, 3, new Float32Array(3), 1)).rejects.toThrow(/applyRows: chunk has 10 bytes/);
  });
});
