/**
 * Section 3: tokens/s of the capture graph vs the model's plain graph, on onnxruntime-node (every core), and in
 * headless Chromium on onnxruntime-web wasm (cross-origin isolated; the app's thread count — every core but one —
 * and every core, like-for-like with node) and webgpu (SwiftShader here:
 * a CPU emulation of a GPU, slow, not representative of a real GPU), on the demo model and toy-llama.
 * Inputs are built once in Node: chat-templated prompts of the model's own prompt sets, batched 8 at a time
 * by length and left-padded as the capture engine does; the browser gets the same graph bytes and feeds.
 */
import { promises as fs } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { DEFAULT_CAPTURE_BATCH_SIZE, buildDecoderFeeds, engineCaptureGraph } from '../src/engine/capture';
import { loadChatTokenizer, padBatch } from '../src/engine/tokenize';
import { decodeOnnxModel, encodeOnnxModel } from '../src/formats/onnx';
import { parsePromptFile } from '../src/formats/prompts';
import { buildCaptureGraph } from '../src/model/capture-graph';
import { openNodeModelFolder } from '../src/platform/node-files';
import { createNodeSessionFactory } from '../src/platform/ort-node';
import { startBrowserHarness, type BrowserHarness } from './browser-harness';
import { runCaptureLoop, serializeTensor, type CaptureBatch, type CaptureLoopInput, type CaptureLoopResult, type SerializedCaptureTask } from './capture-loop';
import { median } from './measure';
import { measuredRow, unavailableRow, type BenchRow } from './table';
import { findOnnxGraphFiles } from '../src/formats/onnx-files';
import { BENCH_TMP_ROOT } from './ablate';
import { wideCaptureModel } from './wide-model';

const repoRoot = path.resolve(import.meta.dirname, '..');
const TOY_LLAMA_DIR = process.env.TOY_LLAMA_DIR ?? path.resolve(repoRoot, 'test', 'fixtures', 'toy-llama');
/** Prompts per set (two sets per model): 4 batches of 8. */
const PROMPTS_PER_SET = 16;
const CAPTURE_OVERHEAD_LIMIT = 0.1;
const WASM_TO_NODE_TARGET = 0.4;
/** onnxruntime-node's intra-op threads here: its default, every core. */
const NODE_THREADS = availableParallelism();
/** Capture outputs of two backends agree to float32 accumulation differences. */
const BACKEND_AGREEMENT_RELATIVE_TOLERANCE = 1e-3;

interface BenchModel {
  name: string;
  dir: string;
  promptFiles: string[];
  /** The realistic-width models: no SwiftShader pass (minutes per batch at this width, and says nothing of a GPU). */
  wide?: boolean;
}

const DEMO_PROMPTS = ['harmful.test.jsonl', 'harmless.test.jsonl'].map((file) => path.join(repoRoot, 'public', 'prompts', file));
const MODELS: BenchModel[] = [
  { name: 'demo', dir: path.join(repoRoot, 'public', 'models', 'demo'), promptFiles: DEMO_PROMPTS },
  { name: 'toy-llama', dir: TOY_LLAMA_DIR, promptFiles: ['harmful_test.jsonl', 'harmless_test.jsonl'].map((file) => path.join(TOY_LLAMA_DIR, 'prompts', file)) },
];

const WIDE_ROOT = path.join(BENCH_TMP_ROOT, 'capture');

/** The wide models (bench/wide-model.ts), generated on first use: ~0.4 GB fp32 and ~0.1 GB q8. */
async function wideModels(log: (line: string) => void): Promise<BenchModel[]> {
  const models: BenchModel[] = [];
  for (const precision of ['fp32', 'q8'] as const) {
    log(`capture: the realistic-width ${precision} model (hidden 1024, 8 layers; generated unless kept from an earlier run)`);
    models.push({ name: `wide-${precision}`, dir: await wideCaptureModel(WIDE_ROOT, precision), promptFiles: DEMO_PROMPTS, wide: true });
  }
  return models;
}

export interface CaptureBenchOptions {
  quick: boolean;
  keepModels: boolean;
  log: (line: string) => void;
}

export interface ModelResult {
  model: string;
  results: Record<string, CaptureLoopResult | { unavailable: string }>;
}

