/**
 * `abliterate eval` (CONTRACTS.md): greedy replies on the refusal prompts and first-token KL on the compliance
 * prompts, base vs hook-ablated, written as eval.json. The output file appears only when complete
 * (written as FILE.partial, then renamed).
 */
import { promises as fs } from 'node:fs';
import { parseDirectionFile, selectDirection } from '../formats/direction-file';
import { readModelConfig } from '../formats/hf-folder';
import { parsePromptFile } from '../formats/prompts';
import { openNodeModelFolder } from '../platform/node-files';
import { InvalidFileError, InvalidInputError } from '../protocol/errors';
import { DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS, type Conversation } from '../engine/generate';
import { EvaluationSession, type EvaluationReport } from '../engine/evaluate';
import { integerOption, numberOption, parseCommandArgs, requireOption } from './args';
import { parseLayerRange, parseTargets } from './ablate';
import { createProgressPrinter } from './progress-bar';

/** Prompt, marker and direction files are small; anything larger is a wrong path, not a prompt set. */
const MAX_INPUT_FILE_BYTES = 512 * 1024 * 1024;

export const help = `Usage: abliterate eval --model DIR --direction FILE [--layer N] [--scale 1]
                     --harmful FILE --harmless FILE [--max-new-tokens ${DEFAULT_MAX_NEW_TOKENS}] --out FILE.json

Greedy generation, base vs hook-ablated (the ablation applied as graph hooks on DIR/onnx/model.onnx, which
equals the weight edit of 'abliterate ablate' with the same direction, scale and targets):
  refusal rate   replies to the --harmful prompts containing a refusal marker (DESIGN.md list), or empty
  klFirstToken   KL(base ‖ ablated) of the first reply token's distribution on the --harmless prompts,
                 averaged over prompts
Writes {"base":{"refusalRate":x},"ablated":{"refusalRate":y},"klFirstToken":k,"samples":[...]} plus
per-prompt KL, counts and settings.

Options:
  --model DIR            HF folder with config.json, tokenizer files and onnx/model.onnx
  --direction FILE       .safetensors (tensor 'direction' [d] or 'directions' [L+1, d]), .npy or .json
  --layer N              row of a per-layer direction file (0 = embedding output)
  --scale α              ablation strength (default 1)
  --targets LIST         comma-separated subset of embed,attn,mlp (default all three)
  --layers A-B           only blocks A..B for attn/mlp
  --harmful FILE         refusal prompts (.txt one per line, or .jsonl)
  --harmless FILE        compliance prompts
  --max-new-tokens N     reply length (default ${DEFAULT_MAX_NEW_TOKENS})
  --batch-size N         prompts per forward pass (default ${DEFAULT_BATCH_SIZE})
  --markers FILE         refusal markers instead of the default list (.json array or .txt one per line)
  --out FILE.json        where to write the result`;

export async function readInputFile(path: string, what: string): Promise<Uint8Array> {
  let size: number;
  try {
    const stat = await fs.stat(path);
    if (!stat.isFile()) throw new Error('not a file');
    size = stat.size;
  } catch {
    throw new InvalidInputError(`${path}: the ${what} does not exist or is not a readable file`);
  }
  if (size > MAX_INPUT_FILE_BYTES) throw new InvalidFileError(path, `is ${size} bytes, too large for a ${what}`);
  return new Uint8Array(await fs.readFile(path));
}

export async function readPromptConversations(path: string, what: string): Promise<Conversation[]> {
  const text = new TextDecoder('utf-8').decode(await readInputFile(path, what));
  const records = parsePromptFile(path, text);
  if (records.length === 0) throw new InvalidFileError(path, `holds no prompts; the ${what} needs at least one`);
  return records.map((record) => record.messages);
}

export async function readMarkerFile(path: string): Promise<string[]> {
  const text = new TextDecoder('utf-8').decode(await readInputFile(path, 'marker file'));
  if (path.toLowerCase().endsWith('.json')) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new InvalidFileError(path, `is not valid JSON (${(error as Error).message})`);
    }
    if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string')) throw new InvalidFileError(path, 'must be a JSON array of strings');
    return value;
  }
  return text.split(/\r?\n/).filter((line) => line.trim().length > 0);
}

