/**
 * `npm run bench -- --large`: `abliterate ablate` on a generated ~8 GB Qwen3.5-4B-shaped BF16 model (hidden 2560,
 * MLP 9728, full 248k vocabulary, blocks added to reach 8 GB): wall time, peak RSS and GB/s, against one `cat` copy
 * of the same files in the same run. One run of each (the model takes minutes to generate); the disk must hold
 * the model and two outputs, checked first. Then one edited tensor of the output (an MLP-down matrix, the largest
 * column edit, which spans two 32 MiB chunks) is compared byte for byte with what the reference twin
 * (src/core/orthogonalize.ts) computes from the input with the same chunking. Everything is deleted afterwards.
 */
import { statfsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FLOAT_DTYPE_BYTES, type FloatDType } from '../src/core/dtypes';
import { applyColumns, projectColumns } from '../src/core/orthogonalize';
import { DEFAULT_MAX_CHUNK_BYTES } from '../src/engine/ablate';
import { planAblation } from '../src/engine/ablate-plan';
import { parseDirectionFile, selectDirection } from '../src/formats/direction-file';
import { readExactly, readSafetensorsHeader } from '../src/formats/safetensors';
import { openNodeModelFolder } from '../src/platform/node-files';
import { BENCH_TMP_ROOT, prepareModel, type ModelGeometry } from './ablate';
import { timeCommand } from './measure';
import { measuredRow, type BenchRow } from './table';

const LARGE_GB = 8;
/** Qwen3.5-4B's text geometry. */
const QWEN3_5_4B: ModelGeometry = { hiddenSize: 2560, intermediateSize: 9728, vocabSize: 248320 };
const RSS_LIMIT_BYTES = 400e6;

export interface LargeResult {
  bytes: number;
  blocks: number;
  ablateSeconds: number;
  catSeconds: number;
  peakRssBytes: number | null;
  sampleTensor: string;
  sampleIdentical: boolean;
}

/** Checks one MLP-down matrix of the output against the twin, chunk by chunk as the engine sums its partials. */
async function sampleMatchesTwin(modelDir: string, outDir: string, direction: Float32Array): Promise<{ name: string; identical: boolean }> {
  const input = await openNodeModelFolder(modelDir);
  const plan = await planAblation(input, { direction, scale: 1, targets: ['embed', 'attn', 'mlp'] }, null);
  const edit = [...plan.edits.values()].find((candidate) => candidate.orientation === 'columns' && candidate.tensor.name.endsWith('down_proj.weight'));
  if (!edit) throw new Error('no MLP-down tensor in the large model');
  const shard = plan.shards.find((candidate) => candidate.path === edit.shard)!;
  const output = await openNodeModelFolder(outDir);
  const outSource = await output.open(edit.shard);
  const outHeader = await readSafetensorsHeader(outSource);
  const dtype = edit.dtype as FloatDType;
  const rowBytes = edit.cols * FLOAT_DTYPE_BYTES[dtype];
  const chunkRows = Math.max(1, Math.floor(DEFAULT_MAX_CHUNK_BYTES / rowBytes));
  const begin = shard.header.dataStart + edit.tensor.dataOffsets[0];
  const projection = new Float64Array(edit.cols); // [cols]
  for (let rowStart = 0; rowStart < edit.rows; rowStart += chunkRows) {
    const count = Math.min(chunkRows, edit.rows - rowStart);
    const partial = projectColumns(await readExactly(shard.source, begin + rowStart * rowBytes, count * rowBytes), dtype, rowStart, count, edit.cols, edit.direction);
    for (let j = 0; j < edit.cols; j++) projection[j] += partial[j];
  }
  const outBegin = outHeader.dataStart + edit.tensor.dataOffsets[0];
  for (let rowStart = 0; rowStart < edit.rows; rowStart += chunkRows) {
    const count = Math.min(chunkRows, edit.rows - rowStart);
    const expected = applyColumns(await readExactly(shard.source, begin + rowStart * rowBytes, count * rowBytes), dtype, rowStart, count, edit.cols, edit.direction, projection, edit.weight);
    const actual = await readExactly(outSource, outBegin + rowStart * rowBytes, count * rowBytes);
    if (!Buffer.from(actual).equals(Buffer.from(expected))) return { name: edit.tensor.name, identical: false };
  }
  return { name: edit.tensor.name, identical: true };
}

