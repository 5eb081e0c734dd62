/**
 * onnxruntime-web for the workbench's workers, as two runtimes that load lazily, each on first use:
 * - `onnxruntime-web/webgpu` (the asyncify wasm build) for WebGPU sessions. transformers.js imports this same
 *   module, so the chat and search workers share one runtime with it (configureOrtWeb sets it up).
 * - `onnxruntime-web/wasm` (the plain build) for sessions on the wasm backend. Asyncify instruments the binary so
 *   WebGPU calls can suspend it; the plain build is half the download (14 MB, 3.7 MB gzipped, against 27 MB and
 *   6.7 MB) and captured the 1024-wide fp32 bench model 1.05-1.12x faster in Chromium, the q8 one no faster
 *   (0.89-1.01x; three runs; `npm run bench -- --only capture` measures both builds in one run). The two cannot share one binary: pointing
 *   the webgpu module at the plain binary runs wasm, but then no WebGPU session works in that worker again.
 * Tensors go to a session built with its own runtime's Tensor class. The wasm files are served by Vite from
 * node_modules (the `?url` imports): nothing is ever fetched from a CDN.
 */
import * as ort from 'onnxruntime-web/webgpu';
import * as ortCpu from 'onnxruntime-web/wasm';
import wasmBinaryUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import wasmFactoryUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';
import cpuWasmBinaryUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import cpuWasmFactoryUrl from 'onnxruntime-web/ort-wasm-simd-threaded.mjs?url';
import { BackendError, InvalidFileError } from '../base/errors';
import type { OnnxModelInput, OnnxSession, OnnxSessionFactory, OnnxTensor, OnnxValueInfo } from '../ports/onnx-session';
import { describeValues, toOrtFeeds } from './ort-common';
import { type ResolvedBackend } from '../ports/onnx-session';
import type { BackendMemoryLimits } from '../core/memory-preflight';

/** More threads than this do not help the small matmuls of a capture batch. */
const MAX_WASM_THREADS = 4;
/** Cores left to the page's main thread and compositor, so the UI keeps painting while a capture runs. */
const CORES_LEFT_FOR_THE_PAGE = 1;

type OrtRuntime = typeof ort;

let configured = false;
let cpuConfigured = false;

/** Threads need SharedArrayBuffer, which needs cross-origin isolation (COOP/COEP headers). */
function defaultThreads(): number {
  const cores = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency || 1 : 1;
  return self.crossOriginIsolated ? Math.max(1, Math.min(MAX_WASM_THREADS, cores - CORES_LEFT_FOR_THE_PAGE)) : 1;
}

/**
 * Points a runtime at its bundled wasm files (object form: a string prefix breaks `vite dev`). A runtime reads
 * its env when its first session loads the binary, so the env must be set before then.
 */
function configureRuntime(runtime: OrtRuntime, wasm: string, mjs: string): void {
  runtime.env.wasm.wasmPaths = { wasm: absoluteUrl(wasm), mjs: absoluteUrl(mjs) };
  runtime.env.wasm.numThreads = defaultThreads();
  runtime.env.wasm.proxy = false; // we are already in a worker
  runtime.env.logLevel = 'error';
}

/** The WebGPU runtime's env, the one transformers.js uses: set up before any model loads. */
export function configureOrtWeb(): typeof ort.env {
  if (!configured) {
    configureRuntime(ort, wasmBinaryUrl, wasmFactoryUrl);
    configured = true;
  }
  return ort.env;
}

/** The wasm backend's runtime (the plain build), set up on first use. */
function configureOrtCpu(): typeof ort.env {
  if (!cpuConfigured) {
    configureRuntime(ortCpu as OrtRuntime, cpuWasmBinaryUrl, cpuWasmFactoryUrl);
    cpuConfigured = true;
  }
  return ortCpu.env;
}

/**
 * Which build runs a wasm session: the app always uses the plain one; `asyncify` (the WebGPU runtime on its wasm
 * backend) is there for the bench, which measures what the choice gains in the same run.
 */
export type WasmBuild = 'plain' | 'asyncify';

function runtimeFor(backend: ResolvedBackend, wasmBuild: WasmBuild): OrtRuntime {
  if (backend === 'webgpu' || wasmBuild === 'asyncify') {
    configureOrtWeb();
    return ort;
  }
  configureOrtCpu();
  return ortCpu as OrtRuntime;
}

/** The env of the runtime that createWebSessionFactory(backend, wasmBuild) uses, set up (e.g. to change its threads). */
export function ortEnvFor(backend: ResolvedBackend, wasmBuild: WasmBuild = 'plain'): typeof ort.env {
  return runtimeFor(backend, wasmBuild).env;
}

function absoluteUrl(url: string): string {
  return new URL(url, self.location.href).href;
}

export interface WebGpuProbe {
  available: boolean;
  /** A software adapter (SwiftShader): correct, but far slower than the wasm backend. */
  fallback: boolean;
  detail: string;
}

