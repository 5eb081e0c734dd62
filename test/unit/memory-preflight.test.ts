/**
 * The memory preflight's verdicts (core/memory-preflight.ts) on figures worked out by hand: wasm's 4 GiB with a
 * quarter kept for activations, WebGPU's per-buffer limits, and the precision it suggests.
 */
import { describe, expect, it } from 'vitest';
import { memoryVerdict, type MemoryNeeds } from '../../src/core/memory-preflight';

const GiB = 1024 ** 3;
const needs = (weightGiB: number, kvGiB: number, largestGiB: number, precision: MemoryNeeds['precision']): MemoryNeeds => ({
  weightBytes: weightGiB * GiB,
  kvCacheBytes: kvGiB * GiB,
  largestTensorBytes: largestGiB * GiB,
  largestTensorName: 'model.embed_tokens.weight',
  precision,
});

describe('memory preflight', () => {
  it('wasm: (weights + KV) / 0.75 must stay within 4 GiB', () => {
    // 2.5 + 0.5 = 3 GiB → 4 GiB needed: exactly fits. 2.6 + 0.5 → 4.13 GiB: refused.
    expect(memoryVerdict(needs(2.5, 0.5, 0.1, 'fp32'), { backend: 'wasm' }).fits).toBe(true);
    const refused = memoryVerdict(needs(2.6, 0.5, 0.1, 'fp32'), { backend: 'wasm' });
    expect(refused.fits).toBe(false);
    expect(refused.message).toContain('needs about 4.13 GiB of wasm memory (2.60 GiB of fp32 weights + 0.50 GiB KV cache + 25 % for activations) but wasm has at most 4.00 GiB');
  });

  it('suggests the largest precision that fits, and the other backend when the model fits it as it is', () => {
    // 8 GiB fp32 + 0.25 GiB KV: fp16 → 4 GiB weights → 5.67 GiB needed, no; q8 → 2.125 GiB → 3.17 GiB, yes.
    const verdict = memoryVerdict(needs(8, 0.25, 0.5, 'fp32'), { backend: 'wasm' }, { backend: 'webgpu', maxBufferSize: 2 * GiB, maxStorageBufferBindingSize: 1 * GiB });
    expect(verdict.fits).toBe(false);
    expect(verdict.suggestedPrecision).toBe('q8');
    expect(verdict.message).toContain('the same model exported in q8 (about 2.13 GiB of weights) would fit wasm');
    expect(verdict.message).toContain('this model as it is would fit webgpu');
    // 40 GiB of fp32: even q4 (40 · 0.5625 / 4 = 5.63 GiB) is too much for wasm.
    const hopeless = memoryVerdict(needs(40, 0, 1, 'fp32'), { backend: 'wasm' });
    expect(hopeless.suggestedPrecision).toBeNull();
    expect(hopeless.message).toMatch(/no smaller precision fits this backend either\.$/);
  });

  it('webgpu: the largest weight must fit maxStorageBufferBindingSize and maxBufferSize, whatever the total', () => {
    const limits = { backend: 'webgpu' as const, maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB };
    expect(memoryVerdict(needs(30, 2, 2, 'fp16'), limits).fits).toBe(true);
    const refused = memoryVerdict(needs(30, 2, 2.5, 'fp16'), limits);
    expect(refused.fits).toBe(false);
    expect(refused.message).toContain('has a weight `model.embed_tokens.weight` of 2.50 GiB, more than this GPU\'s maxStorageBufferBindingSize of 2.00 GiB');
    // q8 halves it less than q4: 2.5 · (1 + 1/16) / 2 = 1.33 GiB fits.
    expect(refused.suggestedPrecision).toBe('q8');
  });
});
