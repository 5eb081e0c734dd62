/**
 * `npx tsx bench/profile-capture.ts [fp32|q8]`: where the capture engine's time goes, per ONNX op type, on the
 * realistic-width model of the capture bench (bench/wide-model.ts), in onnxruntime-node and in onnxruntime-web's
 * wasm backend run by Node (the same wasm kernels as in the browser, on Node's older V8 and worker threads for
 * the page's: slower than Chromium, so read the shares here and the browser's speed in `npm run bench`).
 * Both run the engine's own graph (engineCaptureGraph) with onnxruntime's profiler on one batch of 8 × 66
 * tokens, 2 intra-op threads each, after one warm-up run; the table gives milliseconds of kernel time per run
 * by op type and their share, and the matrix products' arithmetic rate: 2 × (weight elements the MatMuls read)
 * × tokens over the time of MatMul and MatMulNBits (into which onnxruntime fuses some of q8's DequantizeLinear), which leaves the attention products (a few percent at 66 tokens) out of the count.
 *
 * Why it exists: the bench's wasm/node ratio is read on this model, and this profile says what bounds it.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ortNode from 'onnxruntime-node';
import { buildDecoderFeeds, engineCaptureGraph } from '../src/engine/capture';
import { buildCaptureGraph } from '../src/model/capture-graph';
import { padBatch } from '../src/engine/tokenize';
import { describeValues, toOrtFeeds, type OrtValueMetadata } from '../src/platform/ort-common';
import { decodeOnnxModel, encodeOnnxModel } from '../src/formats/onnx';
import { BENCH_TMP_ROOT } from './ablate';
import { wideCaptureModel, type WidePrecision } from './wide-model';

const BATCH = 8;
const TOKENS = 66;
const RUNS = 3;
const THREADS = 2;
const WEB_CHILD_FLAG = '--wasm-child';

interface Profile {
  label: string;
  /** Milliseconds per run. */
  wall: number;
  /** Kernel microseconds per run by op type. */
  times: Map<string, number>;
}

interface ProfileEvent {
  cat?: string;
  name: string;
  dur: number; // microseconds
  args?: { op_name?: string };
}

type OrtModule = typeof ortNode;

/** One left-padded batch of BATCH × TOKENS token ids, fed as the capture engine feeds it (buildDecoderFeeds). */
function feedsFor(ort: OrtModule, session: ortNode.InferenceSession): Record<string, ortNode.Tensor> {
  const ids = Array.from({ length: BATCH }, (_, row) => Array.from({ length: TOKENS }, (_, column) => ((row * TOKENS + column) * 7) % 1000));
  const inputs = describeValues(session.inputMetadata as readonly OrtValueMetadata[], session.inputNames);
  return toOrtFeeds(buildDecoderFeeds(inputs, padBatch(ids, 0, 'left'), null), (tensor) => new ort.Tensor(tensor.type, tensor.data as never, tensor.dims));
}

/** Milliseconds per run over RUNS runs after one warm-up run. */
async function timeRuns(session: ortNode.InferenceSession, feeds: Record<string, ortNode.Tensor>): Promise<number> {
  await session.run(feeds);
  const started = performance.now();
  for (let run = 0; run < RUNS; run++) await session.run(feeds);
  return (performance.now() - started) / RUNS;
}

/** Kernel microseconds per op type over the timed runs (warm-up excluded by taking the last RUNS of each node). */
function opTimes(events: readonly ProfileEvent[]): Map<string, number> {
  const byNode = new Map<string, { op: string; durations: number[] }>();
  for (const event of events) {
    if (event.cat !== 'Node' || !event.name.endsWith('_kernel_time')) continue;
    const entry = byNode.get(event.name) ?? { op: event.args?.op_name ?? '?', durations: [] };
    entry.durations.push(event.dur);
    byNode.set(event.name, entry);
  }
  const byOp = new Map<string, number>();
  for (const { op, durations } of byNode.values()) byOp.set(op, (byOp.get(op) ?? 0) + durations.slice(-RUNS).reduce((a, b) => a + b, 0) / RUNS);
  return byOp;
}

/** onnxruntime-node writes its profile to a file under `scratch`. */
async function profileNode(graph: Uint8Array, scratch: string): Promise<Profile> {
  const prefix = path.join(scratch, 'node');
  const session = await ortNode.InferenceSession.create(graph, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: THREADS, enableProfiling: true, profileFilePrefix: prefix });
  const wall = await timeRuns(session, feedsFor(ortNode, session));
  (session as unknown as { endProfiling(): void }).endProfiling();
  await session.release();
  const file = (await fs.readdir(scratch)).find((name) => name.startsWith('node'));
  if (!file) throw new Error(`profile-capture: onnxruntime-node wrote no profile under ${scratch}`);
  const events = JSON.parse(await fs.readFile(path.join(scratch, file), 'utf8')) as ProfileEvent[];
  return { label: 'onnxruntime-node', wall, times: opTimes(events) };
}

