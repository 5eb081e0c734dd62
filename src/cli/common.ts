/**
 * What the four commands (analyze, ablate, eval, run) share: the ablation and split options with their checks,
 * bounded reading of the small input files (prompts, markers, directions), ONNX graph inputs from a model
 * folder, and output that appears only complete and stops cleanly on Ctrl-C.
 */
import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { parsePromptFile } from '../formats/prompts';
import { ABLATION_COMPONENTS, type AblationComponent } from '../core/recipe';
import type { ModelFolder, OutputFolder } from '../ports/folder';
import type { OnnxModelInput } from '../ports/onnx-session';
import { InvalidFileError, InvalidInputError } from '../base/errors';
// Light modules only: `ablate` must not load transformers.js or onnxruntime through this file (peak RSS).
import { DEFAULT_HELD_OUT_FRACTION, DEFAULT_SEED } from '../core/analysis';
import type { Conversation } from '../engine/generate';
import { integerOption, numberOption } from './args';

/** Prompt, marker and direction files are small; anything larger is a wrong path, not an input of ours. */
export const MAX_INPUT_FILE_BYTES = 512 * 1024 * 1024;

const STRING_OPTION = { type: 'string' } as const;

/** --layer, --scale, --targets: which direction row, how strongly, on which tensors (ablate, eval, run). */
export const ABLATION_OPTIONS = { layer: STRING_OPTION, scale: STRING_OPTION, targets: STRING_OPTION } as const;
/** The ablation options plus the direction file and a block range (ablate, eval). */
export const DIRECTION_ABLATION_OPTIONS = { direction: STRING_OPTION, ...ABLATION_OPTIONS, layers: STRING_OPTION } as const;
/** --position, --held-out, --seed: where the residual stream is read and how the prompts are split (analyze, run). */
export const SPLIT_OPTIONS = { position: STRING_OPTION, 'held-out': STRING_OPTION, seed: STRING_OPTION } as const;

export interface AblationOptions {
  /** Row of a per-layer direction file; undefined when not given. */
  layer: number | undefined;
  scale: number;
  targets: AblationComponent[];
  /** Inclusive block range for attn/mlp; undefined = all blocks. */
  layers: [number, number] | undefined;
}

export function parseAblationOptions(values: Record<string, unknown>): AblationOptions {
  return {
    layer: values.layer === undefined ? undefined : integerOption(values, 'layer', 0, (n) => n >= 0),
    scale: numberOption(values, 'scale', 1),
    targets: parseTargets(values.targets as string | undefined),
    layers: parseLayerRange(values.layers as string | undefined),
  };
}

export function parseSplitOptions(values: Record<string, unknown>): { position: number; heldOutFraction: number; seed: number } {
  return {
    position: integerOption(values, 'position', -1),
    heldOutFraction: numberOption(values, 'held-out', DEFAULT_HELD_OUT_FRACTION, (n) => n >= 0 && n < 1),
    seed: integerOption(values, 'seed', DEFAULT_SEED),
  };
}

export function parseTargets(raw: string | undefined): AblationComponent[] {
  if (raw === undefined) return [...ABLATION_COMPONENTS];
  const targets: AblationComponent[] = [];
  for (const part of raw.split(',').map((item) => item.trim())) {
    if (!(ABLATION_COMPONENTS as readonly string[]).includes(part)) {
      throw new InvalidInputError(`--targets ${raw}: '${part}' is not one of ${ABLATION_COMPONENTS.join(', ')}`);
    }
    if (!targets.includes(part as AblationComponent)) targets.push(part as AblationComponent);
  }
  return targets;
}

/** `A-B` (or a single `A`) as an inclusive block range. */
export function parseLayerRange(raw: string | undefined): [number, number] | undefined {
  if (raw === undefined) return undefined;
  const match = /^(\d+)(?:-(\d+))?$/.exec(raw.trim());
  const range: [number, number] | null = match ? [Number(match[1]), Number(match[2] ?? match[1])] : null;
  if (!range || range[0] > range[1]) throw new InvalidInputError(`--layers ${raw} is not a block range A-B with A ≤ B (e.g. 4-20)`);
  return range;
}

/** Reads a whole input file after checking it is a file no larger than `maxBytes`. */
export async function readInputFile(path: string, what: string, maxBytes = MAX_INPUT_FILE_BYTES): Promise<Uint8Array> {
  let size: number;
  try {
    const stat = await fs.stat(path);
    if (!stat.isFile()) throw new Error('not a file');
    size = stat.size;
  } catch {
    throw new InvalidInputError(`${path}: the ${what} does not exist or is not a readable file`);
  }
  if (size > maxBytes) throw new InvalidFileError(path, `is ${size} bytes, too large for a ${what}`);
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

/**
 * An ONNX graph of the folder as a session input: its bytes, and its external-data files as absolute paths on
 * disk (`root` is the folder's path) named relative to the graph, as onnxruntime expects.
 */
export async function graphInput(folder: ModelFolder, root: string, path: string, externalData: string[]): Promise<OnnxModelInput> {
  const source = await folder.open(path);
  const graphFolder = path.slice(0, path.lastIndexOf('/') + 1);
  return {
    bytes: await source.read(0, source.size),
    name: join(folder.name, path),
    externalData: externalData.map((file) => ({ path: file.slice(graphFolder.length), data: resolve(root, file) })),
  };
}

export async function writeOutputFile(output: OutputFolder, path: string, bytes: Uint8Array): Promise<void> {
  const sink = await output.createFile(path);
  await sink.write(bytes);
  await sink.close();
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

/** Runs `body` with an AbortSignal that fires on Ctrl-C / SIGTERM, so a long command stops cleanly. */
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