/** WebGPU is usable when an adapter can be requested (Chromium needs --enable-unsafe-webgpu on Linux). */
export async function probeWebGpu(): Promise<WebGpuProbe> {
  const gpu = (self.navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return { available: false, fallback: false, detail: 'this browser has no WebGPU (navigator.gpu is missing)' };
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return { available: false, fallback: false, detail: 'no WebGPU adapter (GPU blocked or disabled)' };
    const info = adapter.info;
    const fallback = Boolean((adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter || info?.isFallbackAdapter);
    const name = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'adapter';
    return { available: true, fallback, detail: `${name}${fallback ? ' (software fallback, slow)' : ''}` };
  } catch (error) {
    return { available: false, fallback: false, detail: `requestAdapter failed: ${(error as Error).message}` };
  }
}

/** Watches the WebGPU device ORT created; a lost device fails every later run with a clear BackendError. */
let deviceLostReason: string | null = null;
let watchedDevice: GPUDevice | null = null;

async function watchWebGpuDevice(): Promise<void> {
  const device = await Promise.resolve(ort.env.webgpu.device as GPUDevice | Promise<GPUDevice> | undefined).catch(() => undefined);
  if (!device || device === watchedDevice) return;
  watchedDevice = device;
  deviceLostReason = null;
  void device.lost.then((info) => {
    deviceLostReason = info.message || info.reason || 'unknown reason';
  });
}


/** Outputs are read back to the CPU (capture outputs are small: a few positions × d_model per layer). */
async function fromOrtTensor(tensor: ort.Tensor): Promise<OnnxTensor> {
  const data = tensor.location === 'cpu' || tensor.location === undefined ? tensor.data : await tensor.getData(true);
  return { type: tensor.type as OnnxTensor['type'], dims: [...tensor.dims], data: data as OnnxTensor['data'] };
}

class WebSession implements OnnxSession {
  readonly inputs: OnnxValueInfo[];
  readonly outputs: OnnxValueInfo[];
  constructor(
    private readonly session: ort.InferenceSession,
    private readonly backend: ResolvedBackend,
    private readonly runtime: OrtRuntime,
  ) {
    this.inputs = describeValues(session.inputMetadata, session.inputNames);
    this.outputs = describeValues(session.outputMetadata, session.outputNames);
  }

  async run(feeds: Record<string, OnnxTensor>, outputNames?: readonly string[]): Promise<Record<string, OnnxTensor>> {
    if (this.backend === 'webgpu' && deviceLostReason) {
      throw new BackendError(`The WebGPU device was lost (${deviceLostReason}).`, { backend: 'webgpu' });
    }
    const ortFeeds = toOrtFeeds(feeds, (tensor) => new this.runtime.Tensor(tensor.type, tensor.data as never, tensor.dims));
    let results: ort.InferenceSession.ReturnType;
    try {
      results = outputNames ? await this.session.run(ortFeeds, [...outputNames]) : await this.session.run(ortFeeds);
    } catch (error) {
      const lost = deviceLostReason ? ` The WebGPU device was lost (${deviceLostReason}).` : '';
      throw new BackendError(`onnxruntime-web (${this.backend}) failed during a forward pass: ${(error as Error).message}.${lost}`, { backend: this.backend });
    }
    const out: Record<string, OnnxTensor> = {};
    for (const [name, tensor] of Object.entries(results)) {
      out[name] = await fromOrtTensor(tensor as ort.Tensor);
      (tensor as ort.Tensor).dispose();
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * What a backend can hold, for the memory preflight: wasm's fixed 4 GiB (core/memory-preflight.ts), or the WebGPU
 * adapter's buffer limits (onnxruntime-web asks its device for the adapter's maxBufferSize and
 * maxStorageBufferBindingSize). No adapter: limits of 0, so nothing is said to fit WebGPU.
 */
export async function webMemoryLimits(backend: ResolvedBackend): Promise<BackendMemoryLimits> {
  if (backend === 'wasm') return { backend };
  const gpu = (self.navigator as Navigator & { gpu?: GPU }).gpu;
  const adapter = await gpu?.requestAdapter().catch(() => null);
  if (!adapter) return { backend, maxBufferSize: 0, maxStorageBufferBindingSize: 0 };
  return { backend, maxBufferSize: adapter.limits.maxBufferSize, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize };
}

/**
 * Sessions on one backend. External data given as a Blob goes to ORT as a blob URL, which ORT fetches into
 * its own heap: the file is never copied into a JavaScript ArrayBuffer first.
 */
export function createWebSessionFactory(backend: ResolvedBackend, wasmBuild: WasmBuild = 'plain'): OnnxSessionFactory {
  return {
    name: `onnxruntime-web ${backend}${backend === 'wasm' && wasmBuild === 'asyncify' ? ' (asyncify build)' : ''}`,
    async create(model: OnnxModelInput): Promise<OnnxSession> {
      const runtime = runtimeFor(backend, wasmBuild);
      const objectUrls: string[] = [];
      const externalData = (model.externalData ?? []).map((file) => {
        if (typeof file.data === 'string' || file.data instanceof Uint8Array) return { path: file.path, data: file.data };
        const url = URL.createObjectURL(file.data);
        objectUrls.push(url);
        return { path: file.path, data: url };
      });
      try {
        const session = await runtime.InferenceSession.create(model.bytes, {
          executionProviders: [backend],
          graphOptimizationLevel: 'all',
          ...(externalData.length > 0 ? { externalData } : {}),
        });
        if (backend === 'webgpu') await watchWebGpuDevice();
        return new WebSession(session, backend, runtime);
      } catch (error) {
        const message = (error as Error).message;
        if (backend === 'webgpu') throw new BackendError(`WebGPU could not load ${model.name}: ${message}`, { backend: 'webgpu' });
        throw new InvalidFileError(model.name, `onnxruntime-web could not load the graph: ${message}`);
      } finally {
        for (const url of objectUrls) URL.revokeObjectURL(url);
      }
    },
  };
}
