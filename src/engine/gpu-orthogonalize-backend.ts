/**
 * The WebGPU implementation of OrthogonalizeBackend (src/engine/orthogonalize-backend.ts): the same four
 * operations as the CPU twin (src/core/orthogonalize.ts), run by the kernels in src/gpu. The kernels carry
 * double-f32 (~48 bits) where the twin uses f64, so an element can still differ by an ulp when its exact value
 * lies within ~2^-46 of a rounding boundary (the kernel tests count how often); the export therefore defaults
 * to the CPU backend, which is byte-identical to `abliterate ablate` by construction.
 *
 * A chunk larger than one storage binding (maxStorageBufferBindingSize, 1 GiB on SwiftShader and 128 MiB on
 * many devices) is split into runs of whole rows, each its own dispatch.
 */
import { createBiasProgram } from '../gpu/bias';
import { createColumnsApplyProgram } from '../gpu/columns-apply';
import { createColumnsProjectProgram } from '../gpu/columns-project';
import type { GpuContext } from '../gpu/device';
import { createRowsApplyProgram } from '../gpu/rows-apply';
import { createRowsDotProgram } from '../gpu/rows-dot';
import { GpuKernelRunner } from '../gpu/runner';
import { bytesPerElement, elementsPerWord, isStorageDType, WORKGROUP_SIZE, type StorageDType } from '../gpu/wgsl-storage';
import { BackendError, InvalidInputError } from '../base/errors';
import type { OrthogonalizeBackend } from './orthogonalize-backend';

export interface GpuBackendOptions {
  /** Caps one storage binding below the device limit (tests use it to exercise the row splitting). */
  maxBindingBytes?: number;
}

interface RowRun {
  firstRow: number;
  rows: number;
}

export class GpuOrthogonalizeBackend implements OrthogonalizeBackend {
  readonly name: string;
  private readonly runner: GpuKernelRunner;
  private readonly maxBindingBytes: number;

  constructor(
    readonly context: GpuContext,
    options: GpuBackendOptions = {},
  ) {
    this.runner = new GpuKernelRunner(context);
    const deviceLimit = Math.min(context.limits.maxStorageBufferBindingSize, context.limits.maxBufferSize);
    this.maxBindingBytes = Math.min(deviceLimit, options.maxBindingBytes ?? deviceLimit);
    this.name = `webgpu (${context.description}${context.isFallbackAdapter ? ', software fallback' : ''})`;
  }

  async projectColumns(chunk: Uint8Array, dtype: StorageDType, rowStart: number, rows: number, cols: number, direction: Float32Array): Promise<Float64Array> {
    checkChunk('projectColumns', chunk, dtype, rows, cols);
    checkDirection('projectColumns', direction, rowStart + rows);
    const program = createColumnsProjectProgram(dtype);
    const directionBuffer = this.runner.upload(direction, 'direction');
    const projection = new Float64Array(cols); // [cols]
    try {
      for (const run of this.rowRuns(dtype, rows, cols)) {
        const source = this.runner.upload(rowSlice(chunk, dtype, cols, run), 'W chunk');
        const output = this.runner.output(cols * 8, 'projection');
        try {
          const bytes = await this.runner.run(program, { rows: run.rows, cols, rowOffset: rowStart + run.firstRow, scale: 0 }, [source, directionBuffer, output], Math.ceil(cols / WORKGROUP_SIZE), output, cols * 8);
          const partial = new Float32Array(bytes.buffer, bytes.byteOffset, cols * 2); // [cols] × (hi, lo)
          for (let column = 0; column < cols; column++) projection[column] += partial[2 * column] + partial[2 * column + 1];
        } finally {
          source.destroy();
          output.destroy();
        }
      }
    } finally {
      directionBuffer.destroy();
    }
    return projection;
  }

