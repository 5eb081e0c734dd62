/**
 * The CPU kernels in Node, in this process: the fast kernels (src/core/*-fast.ts) against their reference twins
 * (src/core/orthogonalize.ts, norm-preserving.ts) on the chunks the ablation sees most (an MLP-down matrix
 * [1024, 3584] for the columns edit, an embedding chunk [4096, 1024] for the rows edit), BF16, dense direction.
 * The fast kernels run twice: as shipped (WebAssembly SIMD for BF16, src/core/bf16-wasm.ts) and with WebAssembly
 * switched off (their JavaScript loops, what runs without SIMD or on chunks with NaN/±Inf).
 * Rounds alternate twin and fast and each figure is the best round, so machine load hits both alike; the outputs
 * are compared byte for byte before a figure counts.
 */
import { encodeFromFloat64 } from '../src/core/dtypes';
import { applyColumnsNormPreserving, applyRowsNormPreserving, normPreservingFactors, projectColumnsWithNorms, squaredLength } from '../src/core/norm-preserving';
import { applyColumnsNormPreservingFast, applyRowsNormPreservingFast, projectColumnsWithNormsFast } from '../src/core/norm-preserving-fast';
import { applyColumns, applyRows, projectColumns } from '../src/core/orthogonalize';
import { applyColumnsFast, applyRowsFast, projectColumnsFast } from '../src/core/orthogonalize-fast';
import { mulberry32 } from '../src/core/random';
import { setWasmKernels, wasmKernelsAvailable } from '../src/core/bf16-wasm';
import { measuredRow, type BenchRow } from './table';

const ROUNDS = 5;

function matrix(rows: number, cols: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  return encodeFromFloat64(Float64Array.from({ length: rows * cols }, () => (random() - 0.5) * 0.05), 'BF16');
}

function unit(length: number): Float32Array {
  const values = Float32Array.from({ length }, (_, i) => Math.sin(i * 0.37) + 0.1);
  const norm = Math.hypot(...values);
  return values.map((value) => value / norm);
}

function timed(body: () => Uint8Array): { seconds: number; output: Uint8Array } {
  const started = performance.now();
  const output = body();
  return { seconds: (performance.now() - started) / 1000, output };
}

export function benchNodeKernels(log: (line: string) => void): BenchRow[] {
  log('kernels (Node): fast CPU kernels vs their reference twins');
  const down = matrix(1024, 3584, 1); // [dModel, in]
  const embedding = matrix(4096, 1024, 2); // [rows, dModel]
  const r = unit(1024); // [dModel]
  const cases: { name: string; bytes: number; twin: () => Uint8Array; fast: () => Uint8Array }[] = [
    {
      name: 'columns edit, both passes, BF16 [1024, 3584]',
      bytes: down.byteLength,
      twin: () => applyColumns(down, 'BF16', 0, 1024, 3584, r, projectColumns(down, 'BF16', 0, 1024, 3584, r), 1),
      fast: () => applyColumnsFast(down, 'BF16', 0, 1024, 3584, r, projectColumnsFast(down, 'BF16', 0, 1024, 3584, r), 1),
    },
    {
      name: 'rows edit BF16 [4096, 1024]',
      bytes: embedding.byteLength,
      twin: () => applyRows(embedding, 'BF16', 4096, 1024, r, 1),
      fast: () => applyRowsFast(embedding, 'BF16', 4096, 1024, r, 1),
    },
    {
      name: 'norm-preserving columns, both passes, BF16 [1024, 3584]',
      bytes: down.byteLength,
      twin: () => {
        const { projection, squaredNorms } = projectColumnsWithNorms(down, 'BF16', 0, 1024, 3584, r);
        return applyColumnsNormPreserving(down, 'BF16', 0, 1024, 3584, r, projection, normPreservingFactors(projection, squaredNorms, squaredLength(r), 1), 1);
      },
      fast: () => {
        const { projection, squaredNorms } = projectColumnsWithNormsFast(down, 'BF16', 0, 1024, 3584, r);
        return applyColumnsNormPreservingFast(down, 'BF16', 0, 1024, 3584, r, projection, normPreservingFactors(projection, squaredNorms, squaredLength(r), 1), 1);
      },
    },
    {
      name: 'norm-preserving rows BF16 [4096, 1024]',
      bytes: embedding.byteLength,
      twin: () => applyRowsNormPreserving(embedding, 'BF16', 4096, 1024, r, 1),
      fast: () => applyRowsNormPreservingFast(embedding, 'BF16', 4096, 1024, r, 1),
    },
  ];
  const rows: BenchRow[] = [];
  if (!wasmKernelsAvailable()) throw new Error('kernels: the WebAssembly SIMD kernels did not compile in this Node');
  // The JavaScript loops are what runs where WebAssembly SIMD is missing (and on chunks holding NaN or ±Inf).
  const javascript = <T>(body: () => T): T => {
    setWasmKernels(false);
    try {
      return body();
    } finally {
      setWasmKernels(true);
    }
  };
  for (const kernel of cases) {
    let twinSeconds = Infinity;
    let loopSeconds = Infinity;
    let fastSeconds = Infinity;
    for (let round = 0; round < ROUNDS; round++) {
      const twin = timed(kernel.twin);
      const loop = javascript(() => timed(kernel.fast));
      const fast = timed(kernel.fast);
      if (!Buffer.from(fast.output).equals(Buffer.from(twin.output))) throw new Error(`kernels: the fast ${kernel.name} differs from its twin`);
      if (!Buffer.from(loop.output).equals(Buffer.from(twin.output))) throw new Error(`kernels: the JavaScript ${kernel.name} differs from its twin`);
      twinSeconds = Math.min(twinSeconds, twin.seconds);
      loopSeconds = Math.min(loopSeconds, loop.seconds);
      fastSeconds = Math.min(fastSeconds, fast.seconds);
    }
    rows.push(measuredRow('kernels', `Node CPU twin ${kernel.name}`, kernel.bytes / twinSeconds / 1e9, 'GB/s', ROUNDS, 3, undefined, 'best round'));
    rows.push(measuredRow('kernels', `Node JavaScript loop ${kernel.name}`, kernel.bytes / loopSeconds / 1e9, 'GB/s', ROUNDS, 3, undefined, 'best round; the fast kernel with WebAssembly off; byte-identical to the twin'));
    rows.push(measuredRow('kernels', `Node WebAssembly SIMD ${kernel.name}`, kernel.bytes / fastSeconds / 1e9, 'GB/s', ROUNDS, 3, undefined, 'best round; byte-identical to the twin'));
    rows.push(measuredRow('kernels', `Node WebAssembly / twin ${kernel.name}`, twinSeconds / fastSeconds, '×', ROUNDS, 2));
    rows.push(measuredRow('kernels', `Node WebAssembly / JavaScript loop ${kernel.name}`, loopSeconds / fastSeconds, '×', ROUNDS, 2));
  }
  return rows;
}
