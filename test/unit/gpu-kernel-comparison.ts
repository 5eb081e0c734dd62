/**
 * WebGPU kernels against the CPU twin (src/core/orthogonalize.ts) on seeded random matrices. Shared by the
 * Node kernel test (vitest + the `webgpu` package) and the Chromium spec (bundled into the page), so both
 * environments run exactly the same comparison and report the same counts.
 *
 * Differences are counted in units in the last place of the stored dtype: the GPU does f32 math where the twin
 * does f64 and rounds once, so an element can land one ulp away when its exact value sits near a rounding
 * boundary; anything further is a bug.
 */
import { applyBias, applyColumns, applyRows, projectColumns } from '../../src/core/orthogonalize';
import { decodeToFloat64, encodeFromFloat64, type FloatDType } from '../../src/core/dtypes';
import type { OrthogonalizeBackend } from '../../src/engine/orthogonalize-backend';
import { mulberry32 } from '../../src/core/random';

export interface KernelComparison {
  kernel: string;
  dtype: FloatDType;
  shape: [number, number];
  elements: number;
  equal: number;
  oneUlp: number;
  moreThanOneUlp: number;
  maxUlp: number;
  /** max |gpu − cpu| over the decoded values, and max |cpu| for scale. */
  maxAbsoluteDifference: number;
  maxAbsoluteValue: number;
}

export interface ComparisonReport {
  comparisons: KernelComparison[];
  /** Largest |p_gpu − p_cpu| / Σ|r_i W_ij| over every projected column (the scale of the rounding error). */
  maxProjectionRelativeError: number;
}

/** Shapes chosen so element counts are odd, below and above one 256-wide workgroup, and not multiples of it. */
export const COMPARISON_SHAPES: [number, number][] = [
  [1, 1],
  [3, 7],
  [37, 53],
  [129, 300],
  [64, 513],
];

export const COMPARISON_DTYPES: FloatDType[] = ['F32', 'F16', 'BF16'];

function gaussians(count: number, random: () => number, sigma: number): Float64Array {
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const u = Math.max(random(), 1e-12);
    values[i] = sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  }
  return values;
}

function unitDirection(length: number, random: () => number): Float32Array {
  const values = gaussians(length, random, 1);
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
}

/** Maps a float's bits to an integer that increases with the value, so ulp distance is a subtraction. */
function orderedBits(bits: number, signMask: number): number {
  return bits & signMask ? -(bits & (signMask - 1)) : bits;
}

export function countUlpDifferences(kernel: string, dtype: FloatDType, shape: [number, number], expected: Uint8Array, actual: Uint8Array): KernelComparison {
  const wide = dtype === 'F32';
  const count = expected.byteLength / (wide ? 4 : 2);
  const expectedView = wide ? new Uint32Array(expected.slice().buffer) : new Uint16Array(expected.slice().buffer);
  const actualView = wide ? new Uint32Array(actual.slice().buffer) : new Uint16Array(actual.slice().buffer);
  const signMask = wide ? 0x80000000 : 0x8000;
  const result: KernelComparison = { kernel, dtype, shape, elements: count, equal: 0, oneUlp: 0, moreThanOneUlp: 0, maxUlp: 0, maxAbsoluteDifference: 0, maxAbsoluteValue: 0 };
  if (actual.byteLength !== expected.byteLength) {
    result.moreThanOneUlp = count;
    result.maxUlp = Infinity;
    return result;
  }
  for (let i = 0; i < count; i++) {
    const distance = Math.abs(orderedBits(expectedView[i], signMask) - orderedBits(actualView[i], signMask));
    if (distance === 0) result.equal++;
    else if (distance === 1) result.oneUlp++;
    else result.moreThanOneUlp++;
    result.maxUlp = Math.max(result.maxUlp, distance);
  }
  const expectedValues = decodeToFloat64(expected, dtype);
  const actualValues = decodeToFloat64(actual, dtype);
  for (let i = 0; i < count; i++) {
    result.maxAbsoluteDifference = Math.max(result.maxAbsoluteDifference, Math.abs(expectedValues[i] - actualValues[i]));
    result.maxAbsoluteValue = Math.max(result.maxAbsoluteValue, Math.abs(expectedValues[i]));
  }
  return result;
}

export async function compareWithCpuTwin(gpu: OrthogonalizeBackend, seed = 1234): Promise<ComparisonReport> {
  const random = mulberry32(seed);
  const comparisons: KernelComparison[] = [];
  let maxProjectionRelativeError = 0;
  for (const dtype of COMPARISON_DTYPES) {
    for (const [rows, cols] of COMPARISON_SHAPES) {
      const shape: [number, number] = [rows, cols];
      const weight = encodeFromFloat64(gaussians(rows * cols, random, 0.05), dtype); // [rows, cols]
      const scale = 1;

      // Columns: W [dModel = rows, cols].
      const rowDirection = unitDirection(rows, random); // [rows]
      const cpuProjection = projectColumns(weight, dtype, 0, rows, cols, rowDirection); // [cols]
      const gpuProjection = await gpu.projectColumns(weight, dtype, 0, rows, cols, rowDirection);
      const decoded = decodeToFloat64(weight, dtype); // [rows, cols]
      for (let column = 0; column < cols; column++) {
        let bound = 0;
        for (let row = 0; row < rows; row++) bound += Math.abs(rowDirection[row] * decoded[row * cols + column]);
        if (bound > 0) maxProjectionRelativeError = Math.max(maxProjectionRelativeError, Math.abs(gpuProjection[column] - cpuProjection[column]) / bound);
      }
      const cpuColumns = applyColumns(weight, dtype, 0, rows, cols, rowDirection, cpuProjection, scale);
      comparisons.push(countUlpDifferences('columns apply (same projection)', dtype, shape, cpuColumns, await gpu.applyColumns(weight, dtype, 0, rows, cols, rowDirection, cpuProjection, scale)));
      comparisons.push(countUlpDifferences('columns project + apply', dtype, shape, cpuColumns, await gpu.applyColumns(weight, dtype, 0, rows, cols, rowDirection, gpuProjection, scale)));

      // Rows: E [vocab = rows, dModel = cols].
      const columnDirection = unitDirection(cols, random); // [cols]
      comparisons.push(countUlpDifferences('rows', dtype, shape, applyRows(weight, dtype, rows, cols, columnDirection, scale), await gpu.applyRows(weight, dtype, rows, cols, columnDirection, scale)));

      // Bias: b [dModel = cols], the first row of the matrix.
      const bias = weight.slice(0, cols * (dtype === 'F32' ? 4 : 2));
      comparisons.push(countUlpDifferences('bias', dtype, [1, cols], applyBias(bias, dtype, columnDirection, scale), await gpu.applyBias(bias, dtype, columnDirection, scale)));
    }
  }
  return { comparisons, maxProjectionRelativeError };
}