  async applyColumns(
    chunk: Uint8Array,
    dtype: StorageDType,
    rowStart: number,
    rows: number,
    cols: number,
    direction: Float32Array,
    projection: Float64Array,
    scale: number,
  ): Promise<Uint8Array> {
    checkChunk('applyColumns', chunk, dtype, rows, cols);
    checkDirection('applyColumns', direction, rowStart + rows);
    if (projection.length !== cols) throw new InvalidInputError(`applyColumns: projection has ${projection.length} values for ${cols} columns.`);
    const program = createColumnsApplyProgram(dtype);
    const directionBuffer = this.runner.upload(direction, 'direction');
    const projectionBuffer = this.runner.upload(toDoubleFloat(projection), 'projection');
    try {
      return await this.applyByRuns(chunk, dtype, rows, cols, async (run, source, output, byteLength) =>
        this.runner.run(program, { rows: run.rows, cols, rowOffset: rowStart + run.firstRow, scale }, [source, directionBuffer, projectionBuffer, output], wordWorkgroups(dtype, run.rows * cols), output, byteLength),
      );
    } finally {
      directionBuffer.destroy();
      projectionBuffer.destroy();
    }
  }

  async applyRows(chunk: Uint8Array, dtype: StorageDType, rows: number, cols: number, direction: Float32Array, scale: number): Promise<Uint8Array> {
    checkChunk('applyRows', chunk, dtype, rows, cols);
    checkDirection('applyRows', direction, cols);
    const dotProgram = createRowsDotProgram(dtype);
    const applyProgram = createRowsApplyProgram(dtype);
    const directionBuffer = this.runner.upload(direction, 'direction');
    try {
      return await this.applyByRuns(chunk, dtype, rows, cols, async (run, source, output, byteLength) => {
        const params = { rows: run.rows, cols, rowOffset: 0, scale };
        const dotsOutput = this.runner.output(run.rows * 8, 'row dots');
        let dotsInput: GPUBuffer | null = null;
        try {
          const dots = await this.runner.run(dotProgram, params, [source, directionBuffer, dotsOutput], run.rows, dotsOutput, run.rows * 8); // [rows] × (hi, lo)
          dotsInput = this.runner.upload(dots, 'row dots');
          return await this.runner.run(applyProgram, params, [source, directionBuffer, dotsInput, output], wordWorkgroups(dtype, run.rows * cols), output, byteLength);
        } finally {
          dotsOutput.destroy();
          dotsInput?.destroy();
        }
      });
    } finally {
      directionBuffer.destroy();
    }
  }

  async applyBias(bias: Uint8Array, dtype: StorageDType, direction: Float32Array, scale: number): Promise<Uint8Array> {
    checkDType('applyBias', dtype);
    const length = bias.byteLength / bytesPerElement(dtype);
    checkChunk('applyBias', bias, dtype, 1, length);
    checkDirection('applyBias', direction, length);
    if (bias.byteLength > this.maxBindingBytes) throw new BackendError(`applyBias: a bias of ${bias.byteLength} bytes exceeds one WebGPU binding.`);
    const program = createBiasProgram(dtype);
    const directionBuffer = this.runner.upload(direction, 'direction');
    const source = this.runner.upload(bias, 'bias');
    const output = this.runner.output(bias.byteLength, 'edited bias');
    try {
      return await this.runner.run(program, { rows: 1, cols: length, rowOffset: 0, scale }, [source, directionBuffer, output], 1, output, bias.byteLength);
    } finally {
      directionBuffer.destroy();
      source.destroy();
      output.destroy();
    }
  }

  /**
   * Whether this device's shader compiler keeps the double-f32 error-free transformations (SwiftShader and
   * Dawn's Vulkan/D3D/Metal paths do; Mesa's OpenGL ES path simplifies (a + b) − a to b and loses them). The
   * probe sums 1 + 2^-30, which an f32 sum rounds to 1 and a double-f32 sum keeps.
   */
  async preservesDoubleFloat(): Promise<boolean> {
    const weight = new Uint8Array(new Float32Array([1, 2 ** -30]).buffer); // [2, 1] F32
    const [sum] = await this.projectColumns(weight, 'F32', 0, 2, 1, new Float32Array([1, 1]));
    return sum === 1 + 2 ** -30;
  }