/**
 * The wasm build prints its profile on stdout (from a worker thread, after endProfiling returns) instead of
 * writing a file, so the wasm side runs in a child process whose stdout is parsed: a WALL line, then the JSON.
 */
function webProfileInChild(precision: WidePrecision): Profile {
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), precision, WEB_CHILD_FLAG], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (child.status !== 0) throw new Error(`profile-capture: the wasm child failed: ${child.stderr}`);
  const wall = Number(/^WALL (\S+)$/m.exec(child.stdout)?.[1]);
  const text = child.stdout.slice(child.stdout.indexOf('\n[') + 1, child.stdout.lastIndexOf(']') + 1);
  return { label: 'onnxruntime-web wasm', wall, times: opTimes(JSON.parse(text) as ProfileEvent[]) };
}

async function webChild(graph: Uint8Array): Promise<void> {
  const ortWeb = (await import('onnxruntime-web')) as unknown as OrtModule & { env: { wasm: { numThreads: number } } };
  ortWeb.env.wasm.numThreads = THREADS;
  const session = await ortWeb.InferenceSession.create(graph, { executionProviders: ['wasm'], graphOptimizationLevel: 'all', enableProfiling: true });
  console.log(`WALL ${await timeRuns(session, feedsFor(ortWeb, session))}`);
  (session as unknown as { endProfiling(): void }).endProfiling();
  // The profile is printed from another thread: give it time to land before the process ends.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  process.exit(0);
}

async function main(): Promise<void> {
  const precision = (process.argv[2] ?? 'fp32') as WidePrecision;
  if (precision !== 'fp32' && precision !== 'q8') throw new Error('usage: npx tsx bench/profile-capture.ts [fp32|q8]');
  const dir = await wideCaptureModel(path.join(BENCH_TMP_ROOT, 'capture'), precision);
  const graphPath = path.join(dir, 'onnx', 'model.onnx');
  const engine = engineCaptureGraph(buildCaptureGraph(decodeOnnxModel(graphPath, await fs.readFile(graphPath)), { positions: [-1] }));
  const graph = encodeOnnxModel(engine.model);
  if (process.argv.includes(WEB_CHILD_FLAG)) return webChild(graph);
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'abliterate-profile-'));
  try {
    const node = await profileNode(graph, scratch);
    const web = webProfileInChild(precision);
    const ops = [...new Set([...node.times.keys(), ...web.times.keys()])].sort((a, b) => (node.times.get(b) ?? 0) - (node.times.get(a) ?? 0));
    const total = (times: Map<string, number>) => [...times.values()].reduce((a, b) => a + b, 0);
    const cell = (times: Map<string, number>, op: string) => `${((times.get(op) ?? 0) / 1000).toFixed(1).padStart(8)} ms ${((100 * (times.get(op) ?? 0)) / total(times)).toFixed(1).padStart(5)} %`;
    console.log(`capture engine graph of ${path.basename(dir)}: ${engine.model.graph?.node?.length} nodes, ${BATCH} × ${TOKENS} tokens per run, ${THREADS} threads each`);
    console.log(`wall per run: ${node.label} ${node.wall.toFixed(0)} ms, ${web.label} ${web.wall.toFixed(0)} ms (${(node.wall / web.wall).toFixed(2)}×)`);
    console.log(`${'op type'.padEnd(30)}${node.label.padStart(20)}${web.label.padStart(24)}`);
    for (const op of ops.slice(0, 12)) console.log(`${op.padEnd(30)}${cell(node.times, op).padStart(20)}${cell(web.times, op).padStart(24)}`);
    // onnxruntime fuses some of the q8 graph's DequantizeLinear → MatMul pairs into MatMulNBits: count both.
    const matmul = (times: Map<string, number>) => ((times.get('MatMul') ?? 0) + (times.get('MatMulNBits') ?? 0)) / 1e6;
    const macs = BATCH * TOKENS * matMulParameters(engine.model);
    console.log(`MatMul and MatMulNBits (weights): ${((2 * macs) / matmul(node.times) / 1e9).toFixed(0)} GFLOP/s on onnxruntime-node, ${((2 * macs) / matmul(web.times) / 1e9).toFixed(0)} GFLOP/s on wasm`);
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** Elements of the 2-D weights that MatMul nodes read (fp32 initializers or int8 behind a DequantizeLinear). */
function matMulParameters(model: ReturnType<typeof decodeOnnxModel>): number {
  const graph = model.graph!;
  const dims = new Map((graph.initializer ?? []).map((tensor) => [tensor.name ?? '', (tensor.dims ?? []).map(Number)]));
  const dequantized = new Map<string, string>();
  for (const node of graph.node ?? []) if (node.opType === 'DequantizeLinear') dequantized.set(node.output?.[0] ?? '', node.input?.[0] ?? '');
  let total = 0;
  for (const node of graph.node ?? []) {
    if (node.opType !== 'MatMul') continue;
    const weight = node.input?.[1] ?? '';
    const shape = dims.get(dequantized.get(weight) ?? weight);
    if (shape?.length === 2) total += shape[0] * shape[1];
  }
  return total;
}

await main();
