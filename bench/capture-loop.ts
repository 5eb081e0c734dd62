/**
 * The timed loop of the capture bench, identical in Node (onnxruntime-node) and in the browser worker
 * (onnxruntime-web): the same graph bytes, the same feeds, the same variants, over the OnnxSession interface.
 *
 * Variants, each one pass over every batch:
 *   plain            the model's own graph, all its outputs (logits and the KV cache, what generation fetches)
 *   capture          the capture engine's own graph (the capture graph cut down to the residual outputs, every
 *                    node they do not need left out: src/engine/capture.ts) and its fetch, the residuals
 *   capture+outputs  the capture graph, every output (what transformers.js fetches when it runs a capture graph)
 * After one untimed warm-up pass of each, every round times each variant once, in an order that rotates from
 * round to round so drift in machine load hits all of them alike. A timed unit repeats the batches until it
 * lasts about MIN_TIMED_SECONDS (the same count for every variant): tiny models finish a pass in tens of
 * milliseconds, where scheduler noise on a shared 2-core machine would swamp a difference of a few percent.
 */
import type { OnnxSessionFactory, OnnxTensor } from '../src/ports/onnx-session';

export type CaptureVariantName = 'plain' | 'capture' | 'capture+outputs';
export const CAPTURE_VARIANTS: CaptureVariantName[] = ['plain', 'capture', 'capture+outputs'];

export interface CaptureBatch {
  feeds: Record<string, OnnxTensor>;
  /** Prompt tokens in the batch, padding excluded. */
  tokens: number;
}

export interface CaptureLoopInput {
  modelName: string;
  plainGraph: Uint8Array;
  captureGraph: Uint8Array;
  /** What the capture engine runs: the capture graph pruned to the residual outputs. */
  engineGraph: Uint8Array;
  /** The residual outputs of the capture graph, activationName(0..L). */
  activationNames: string[];
  batches: CaptureBatch[];
  rounds: number;
}

export interface CaptureLoopResult {
  backend: string;
  /** Prompt tokens in one timed unit (all batches × repeats). */
  tokensPerPass: number;
  repeats: number;
  seconds: Record<CaptureVariantName, number[]>; // [round]
  /** Σ|x| of each residual output on the first batch, for checking backends against each other. */
  activationAbsoluteSums: number[]; // [layer]
}

const now = () => performance.now() / 1000;
const MIN_TIMED_SECONDS = 0.5;
const MAX_REPEATS = 64;

export async function runCaptureLoop(factory: OnnxSessionFactory, input: CaptureLoopInput): Promise<CaptureLoopResult> {
  const plain = await factory.create({ bytes: input.plainGraph, name: `${input.modelName} (plain graph)` });
  const capture = await factory.create({ bytes: input.captureGraph, name: `${input.modelName} (capture graph)` });
  const engine = await factory.create({ bytes: input.engineGraph, name: `${input.modelName} (capture engine graph)` });
  try {
    const originalOutputs = plain.outputs.map((output) => output.name);
    const allCaptureOutputs = capture.outputs.map((output) => output.name);
    const pass = async (variant: CaptureVariantName, repeats: number) => {
      for (let repeat = 0; repeat < repeats; repeat++) {
        for (const batch of input.batches) {
          if (variant === 'plain') await plain.run(batch.feeds, originalOutputs);
          else if (variant === 'capture') await engine.run(batch.feeds, input.activationNames);
          else await capture.run(batch.feeds, allCaptureOutputs);
        }
      }
    };
    for (const variant of CAPTURE_VARIANTS) await pass(variant, 1);
    const probeStarted = now();
    await pass('plain', 1);
    const repeats = Math.max(1, Math.min(MAX_REPEATS, Math.ceil(MIN_TIMED_SECONDS / Math.max(now() - probeStarted, 1e-3))));
    const seconds: Record<CaptureVariantName, number[]> = { plain: [], capture: [], 'capture+outputs': [] };
    for (let round = 0; round < input.rounds; round++) {
      for (let index = 0; index < CAPTURE_VARIANTS.length; index++) {
        const variant = CAPTURE_VARIANTS[(index + round) % CAPTURE_VARIANTS.length];
        const started = now();
        await pass(variant, repeats);
        seconds[variant].push(now() - started);
      }
    }
    const first = await engine.run(input.batches[0].feeds, input.activationNames);
    const activationAbsoluteSums = input.activationNames.map((name) => {
      const data = first[name]?.data as Float32Array | undefined;
      if (!data) throw new Error(`${factory.name}: the capture graph returned no ${name}`);
      let sum = 0;
      for (let i = 0; i < data.length; i++) sum += Math.abs(data[i]);
      return sum;
    });
    const tokensPerPass = repeats * input.batches.reduce((sum, batch) => sum + batch.tokens, 0);
    return { backend: factory.name, tokensPerPass, repeats, seconds, activationAbsoluteSums };
  } finally {
    await plain.release();
    await capture.release();
    await engine.release();
  }
}

/** Feeds as JSON for the trip to the browser (BigInt64Array does not survive page.evaluate). */
export interface SerializedTensor {
  type: OnnxTensor['type'];
  dims: number[];
  base64: string;
}

export function serializeTensor(tensor: OnnxTensor): SerializedTensor {
  const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  let binary = '';
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return { type: tensor.type, dims: tensor.dims, base64: btoa(binary) };
}

export function deserializeTensor(serialized: SerializedTensor): OnnxTensor {
  const binary = atob(serialized.base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const buffer = bytes.buffer;
  const data = (() => {
    switch (serialized.type) {
      case 'int64':
        return new BigInt64Array(buffer);
      case 'float32':
        return new Float32Array(buffer);
      case 'float16':
        return new Uint16Array(buffer);
      case 'float64':
        return new Float64Array(buffer);
      case 'int32':
        return new Int32Array(buffer);
      case 'int8':
        return new Int8Array(buffer);
      case 'uint8':
      case 'bool':
        return new Uint8Array(buffer);
    }
  })();
  return { type: serialized.type, dims: serialized.dims, data };
}

export interface SerializedCaptureTask {
  modelName: string;
  plainGraphUrl: string;
  captureGraphUrl: string;
  engineGraphUrl: string;
  activationNames: string[];
  batches: { feeds: Record<string, SerializedTensor>; tokens: number }[];
  rounds: number;
  backend: 'wasm' | 'webgpu';
  /** wasm threads instead of the app's own choice (src/platform/ort-web.ts leaves a core to the page). */
  wasmThreads?: number;
  /** Run the wasm backend on the asyncify build (the WebGPU runtime) instead of the app's plain one. */
  asyncify?: boolean;
}