async function prepareInput(model: BenchModel, rounds: number): Promise<CaptureLoopInput> {
  const folder = await openNodeModelFolder(model.dir);
  const graphs = findOnnxGraphFiles(folder.list());
  if (!graphs) throw new Error(`${model.dir}: no onnx/*.onnx graph`);
  if (graphs.externalData.length > 0 || graphs.embedding) throw new Error(`${model.dir}: the capture bench handles single-file graphs without a separate embedding graph`);
  const source = await folder.open(graphs.decoder);
  const plainGraph = await source.read(0, source.size);
  const capture = buildCaptureGraph(decodeOnnxModel(graphs.decoder, plainGraph), { positions: [-1] });
  const captureGraph = encodeOnnxModel(capture.model);
  const engineGraph = encodeOnnxModel(engineCaptureGraph(capture).model);
  const tokenizer = await loadChatTokenizer(folder);
  const prompts = [];
  for (const file of model.promptFiles) prompts.push(...parsePromptFile(file, await fs.readFile(file, 'utf8')).slice(0, PROMPTS_PER_SET));
  const tokens = prompts.map((prompt) => tokenizer.encodeChat(prompt.messages)).sort((a, b) => a.length - b.length);
  // The graph's inputs (names, cache shapes) come from a session, as in the capture engine.
  const probe = await createNodeSessionFactory().create({ bytes: plainGraph, name: graphs.decoder });
  const batches: CaptureBatch[] = [];
  for (let start = 0; start < tokens.length; start += DEFAULT_CAPTURE_BATCH_SIZE) {
    const members = tokens.slice(start, start + DEFAULT_CAPTURE_BATCH_SIZE);
    const batch = padBatch(members, tokenizer.padTokenId, 'left');
    batches.push({ feeds: buildDecoderFeeds(probe.inputs, batch, null), tokens: members.reduce((sum, ids) => sum + ids.length, 0) });
  }
  await probe.release();
  return { modelName: model.name, plainGraph, captureGraph, engineGraph, activationNames: capture.outputNames, batches, rounds };
}

async function runInBrowser(harness: BrowserHarness, input: CaptureLoopInput, backend: 'wasm' | 'webgpu', wasmThreads?: number, asyncify = false): Promise<CaptureLoopResult> {
  const task: SerializedCaptureTask = {
    modelName: input.modelName,
    plainGraphUrl: harness.addBytes(`${input.modelName}-plain.onnx`, input.plainGraph),
    captureGraphUrl: harness.addBytes(`${input.modelName}-capture.onnx`, input.captureGraph),
    engineGraphUrl: harness.addBytes(`${input.modelName}-engine.onnx`, input.engineGraph),
    activationNames: input.activationNames,
    batches: input.batches.map((batch) => ({ tokens: batch.tokens, feeds: Object.fromEntries(Object.entries(batch.feeds).map(([name, tensor]) => [name, serializeTensor(tensor)])) })),
    rounds: input.rounds,
    backend,
    ...(wasmThreads ? { wasmThreads } : {}),
    ...(asyncify ? { asyncify } : {}),
  };
  const page = await harness.openPage('capture');
  try {
    return await page.evaluate((argument) => (globalThis as unknown as { runCaptureTask: (t: SerializedCaptureTask) => Promise<CaptureLoopResult> }).runCaptureTask(argument), task);
  } finally {
    await page.context().close();
  }
}

function checkAgreement(reference: CaptureLoopResult, other: CaptureLoopResult): string | null {
  for (let layer = 0; layer < reference.activationAbsoluteSums.length; layer++) {
    const a = reference.activationAbsoluteSums[layer];
    const b = other.activationAbsoluteSums[layer];
    if (Math.abs(a - b) > BACKEND_AGREEMENT_RELATIVE_TOLERANCE * Math.max(Math.abs(a), 1e-12)) {
      return `layer ${layer}: Σ|activation| ${b} on ${other.backend} vs ${a} on ${reference.backend}`;
    }
  }
  return null;
}

export async function benchCapture(options: CaptureBenchOptions): Promise<{ rows: BenchRow[]; raw: ModelResult[] }> {
  const { log } = options;
  const rounds = options.quick ? 3 : 7;
  // SwiftShader takes seconds per batch: three rounds of the first batch only (its own tokens/s, same graphs).
  const webgpuRounds = 3;
  const webgpuBatches = 1;
  const raw: ModelResult[] = [];
  let harness: BrowserHarness | null = null;
  let harnessError: string | null = null;
  try {
    harness = await startBrowserHarness(log);
  } catch (error) {
    harnessError = (error as Error).message.split('\n')[0];
    log(`  browser unavailable: ${harnessError}`);
  }
  try {
    const models = [...MODELS, ...(await wideModels(log))];
    for (const model of models) {
      log(`capture: ${model.name}`);
      const input = await prepareInput(model, rounds);
      const results: ModelResult['results'] = {};
      results.node = await runCaptureLoop(createNodeSessionFactory(), input);
      // The app runs wasm on every core but one (src/platform/ort-web.ts); "wasm-all" uses every core, as
      // onnxruntime-node does here, for a like-for-like ratio.
      // On the wide models, "wasm-asyncify" repeats "wasm-all" on the asyncify build that WebGPU needs, which the
      // app does not use for wasm sessions (src/platform/ort-web.ts): what that choice gains, measured here.
      const backends = model.wide ? (['wasm', 'wasm-all', 'wasm-asyncify'] as const) : (['wasm', 'wasm-all', 'webgpu'] as const);
      for (const backend of backends) {
        if (!harness) {
          results[backend] = { unavailable: `Chromium did not start (${harnessError})` };
          continue;
        }
        try {
          const pageBackend = backend === 'webgpu' ? 'webgpu' : 'wasm';
          const result = await runInBrowser(harness, backend === 'webgpu' ? { ...input, rounds: webgpuRounds, batches: input.batches.slice(0, webgpuBatches) } : input, pageBackend, backend === 'wasm' ? undefined : NODE_THREADS, backend === 'wasm-asyncify');
          const disagreement = checkAgreement(results.node as CaptureLoopResult, result);
          results[backend] = disagreement ? { unavailable: `outputs disagree with onnxruntime-node (${disagreement})` } : result;
        } catch (error) {
          results[backend] = { unavailable: (error as Error).message.split('\n')[0] };
        }
      }
      for (const [backend, result] of Object.entries(results)) {
        log(`  ${backend}: ${'unavailable' in result ? result.unavailable : `plain ${median(result.seconds.plain).toFixed(3)} s, capture ${median(result.seconds.capture).toFixed(3)} s per pass of ${result.tokensPerPass} tokens`}`);
      }
      raw.push({ model: model.name, results });
    }
  } finally {
    await harness?.close();
    if (!options.keepModels) await fs.rm(WIDE_ROOT, { recursive: true, force: true });
  }
  return { rows: captureRows(raw), raw };
}

