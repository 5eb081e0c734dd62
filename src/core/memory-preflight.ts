/**
 * Memory preflight before a model loads in the browser: will its weights and KV cache fit the backend? Pure:
 * figures in, a verdict out (the figures come from engine/memory-estimate.ts, the limits from the platform).
 *
 * - wasm: one 32-bit WebAssembly memory of at most 4 GiB holds the weights, the KV cache and the activations;
 * - WebGPU: every weight lives in its own GPU buffer, so the largest tensor must not exceed the adapter's
 *   maxBufferSize nor, since matmuls bind weights as storage buffers, maxStorageBufferBindingSize. (The total is
 *   bounded by GPU memory, which browsers do not report; loading fails there with ORT's own message.)
 * A refusal says what does not fit by how much, and names the precision (and backend) that would fit.
 */

/** wasm32: 65 536 pages of 64 KiB. */
export const WASM_MEMORY_BYTES = 4 * 1024 ** 3;
/** Room left in the wasm memory for activations, the runtime and the graph itself: a quarter of it. */
export const WASM_HEADROOM_FRACTION = 0.25;

export type WeightPrecision = 'fp32' | 'fp16' | 'q8' | 'q4';
/** Stored bytes per weight, scales and zero points included (q4: blocks of 32 with a float16 scale; q8 likewise). */
export const BYTES_PER_WEIGHT: Record<WeightPrecision, number> = { fp32: 4, fp16: 2, q8: 1 + 2 / 32, q4: 0.5 + 2 / 32 };
const SMALLER_FIRST: WeightPrecision[] = ['fp32', 'fp16', 'q8', 'q4'];

export interface MemoryNeeds {
  /** The graph file and its external data. */
  weightBytes: number;
  /** The largest single initializer (one GPU buffer). */
  largestTensorBytes: number;
  largestTensorName: string;
  /** Keys and values of every attention layer for the batch at full length. */
  kvCacheBytes: number;
  precision: WeightPrecision;
}

export interface BackendMemoryLimits {
  backend: 'wasm' | 'webgpu';
  /** WebGPU adapter limits (absent for wasm). */
  maxBufferSize?: number;
  maxStorageBufferBindingSize?: number;
}

export interface MemoryVerdict {
  fits: boolean;
  /** One line after the model's name ("needs about … but wasm has …: a q4 export … would fit"). Empty when it fits. */
  message: string;
  /** The precision of the same model that would fit this backend, or null when none would. */
  suggestedPrecision: WeightPrecision | null;
}

export function formatGiB(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** Bytes the wasm memory must hold: weights and KV cache, with the headroom added. */
export function wasmBytesNeeded(needs: Pick<MemoryNeeds, 'weightBytes' | 'kvCacheBytes'>): number {
  return (needs.weightBytes + needs.kvCacheBytes) / (1 - WASM_HEADROOM_FRACTION);
}

/** The same model at another precision (weights scale by bytes per weight; the KV cache stays). */
function atPrecision(needs: MemoryNeeds, precision: WeightPrecision): MemoryNeeds {
  const factor = BYTES_PER_WEIGHT[precision] / BYTES_PER_WEIGHT[needs.precision];
  return { ...needs, weightBytes: needs.weightBytes * factor, largestTensorBytes: needs.largestTensorBytes * factor, precision };
}

function problem(needs: MemoryNeeds, limits: BackendMemoryLimits): string | null {
  if (limits.backend === 'wasm') {
    const needed = wasmBytesNeeded(needs);
    if (needed <= WASM_MEMORY_BYTES) return null;
    return `needs about ${formatGiB(needed)} of wasm memory (${formatGiB(needs.weightBytes)} of ${needs.precision} weights + ${formatGiB(needs.kvCacheBytes)} KV cache + ${Math.round(WASM_HEADROOM_FRACTION * 100)} % for activations) but wasm has at most ${formatGiB(WASM_MEMORY_BYTES)}`;
  }
  const bound = Math.min(limits.maxBufferSize ?? Infinity, limits.maxStorageBufferBindingSize ?? Infinity);
  if (needs.largestTensorBytes <= bound) return null;
  const which = (limits.maxStorageBufferBindingSize ?? Infinity) <= (limits.maxBufferSize ?? Infinity) ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
  return `has a weight \`${needs.largestTensorName}\` of ${formatGiB(needs.largestTensorBytes)}, more than this GPU's ${which} of ${formatGiB(bound)}`;
}

/** Does the model fit `limits`; if not, the message and the largest precision that would. */
export function memoryVerdict(needs: MemoryNeeds, limits: BackendMemoryLimits, otherBackend?: BackendMemoryLimits): MemoryVerdict {
  const issue = problem(needs, limits);
  if (issue === null) return { fits: true, message: '', suggestedPrecision: null };
  const smaller = SMALLER_FIRST.slice(SMALLER_FIRST.indexOf(needs.precision) + 1);
  const suggestedPrecision = smaller.find((precision) => problem(atPrecision(needs, precision), limits) === null) ?? null;
  const advice: string[] = [];
  if (suggestedPrecision) advice.push(`the same model exported in ${suggestedPrecision} (about ${formatGiB(atPrecision(needs, suggestedPrecision).weightBytes)} of weights) would fit ${limits.backend}`);
  if (otherBackend && problem(needs, otherBackend) === null) advice.push(`this model as it is would fit ${otherBackend.backend}`);
  const suggestion = advice.length > 0 ? `: ${advice.join('; ')}.` : ': no smaller precision fits this backend either.';
  return { fits: false, message: `${issue}${suggestion}`, suggestedPrecision };
}
