/**
 * Runs the kernel programs: one compiled pipeline per program cache key (kernel + dtype), buffers created per
 * call and destroyed after it, errors from validation or out-of-memory turned into BackendError.
 */
import { BackendError } from '../base/errors';
import type { GpuContext } from './device';
import { packKernelParams, PARAMS_BYTES, type GpuBindingKind, type GpuProgram, type KernelParams } from './program';

const bindingLayouts: Record<GpuBindingKind, GPUBindGroupLayoutEntry['buffer']> = {
  uniform: { type: 'uniform' },
  'read-only-storage': { type: 'read-only-storage' },
  storage: { type: 'storage' },
};

/** Buffers are sized in whole u32 words: storage arrays are u32/f32 and writeBuffer wants multiples of 4. */
export function paddedByteLength(byteLength: number): number {
  return Math.max(4, Math.ceil(byteLength / 4) * 4);
}

export class GpuKernelRunner {
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(readonly context: GpuContext) {}

  get device(): GPUDevice {
    return this.context.device;
  }

  pipeline(program: GpuProgram): GPUComputePipeline {
    let pipeline = this.pipelines.get(program.cacheKey);
    if (!pipeline) {
      const layout = this.device.createBindGroupLayout({
        label: program.name,
        entries: program.bindings.map((kind, binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: bindingLayouts[kind] })),
      });
      pipeline = this.device.createComputePipeline({
        label: program.name,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module: this.device.createShaderModule({ label: program.name, code: program.code }), entryPoint: 'main' },
      });
      this.pipelines.set(program.cacheKey, pipeline);
    }
    return pipeline;
  }

  /** A storage buffer holding `data` (zero-padded to a whole word). */
  upload(data: Uint8Array | Float32Array, label: string): GPUBuffer {
    let bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // A chunk sliced at an odd row of a 16-bit tensor may start off a word boundary: copy it to realign.
    if (bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
    const size = paddedByteLength(bytes.byteLength);
    const buffer = this.device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const whole = bytes.byteLength - (bytes.byteLength % 4);
    if (whole > 0) this.device.queue.writeBuffer(buffer, 0, bytes.buffer, bytes.byteOffset, whole);
    if (whole < bytes.byteLength) {
      const tail = new Uint8Array(4);
      tail.set(bytes.subarray(whole));
      this.device.queue.writeBuffer(buffer, whole, tail);
    }
    return buffer;
  }

  output(byteLength: number, label: string): GPUBuffer {
    return this.device.createBuffer({ label, size: paddedByteLength(byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  }

  /**
   * Encodes one dispatch of `workgroups` workgroups (spilling into y above the per-dimension limit), submits
   * it, and reads back `readBytes` bytes of `readFrom`.
   */
  async run(
    program: GpuProgram,
    params: KernelParams,
    storage: GPUBuffer[],
    workgroups: number,
    readFrom: GPUBuffer,
    readBytes: number,
  ): Promise<Uint8Array> {
    this.context.assertUsable();
    if (storage.length + 1 !== program.bindings.length) {
      throw new BackendError(`${program.name}: expected ${program.bindings.length - 1} storage buffers, got ${storage.length}.`);
    }
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    const pipeline = this.pipeline(program);
    const uniform = this.device.createBuffer({ label: `${program.name} params`, size: PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(uniform, 0, packKernelParams(params));
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [uniform, ...storage].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const maxPerDimension = this.context.limits.maxComputeWorkgroupsPerDimension;
    const groupsX = Math.max(1, Math.min(workgroups, maxPerDimension));
    const groupsY = Math.max(1, Math.ceil(workgroups / groupsX));
    if (groupsY > maxPerDimension) throw new BackendError(`${program.name}: ${workgroups} workgroups exceed one dispatch.`);
    const readBuffer = this.device.createBuffer({ label: `${program.name} readback`, size: paddedByteLength(readBytes), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = this.device.createCommandEncoder({ label: program.name });
    const pass = encoder.beginComputePass({ label: program.name });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groupsX, groupsY);
    pass.end();
    encoder.copyBufferToBuffer(readFrom, 0, readBuffer, 0, paddedByteLength(readBytes));
    this.device.queue.submit([encoder.finish()]);
    const validationError = await this.device.popErrorScope();
    const memoryError = await this.device.popErrorScope();
    const error = validationError ?? memoryError;
    try {
      if (error) throw new BackendError(`${program.name}: WebGPU error: ${error.message}`);
      try {
        await readBuffer.mapAsync(GPUMapMode.READ);
      } catch (mapError) {
        this.context.assertUsable();
        throw new BackendError(`${program.name}: reading the result back failed: ${(mapError as Error).message}`);
      }
      const result = new Uint8Array(readBytes);
      result.set(new Uint8Array(readBuffer.getMappedRange(0, paddedByteLength(readBytes))).subarray(0, readBytes));
      readBuffer.unmap();
      return result;
    } finally {
      readBuffer.destroy();
      uniform.destroy();
    }
  }
}