function batchesNote(result: CaptureLoopResult): string {
  return `the batches repeated ${result.repeats}×`;
}

const LABELS: Record<string, string> = {
  node: 'onnxruntime-node',
  wasm: 'ort-web wasm (app threads)',
  'wasm-all': `ort-web wasm ${NODE_THREADS} threads`,
  'wasm-asyncify': `ort-web wasm ${NODE_THREADS} threads, asyncify build`,
  webgpu: 'ort-web webgpu (SwiftShader)',
};

export function captureRows(raw: readonly ModelResult[]): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const { model, results } of raw) {
    for (const [backend, result] of Object.entries(results)) {
      const label = LABELS[backend] ?? backend;
      if ('unavailable' in result) {
        rows.push(unavailableRow('capture', `${label} ${model}`, result.unavailable, backend.startsWith('wasm') ? `≥ ${WASM_TO_NODE_TARGET}× node` : ''));
        continue;
      }
      const runs = result.seconds.capture.length;
      const rate = (seconds: number[]) => result.tokensPerPass / median(seconds);
      const overheadOf = (variant: 'capture' | 'capture+outputs') => median(result.seconds[variant].map((seconds, round) => seconds / result.seconds.plain[round] - 1));
      rows.push(measuredRow('capture', `plain graph ${label} ${model}`, rate(result.seconds.plain), 'tok/s', runs, 0, undefined, `${result.tokensPerPass} prompt tokens per timed pass (padding excluded; ${batchesNote(result)}), fetching logits and the KV cache`));
      rows.push(measuredRow('capture', `capture graph ${label} ${model}`, rate(result.seconds['capture+outputs']), 'tok/s', runs, 0, undefined, 'the same fetches plus the L+1 residual outputs'));
      const overhead = overheadOf('capture+outputs');
      rows.push(
        measuredRow('capture', `capture overhead ${label} ${model}`, overhead * 100, '%', runs, 1, { text: `≤ ${CAPTURE_OVERHEAD_LIMIT * 100}%`, met: overhead <= CAPTURE_OVERHEAD_LIMIT }, 'median of per-round time ratios, same tokens, same fetches plus the residuals'),
      );
      rows.push(
        measuredRow('capture', `capture engine fetch ${label} ${model}`, rate(result.seconds.capture), 'tok/s', runs, 0, undefined, `the capture engine's graph (residual outputs only, the LM head and cache outputs pruned) and fetch: ${(overheadOf('capture') * 100).toFixed(1)}% time vs the plain graph`),
      );
      const node = results.node;
      if (backend.startsWith('wasm') && !('unavailable' in node)) {
        // Tokens/s, not seconds: each backend repeats the batches its own number of times per timed pass.
        const ratio = result.tokensPerPass / median(result.seconds.capture) / (node.tokensPerPass / median(node.seconds.capture));
        const target = backend === 'wasm-all' && model.startsWith('wide') ? { text: `≥ ${WASM_TO_NODE_TARGET}×`, met: ratio >= WASM_TO_NODE_TARGET } : undefined;
        rows.push(measuredRow('capture', `${label} / onnxruntime-node ${model}`, ratio, '×', runs, 2, target, `capture engine fetch tokens/s, both in this run (${result.backend}; node ${NODE_THREADS} threads)`));
      }
      const asyncify = results['wasm-asyncify'];
      if (backend === 'wasm-all' && asyncify && !('unavailable' in asyncify)) {
        const ratio = result.tokensPerPass / median(result.seconds.capture) / (asyncify.tokensPerPass / median(asyncify.seconds.capture));
        rows.push(measuredRow('capture', `ort-web wasm plain build / asyncify build ${model}`, ratio, '×', runs, 2, undefined, `capture engine fetch tokens/s, ${NODE_THREADS} threads each, same run: why wasm sessions do not run on the WebGPU runtime`));
      }
    }
  }
  return rows;
}
