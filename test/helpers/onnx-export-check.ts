/**
 * Checks for abliterated ONNX exports: the exported folder, loaded by transformers.js like any model, against the
 * hook preview of the input folder (the same ablation as graph hooks on the base weights); the ONNX checker
 * (python3 with the `onnx` package, Debian's python3-onnx) on the written graphs; and a converter that moves a
 * graph's initializers into an external-data file, so the streamed external-data path is exercised.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { EvaluationSession, type AblationSpec } from '../../src/engine/evaluate';
import type { Conversation } from '../../src/engine/generate';
import { decodeOnnxModel, encodeOnnxModel, onnx } from '../../src/formats/onnx';
import { openNodeModelFolder } from '../../src/platform/node-files';

export interface ExportComparison {
  /** Largest |logit_preview − logit_exported| over the prompts' first tokens. */
  maxLogitDifference: number;
  /** Largest |logit_base − logit_preview|: the ablation must move the logits, or the comparison proves nothing. */
  effect: number;
  previewReplies: number[][];
  exportedReplies: number[][];
}

export async function compareExportWithHookPreview(inputDir: string, outputDir: string, spec: AblationSpec, prompts: Conversation[], maxNewTokens: number): Promise<ExportComparison> {
  const input = await EvaluationSession.open(await openNodeModelFolder(inputDir), { device: 'cpu' });
  const exported = await EvaluationSession.open(await openNodeModelFolder(outputDir), { device: 'cpu' });
  const preview = await input.loadAblated(spec);
  try {
    const baseLogits = await input.base.nextTokenLogits(prompts);
    const previewLogits = await preview.nextTokenLogits(prompts);
    const exportedLogits = await exported.base.nextTokenLogits(prompts);
    let maxLogitDifference = 0;
    let effect = 0;
    previewLogits.forEach((logits, prompt) => {
      for (let k = 0; k < logits.length; k++) {
        maxLogitDifference = Math.max(maxLogitDifference, Math.abs(logits[k] - exportedLogits[prompt][k]));
        effect = Math.max(effect, Math.abs(logits[k] - baseLogits[prompt][k]));
      }
    });
    const previewReplies = (await preview.generateBatch(prompts, { maxNewTokens })).map((generation) => generation.tokenIds);
    const exportedReplies = (await exported.base.generateBatch(prompts, { maxNewTokens })).map((generation) => generation.tokenIds);
    return { maxLogitDifference, effect, previewReplies, exportedReplies };
  } finally {
    await preview.dispose();
    await input.dispose();
    await exported.dispose();
  }
}

/** A python3 that can `import onnx`, or null (then the checker test says why it is skipped). */
export function pythonWithOnnx(): string | null {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(candidate, ['-c', 'import onnx'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  return null;
}

const CHECKER_SCRIPT = `
import sys, onnx
model = onnx.load(sys.argv[1], load_external_data=False)
if model.ir_version > onnx.IR_VERSION:
    sys.exit(3)
onnx.checker.check_model(sys.argv[1])
`;
/** Exit status of the checker script for a graph whose IR version is newer than the installed onnx reads. */
const CHECKER_TOO_OLD = 3;

/**
 * Runs onnx.checker.check_model on a graph file (external data resolved beside it): '' when it passes, null when
 * the installed onnx is older than the graph's IR version (Debian's 1.12 reads IR ≤ 8, opset ≤ 17), else the error.
 */
export function onnxCheckerErrors(python: string, path: string): string | null {
  const run = spawnSync(python, ['-c', CHECKER_SCRIPT, path], { encoding: 'utf8' });
  if (run.status === CHECKER_TOO_OLD) return null;
  return run.status === 0 ? '' : `${run.stderr}`.trim().split('\n').slice(-3).join('\n');
}

/**
 * Rewrites `graphPath` so every initializer of at least `minBytes` lives in `<graph>.onnx_data` (offsets aligned to
 * 64 bytes, as onnx's save_model writes them).
 */
export function moveInitializersToExternalData(graphPath: string, minBytes = 1024): void {
  const model = decodeOnnxModel(graphPath, readFileSync(graphPath));
  const location = `${graphPath.slice(graphPath.lastIndexOf('/') + 1)}_data`;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const initializer = (model.graph?.initializer ?? []).map((tensor) => {
    const raw = tensor.rawData;
    if (!raw || raw.byteLength < minBytes) return tensor;
    const padding = (64 - (offset % 64)) % 64;
    chunks.push(new Uint8Array(padding), raw);
    offset += padding;
    const entry = (key: string, value: string) => onnx.StringStringEntryProto.create({ key, value });
    const moved = onnx.TensorProto.create({
      ...tensor,
      rawData: new Uint8Array(0),
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [entry('location', location), entry('offset', String(offset)), entry('length', String(raw.byteLength))],
    });
    offset += raw.byteLength;
    return moved;
  });
  writeFileSync(`${graphPath}_data`, Buffer.concat(chunks));
  writeFileSync(graphPath, encodeOnnxModel(onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...model.graph, initializer }) })));
}