/** Writes a file so that it appears only complete: FILE.partial, then an atomic rename. */
export async function writeFileAtomically(path: string, contents: string | Uint8Array): Promise<void> {
  const partial = `${path}.partial`;
  try {
    await fs.writeFile(partial, contents);
    await fs.rename(partial, path);
  } catch (error) {
    await fs.rm(partial, { force: true });
    throw new InvalidInputError(`${path}: cannot write the output (${(error as Error).message})`);
  }
}

/** Runs `body` with an AbortSignal that fires on Ctrl-C / SIGTERM, so a long evaluation stops cleanly. */
export async function withInterrupt<T>(body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await body(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function formatEvaluation(report: EvaluationReport): string {
  const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
  return [
    `refusal rate  base ${percent(report.base.refusalRate)}  →  ablated ${percent(report.ablated.refusalRate)}  (${report.counts.harmful} prompts)`,
    `first-token KL(base ‖ ablated)  ${report.klFirstToken.toFixed(4)}  (${report.counts.harmless} prompts)`,
  ].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const values = parseCommandArgs('eval', argv, {
    model: { type: 'string' },
    direction: { type: 'string' },
    layer: { type: 'string' },
    scale: { type: 'string' },
    targets: { type: 'string' },
    layers: { type: 'string' },
    harmful: { type: 'string' },
    harmless: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    'batch-size': { type: 'string' },
    markers: { type: 'string' },
    out: { type: 'string' },
  });
  const modelDir = requireOption('eval', values, 'model');
  const directionPath = requireOption('eval', values, 'direction');
  const harmfulPath = requireOption('eval', values, 'harmful');
  const harmlessPath = requireOption('eval', values, 'harmless');
  const outPath = requireOption('eval', values, 'out');
  const layer = values.layer === undefined ? undefined : integerOption(values, 'layer', 0, (n) => n >= 0);
  const scale = numberOption(values, 'scale', 1);
  const targets = parseTargets(values.targets as string | undefined);
  const layers = parseLayerRange(values.layers as string | undefined);
  const maxNewTokens = integerOption(values, 'max-new-tokens', DEFAULT_MAX_NEW_TOKENS, (n) => n >= 1 && n <= 4096);
  const batchSize = integerOption(values, 'batch-size', DEFAULT_BATCH_SIZE, (n) => n >= 1 && n <= 1024);
  const markers = values.markers === undefined ? undefined : await readMarkerFile(values.markers as string);

  // Everything is read and validated before the model is loaded.
  const harmful = await readPromptConversations(harmfulPath, 'harmful prompt file');
  const harmless = await readPromptConversations(harmlessPath, 'harmless prompt file');
  const folder = await openNodeModelFolder(modelDir);
  const config = await readModelConfig(folder);
  const direction = selectDirection(parseDirectionFile(directionPath, await readInputFile(directionPath, 'direction file')), { layer, hiddenSize: config.hiddenSize });

  const report = await withInterrupt(async (signal) => {
    const onProgress = createProgressPrinter();
    const session = await EvaluationSession.open(folder, { signal, onProgress });
    try {
      session.checkPromptsFit(harmful, harmfulPath);
      session.checkPromptsFit(harmless, harmlessPath);
      return await session.evaluate(
        { direction, scale, targets, ...(layers ? { layers } : {}) },
        { harmful, harmless },
        { maxNewTokens, batchSize, ...(markers ? { markers } : {}), signal, onProgress },
      );
    } finally {
      await session.dispose();
    }
  });
  const output = { ...report, direction: { file: directionPath, layer: layer ?? null } };
  await writeFileAtomically(outPath, `${JSON.stringify(output, null, 1)}\n`);
  process.stdout.write(`${formatEvaluation(report)}\nwrote ${outPath}\n`);
  return 0;
}
