/**
 * GpuKernelRunner.run on a recording stand-in for a GPUDevice: whichever step fails (a WebGPU call that throws,
 * an error scope that reports, a readback that rejects), every error scope it pushed is popped and every buffer
 * it created is destroyed, and the failure arrives as the error it was.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BackendError } from '../../src/base/errors';
import type { GpuContext } from '../../src/gpu/device';
import { kernelProgram } from '../../src/gpu/program';
import { GpuKernelRunner } from '../../src/gpu/runner';

type Failure = 'none' | 'bind-group' | 'validation' | 'readback';

/** Records scopes and buffers; fails at the named step. */
function recordingDevice(failure: Failure) {
  const log = { scopes: 0, maxScopes: 0, created: 0, destroyed: 0 };
  const buffer = (size: number) => {
    log.created++;
    const bytes = new Uint8Array(size).map((_, index) => index + 1);
    return {
      size,
      destroy: () => void log.destroyed++,
      mapAsync: async () => {
        if (failure === 'readback') throw new Error('mapping failed (simulated)');
      },
      getMappedRange: () => bytes.buffer,
      unmap: () => undefined,
    };
  };
  const device = {
    pushErrorScope: () => {
      log.scopes++;
      log.maxScopes = Math.max(log.maxScopes, log.scopes);
    },
    popErrorScope: async () => {
      if (log.scopes === 0) throw new Error('popErrorScope with no scope pushed');
      const innermost = log.scopes === log.maxScopes;
      log.scopes--;
      return failure === 'validation' && innermost ? { message: 'invalid binding (simulated)' } : null;
    },
    createBindGroupLayout: () => ({}),
    createPipelineLayout: () => ({}),
    createShaderModule: () => ({}),
    createComputePipeline: () => ({ getBindGroupLayout: () => ({}) }),
    createBuffer: ({ size }: { size: number }) => buffer(size),
    createBindGroup: () => {
      if (failure === 'bind-group') throw new TypeError('createBindGroup failed (simulated)');
      return {};
    },
    createCommandEncoder: () => ({
      beginComputePass: () => ({ setPipeline: () => undefined, setBindGroup: () => undefined, dispatchWorkgroups: () => undefined, end: () => undefined }),
      copyBufferToBuffer: () => undefined,
      finish: () => ({}),
    }),
    queue: { writeBuffer: () => undefined, submit: () => undefined },
  };
  const context = { device, limits: { maxComputeWorkgroupsPerDimension: 65535 }, assertUsable: () => undefined } as unknown as GpuContext;
  return { runner: new GpuKernelRunner(context), log };
}

const program = kernelProgram('test kernel', 'F32', '', ['uniform', 'storage']);
const params = { rows: 1, cols: 1, rowOffset: 0, scale: 1 };
const storage = [{} as GPUBuffer];

beforeEach(() => {
  // Node has no WebGPU enums unless a test installed the webgpu package's globals; the values do not matter here.
  for (const name of ['GPUBufferUsage', 'GPUShaderStage', 'GPUMapMode']) {
    if (!(name in globalThis)) vi.stubGlobal(name, new Proxy({}, { get: () => 1 }));
  }
});
afterEach(() => vi.unstubAllGlobals());

describe('GpuKernelRunner.run cleanup', () => {
  it('returns the read-back bytes and leaves no scope or buffer behind', async () => {
    const { runner, log } = recordingDevice('none');
    expect([...(await runner.run(program, params, storage, 1, {} as GPUBuffer, 3))]).toEqual([1, 2, 3]);
    expect(log).toEqual({ scopes: 0, maxScopes: 2, created: 2, destroyed: 2 });
  });

  it.each([
    ['bind-group', TypeError, /createBindGroup failed/, 1],
    ['validation', BackendError, /WebGPU error: invalid binding/, 2],
    ['readback', BackendError, /reading the result back failed: mapping failed/, 2],
  ] as const)('when %s fails: the error passes through, scopes are popped and buffers destroyed', async (failure, ErrorClass, message, buffers) => {
    const { runner, log } = recordingDevice(failure);
    const error = await runner.run(program, params, storage, 1, {} as GPUBuffer, 3).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ErrorClass);
    expect((error as Error).message).toMatch(message);
    expect(log).toEqual({ scopes: 0, maxScopes: 2, created: buffers, destroyed: buffers });
  });
});
