/**
 * What the four commands (analyze, ablate, eval, run) share: the ablation and split options with their checks,
 * bounded reading of the small input files (prompts, markers, directions), ONNX graph inputs from a model
 * folder, and output that appears only complete and stops cleanly on Ctrl-C.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parsePromptFile, type PromptRecord } from '../formats/prompts';
import { ABLATION_COMPONENTS, type AblationComponent } from '../core/recipe';
import type { ModelFolder, OutputFolder } from '../ports/folder';
import { describeFsError } from '../platform/node-files';
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

/**
 * A small input file as text: strict UTF-8, and no NUL characters (a UTF-16 file without a byte-order mark
 * decodes as "valid" UTF-8 full of NULs). One reader for every command, so they all refuse the same files.
 */
export async function readInputText(path: string, what: string, maxBytes = MAX_INPUT_FILE_BYTES): Promise<string> {
  const bytes = await readInputFile(path, what, maxBytes);
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new InvalidFileError(path, 'is UTF-16 text; save it as UTF-8');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidFileError(path, 'is not valid UTF-8 text');
  }
  if (text.includes('\0')) throw new InvalidFileError(path, 'contains NUL characters (UTF-16 or binary?); save it as UTF-8 text');
  return text;
}

/**
 * Most characters one token can stand for. Byte-level vocabularies hold tokens of long runs (spaces, '=' …),
 * rarely beyond a few dozen characters; a prompt longer than context × this cannot fit, and is refused before
 * tokenizing (which for a 100 MB line takes minutes and gigabytes).
 */
export const MAX_CHARS_PER_TOKEN = 128;
/** The context assumed for that bound when the config does not give one. */
const UNKNOWN_CONTEXT_TOKENS = 131_072;

/** Refuses prompts that cannot fit a context of `contextTokens` (null: unknown) whatever their tokenization. */
export function checkPromptLengths(path: string, records: readonly PromptRecord[], contextTokens: number | null): void {
  const maxChars = (contextTokens ?? UNKNOWN_CONTEXT_TOKENS) * MAX_CHARS_PER_TOKEN;
  records.forEach((record, index) => {
    const chars = record.messages.reduce((sum, message) => sum + message.content.length, 0);
    if (chars > maxChars) {
      const context = contextTokens === null ? '' : ` (max_position_embeddings ${contextTokens})`;
      throw new InvalidFileError(path, `prompt #${index + 1} is ${chars} characters long, far more than the model's context${context} can hold; shorten it`);
    }
  });
}

/** A prompt file, read by readInputText, parsed, each prompt checked against the context before any tokenizing. */
export async function readPromptFile(path: string, what: string, contextTokens: number | null, maxBytes = MAX_INPUT_FILE_BYTES): Promise<PromptRecord[]> {
  const records = parsePromptFile(path, await readInputText(path, what, maxBytes));
  if (records.length === 0) throw new InvalidFileError(path, `holds no prompts; the ${what} needs at least one`);
  checkPromptLengths(path, records, contextTokens);
  return records;
}

export async function readPromptConversations(path: string, what: string, contextTokens: number | null = null): Promise<Conversation[]> {
  return (await readPromptFile(path, what, contextTokens)).map((record) => record.messages);
}

export async function readMarkerFile(path: string): Promise<string[]> {
  const text = await readInputText(path, 'marker file');
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
  return text.split(/\r\n|\r|\n/).filter((line) => line.trim().length > 0);
}

/**
 * An ONNX graph of the folder as a session input: its bytes, and the external-data files it names
 * (engine/external-data.ts: checked, and handed to onnxruntime-node as paths on disk, never read here).
 */
export async function graphInput(folder: ModelFolder, path: string): Promise<OnnxModelInput> {
  const source = await folder.open(path);
  const bytes = await source.read(0, source.size);
  const name = join(folder.name, path);
  // Loaded here, not with this module: the ONNX schema (onnx-proto) costs ~40 ms at start-up, which commands that
  // never read a graph (ablate without --onnx) should not pay.
  const [{ externalDataFiles }, { decodeOnnxModel }] = await Promise.all([import('../engine/external-data'), import('../formats/onnx')]);
  return { bytes, name, externalData: await externalDataFiles(folder, path, decodeOnnxModel(name, bytes), { paths: true }) };
}

export async function writeOutputFile(output: OutputFolder, path: string, bytes: Uint8Array): Promise<void> {
  const sink = await output.createFile(path);
  await sink.write(bytes);
  await sink.close();
}

/** Refuses an output file path that already exists (a file, a folder or a link, dangling or not). */
export async function checkOutputFileFree(path: string): Promise<void> {
  const existing = await fs.lstat(path).catch(() => null);
  if (existing) {
    throw new InvalidInputError(`${path}: already exists; choose another --out (an existing file is never overwritten)`);
  }
}

/**
 * Writes a new file so that it appears only complete: FILE.partial (created exclusively: an existing one is
 * someone else's), then a hard link to FILE, which fails rather than replace a file that appeared meanwhile.
 */
export async function writeFileAtomically(path: string, contents: string | Uint8Array): Promise<void> {
  const partial = `${path}.partial`;
  let created = false;
  try {
    await checkOutputFileFree(path);
    await fs.writeFile(partial, contents, { flag: 'wx' });
    created = true;
    try {
      await fs.link(partial, path);
      await fs.rm(partial, { force: true });
    } catch (error) {
      if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
      // A file system without hard links: check again, then rename (which could replace a file created in between).
      await checkOutputFileFree(path);
      await fs.rename(partial, path);
    }
  } catch (error) {
    if (created) await fs.rm(partial, { force: true });
    if (error instanceof InvalidInputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const problem = code === 'EEXIST' ? `${created ? path : partial} already exists and is not ours to replace` : describeFsError(error);
    throw new InvalidInputError(`${path}: cannot write the output (${problem})`);
  }
}

/** A note on stderr (a stale lock taken over, a leftover partial output removed), apart from the result on stdout. */
export function printNote(note: string): void {
  process.stderr.write(`note: ${note}\n`);
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