  destroy(): void {
    this.context.destroy();
  }

  /** Runs `apply` over each binding-sized run of rows and assembles the edited chunk. */
  private async applyByRuns(
    chunk: Uint8Array,
    dtype: StorageDType,
    rows: number,
    cols: number,
    apply: (run: RowRun, source: GPUBuffer, output: GPUBuffer, byteLength: number) => Promise<Uint8Array>,
  ): Promise<Uint8Array> {
    const edited = new Uint8Array(chunk.byteLength);
    const rowBytes = cols * bytesPerElement(dtype);
    for (const run of this.rowRuns(dtype, rows, cols)) {
      const slice = rowSlice(chunk, dtype, cols, run);
      const source = this.runner.upload(slice, 'chunk');
      const output = this.runner.output(slice.byteLength, 'edited chunk');
      try {
        edited.set(await apply(run, source, output, slice.byteLength), run.firstRow * rowBytes);
      } finally {
        source.destroy();
        output.destroy();
      }
    }
    return edited;
  }

  private *rowRuns(dtype: StorageDType, rows: number, cols: number): Generator<RowRun> {
    const rowBytes = cols * bytesPerElement(dtype);
    // Whole words per run, so a run's padded buffer still fits the binding.
    const maxRows = Math.floor((this.maxBindingBytes - 4) / rowBytes);
    if (maxRows < 1) throw new BackendError(`A row of ${rowBytes} bytes exceeds one WebGPU storage binding (${this.maxBindingBytes} bytes).`);
    for (let firstRow = 0; firstRow < rows; firstRow += maxRows) yield { firstRow, rows: Math.min(maxRows, rows - firstRow) };
  }
}

/** f64 values as double-f32 pairs (hi = nearest f32, lo = nearest f32 of the rest), the kernels' input form. */
function toDoubleFloat(values: Float64Array): Float32Array {
  const pairs = new Float32Array(values.length * 2); // [n] × (hi, lo)
  for (let index = 0; index < values.length; index++) {
    const high = Math.fround(values[index]);
    pairs[2 * index] = high;
    pairs[2 * index + 1] = Number.isFinite(high) ? values[index] - high : 0;
  }
  return pairs;
}

function rowSlice(chunk: Uint8Array, dtype: StorageDType, cols: number, run: RowRun): Uint8Array {
  const rowBytes = cols * bytesPerElement(dtype);
  return chunk.subarray(run.firstRow * rowBytes, (run.firstRow + run.rows) * rowBytes);
}

function wordWorkgroups(dtype: StorageDType, elements: number): number {
  return Math.max(1, Math.ceil(Math.ceil(elements / elementsPerWord(dtype)) / WORKGROUP_SIZE));
}

function checkDType(operation: string, dtype: string): asserts dtype is StorageDType {
  if (!isStorageDType(dtype)) throw new InvalidInputError(`${operation}: WebGPU orthogonalization supports F32, F16 and BF16 tensors, not ${dtype}.`);
}

function checkChunk(operation: string, chunk: Uint8Array, dtype: StorageDType, rows: number, cols: number): void {
  checkDType(operation, dtype);
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 1) throw new InvalidInputError(`${operation}: bad shape [${rows}, ${cols}].`);
  const expected = rows * cols * bytesPerElement(dtype);
  if (chunk.byteLength !== expected) throw new InvalidInputError(`${operation}: chunk has ${chunk.byteLength} bytes, [${rows}, ${cols}] ${dtype} needs ${expected}.`);
}

function checkDirection(operation: string, direction: Float32Array, minimumLength: number): void {
  if (direction.length < minimumLength) throw new InvalidInputError(`${operation}: direction has ${direction.length} values, needs at least ${minimumLength}.`);
}
