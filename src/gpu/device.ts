/**
 * WebGPU device acquisition. Asks for the adapter's own buffer limits (the defaults cap a binding at 128 MiB,
 * the adapter usually allows more), records whether the adapter is a software fallback (SwiftShader: correct
 * but slow, so the caller may prefer the CPU), and turns device loss into a BackendError on the next call
 * instead of a hang.
 */
import { BackendError } from '../base/errors';

export interface GpuLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupsPerDimension: number;
}

export interface GpuContext {
  readonly device: GPUDevice;
  /**
   * Held so they live as long as the device: in Dawn for Node, a collected GPU instance takes the device's
   * event processing with it (mapAsync never resolves, then the process aborts).
   */
  readonly adapter: GPUAdapter;
  readonly gpu: GPU;
  readonly description: string;
  readonly isFallbackAdapter: boolean;
  readonly limits: GpuLimits;
  /** Throws BackendError when the device has been lost; call before each unit of GPU work. */
  assertUsable(): void;
  destroy(): void;
}

export interface AcquireGpuOptions {
  /** The GPU entry point; `navigator.gpu` when omitted (tests in Node pass the `webgpu` package's). */
  gpu?: GPU;
  /** 'compatibility' lets Mesa's OpenGL ES backend serve (Node tests on llvmpipe). */
  featureLevel?: 'core' | 'compatibility';
  powerPreference?: GPUPowerPreference;
}

export async function acquireGpuDevice(options: AcquireGpuOptions = {}): Promise<GpuContext> {
  const gpu = options.gpu ?? (typeof navigator !== 'undefined' ? navigator.gpu : undefined);
  if (!gpu) throw new BackendError('WebGPU is not available in this browser; the export runs on the CPU instead.');
  const adapterOptions: GPURequestAdapterOptions & { featureLevel?: string } = {
    powerPreference: options.powerPreference ?? 'high-performance',
  };
  if (options.featureLevel) adapterOptions.featureLevel = options.featureLevel;
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter(adapterOptions);
  } catch (error) {
    throw new BackendError(`WebGPU adapter request failed: ${(error as Error).message}`);
  }
  if (!adapter) {
    throw new BackendError('WebGPU returned no adapter (in Chromium, WebGPU may need --enable-unsafe-webgpu on this system).');
  }
  const limits: GpuLimits = {
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
    maxComputeWorkgroupsPerDimension: adapter.limits.maxComputeWorkgroupsPerDimension,
  };
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
      },
    });
  } catch (error) {
    throw new BackendError(`WebGPU device request failed: ${(error as Error).message}`);
  }
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacyFallback = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const isFallbackAdapter = Boolean(info?.isFallbackAdapter ?? legacyFallback ?? false);
  const description = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' ') || 'unknown adapter';

  let lostReason: string | null = null;
  let destroyed = false;
  void device.lost.then((lost) => {
    lostReason = destroyed ? 'the device was released' : `${lost.reason}: ${lost.message}`;
  });
  return {
    device,
    adapter,
    gpu,
    description,
    isFallbackAdapter,
    limits,
    assertUsable() {
      if (lostReason !== null) throw new BackendError(`The WebGPU device was lost (${lostReason}); retry on the CPU backend.`);
    },
    destroy() {
      destroyed = true;
      device.destroy();
    },
  };
}