export async function benchAblateLarge(log: (line: string) => void): Promise<LargeResult> {
  const free = statfsSync(path.dirname(BENCH_TMP_ROOT)).bavail * statfsSync(path.dirname(BENCH_TMP_ROOT)).bsize;
  const needed = 2.5 * LARGE_GB * 1e9;
  if (free < needed) throw new Error(`--large needs ${(needed / 1e9).toFixed(0)} GB free under ${BENCH_TMP_ROOT}, ${(free / 1e9).toFixed(0)} GB are`);
  log(`ablate --large: ${LARGE_GB} GB Qwen3.5-4B-shaped model (${(free / 1e9).toFixed(0)} GB free)`);
  const model = await prepareModel(LARGE_GB, log, QWEN3_5_4B, `qwen3_5-4b-bf16-${LARGE_GB}GB`);
  try {
    const files = (await fs.readdir(model.modelDir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
    let bytes = 0;
    for (const entry of files) bytes += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
    const outCat = path.join(model.dir, 'out-cat');
    const shards = files.filter((entry) => entry.name.endsWith('.safetensors')).map((entry) => path.join(entry.parentPath, entry.name));
    const cat = await timeCommand('bash', ['-c', `mkdir -p '${outCat}' && for f in ${shards.map((file) => `'${file}'`).join(' ')}; do cat "$f" > '${outCat}'/"$(basename "$f")"; done`]);
    await fs.rm(outCat, { recursive: true, force: true });
    await timeCommand('sync', []);
    const outAblate = path.join(model.dir, 'out-ablate');
    const ablate = await timeCommand('node', ['bin/abliterate.mjs', 'ablate', '--model', model.modelDir, '--direction', model.direction, '--out', outAblate], {
      rss: true,
      cwd: path.resolve(import.meta.dirname, '..'),
    });
    // The unit direction exactly as the CLI makes it from the same file (parsed to float32, normalized in float64,
    // rounded to float32): a direction normalized another way differs in its last bits, and so does every edit.
    const raw = parseDirectionFile(model.direction, new Uint8Array(await fs.readFile(model.direction)));
    const sample = await sampleMatchesTwin(model.modelDir, outAblate, selectDirection(raw, { hiddenSize: QWEN3_5_4B.hiddenSize }));
    log(`  cat ${cat.seconds.toFixed(1)} s, ablate ${ablate.seconds.toFixed(1)} s, peak RSS ${((ablate.peakRssBytes ?? 0) / 1e6).toFixed(0)} MB, ${sample.name} ${sample.identical ? 'identical to the twin' : 'DIFFERS from the twin'}`);
    return { bytes, blocks: model.blocks, ablateSeconds: ablate.seconds, catSeconds: cat.seconds, peakRssBytes: ablate.peakRssBytes, sampleTensor: sample.name, sampleIdentical: sample.identical };
  } finally {
    await fs.rm(model.dir, { recursive: true, force: true });
  }
}

export function largeRows(result: LargeResult): BenchRow[] {
  const label = `${(result.bytes / 1e9).toFixed(1)} GB Qwen3.5-4B shape, ${result.blocks} blocks`;
  const rows = [
    measuredRow('ablate --large', `cat copy ${label}`, result.bytes / result.catSeconds / 1e9, 'GB/s', 1, 3, undefined, `${result.catSeconds.toFixed(1)} s`),
    measuredRow('ablate --large', `abliterate ablate ${label}`, result.bytes / result.ablateSeconds / 1e9, 'GB/s', 1, 3, undefined, `wall ${result.ablateSeconds.toFixed(1)} s`),
    measuredRow('ablate --large', 'ablate / cat throughput', result.catSeconds / result.ablateSeconds, '×', 1, 2),
    measuredRow('ablate --large', 'ablate wall time', result.ablateSeconds, 's', 1, 1),
  ];
  if (result.peakRssBytes !== null) {
    const rss = result.peakRssBytes;
    rows.push(measuredRow('ablate --large', 'ablate peak RSS', rss / 1e6, 'MB', 1, 0, { text: `< ${RSS_LIMIT_BYTES / 1e6} MB`, met: rss < RSS_LIMIT_BYTES }));
  }
  rows.push(measuredRow('ablate --large', `${result.sampleTensor} identical to the CPU twin`, result.sampleIdentical ? 1 : 0, '', 1, 0, { text: 'byte-identical', met: result.sampleIdentical }));
  return rows;
}
