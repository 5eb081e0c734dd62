/**
 * The output folder of `abliterate optimize`: written as OUT.partial/ (report.json and directions.safetensors
 * first, then trials.jsonl one line as each trial ends, pareto.json last) and renamed to OUT when the search
 * finished. A cancelled search leaves OUT.partial/ with every finished trial, which `--resume` continues.
 */
import { promises as fs } from 'node:fs';
import nodePath from 'node:path';
import { PARAMETER_NAMES, type ParameterValues } from '../core/search-space';
import { paretoTrials, type TrialRecord } from '../engine/recipe-search';
import { InvalidFileError, InvalidInputError } from '../base/errors';

export const TRIALS_FILE = 'trials.jsonl';
export const PARETO_FILE = 'pareto.json';

async function exists(path: string): Promise<boolean> {
  return fs.stat(path).then(() => true, () => false);
}

/** Reads trials.jsonl, checking every line has the fields the search continues from. */
export async function readTrials(path: string): Promise<TrialRecord[]> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch {
    throw new InvalidInputError(`${path}: cannot read the trials to resume from (no such file?)`);
  }
  const trials: TrialRecord[] = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new InvalidFileError(path, `line ${index + 1} is not JSON (${(error as Error).message})`);
    }
    const record = value as Partial<TrialRecord>;
    const problem =
      !Number.isInteger(record.trial) ? 'no integer "trial"'
      : typeof record.refusalRate !== 'number' || typeof record.klFirstToken !== 'number' ? 'no numeric "refusalRate" and "klFirstToken"'
      : typeof record.parameters !== 'object' || record.parameters === null || !PARAMETER_NAMES.every((name) => name in (record.parameters as ParameterValues)) ? 'no complete "parameters" object'
      : record.trial !== trials.length ? `trial ${record.trial} where trial ${trials.length} was expected`
      : null;
    if (problem) throw new InvalidFileError(path, `line ${index + 1}: ${problem}`);
    trials.push(record as TrialRecord);
  });
  return trials;
}

export interface SearchOutput {
  /** The folder written to (OUT.partial). */
  partialPath: string;
  finalPath: string;
  previous: TrialRecord[];
  writeFile(name: string, contents: string | Uint8Array): Promise<void>;
  appendTrial(record: TrialRecord): Promise<void>;
  /** Writes pareto.json and renames OUT.partial to OUT (replacing the OUT a resume started from). */
  commit(trials: readonly TrialRecord[]): Promise<void>;
}

/**
 * Opens OUT.partial for a new search, or for a resumed one: `resume` is a finished OUT (its trials are copied
 * into a fresh OUT.partial) or a cancelled OUT.partial (continued in place).
 */
export async function openSearchOutput(outDir: string | undefined, resume: string | undefined): Promise<SearchOutput> {
  const resumePath = resume === undefined ? undefined : nodePath.resolve(resume);
  const resumeIsPartial = resumePath?.endsWith('.partial') ?? false;
  const finalPath = nodePath.resolve(outDir ?? (resumeIsPartial ? resumePath!.slice(0, -'.partial'.length) : resumePath!));
  const partialPath = `${finalPath}.partial`;
  let previous: TrialRecord[] = [];
  if (resumePath) {
    previous = await readTrials(nodePath.join(resumePath, TRIALS_FILE));
    if (resumePath !== partialPath) {
      await fs.rm(partialPath, { recursive: true, force: true });
      await fs.mkdir(partialPath, { recursive: true });
      await fs.writeFile(nodePath.join(partialPath, TRIALS_FILE), previous.map((trial) => `${JSON.stringify(trial)}\n`).join(''));
    }
  } else {
    if (await exists(finalPath)) {
      const entries = await fs.readdir(finalPath).catch(() => null);
      if (entries === null || entries.length > 0) throw new InvalidInputError(`${outDir}: already exists; choose a new --out folder, or continue it with --resume ${outDir}`);
    }
    await fs.rm(partialPath, { recursive: true, force: true });
    await fs.mkdir(partialPath, { recursive: true });
    await fs.writeFile(nodePath.join(partialPath, TRIALS_FILE), '');
  }
  return {
    partialPath,
    finalPath,
    previous,
    writeFile: async (name, contents) => {
      await fs.mkdir(nodePath.dirname(nodePath.join(partialPath, name)), { recursive: true });
      await fs.writeFile(nodePath.join(partialPath, name), contents);
    },
    appendTrial: (record) => fs.appendFile(nodePath.join(partialPath, TRIALS_FILE), `${JSON.stringify(record)}\n`),
    async commit(trials) {
      await fs.writeFile(nodePath.join(partialPath, PARETO_FILE), `${JSON.stringify({ trials: paretoTrials(trials) }, null, 1)}\n`);
      if (await exists(finalPath)) {
        const replaced = `${finalPath}.replaced-${process.pid}`;
        await fs.rename(finalPath, replaced);
        await fs.rename(partialPath, finalPath);
        await fs.rm(replaced, { recursive: true, force: true });
      } else await fs.rename(partialPath, finalPath);
    },
  };
}

/** A short, fixed-width description of a trial's recipe for the terminal table. */
export function describeRecipe(recipe: Record<string, unknown>): string {
  const components = (recipe.components ?? {}) as Record<string, unknown>;
  const weight = (value: unknown) => {
    if (value === undefined) return '—';
    if (typeof value === 'number') return value.toFixed(2);
    const kernel = value as { max: number; peak: number; min: number; distance: number };
    return `${kernel.max.toFixed(2)}@${kernel.peak.toFixed(1)}±${kernel.distance.toFixed(1)}→${kernel.min.toFixed(2)}`;
  };
  const direction = typeof recipe.direction === 'number' ? recipe.direction.toFixed(2) : String(recipe.direction);
  return `dir ${direction} ${String(recipe.method)} ${String(recipe.projection)} embed ${weight(components.embed)} attn ${weight(components.attn)} mlp ${weight(components.mlp)}`;
}

/** The final table: every Pareto trial, the chosen one marked. */
export function paretoTable(trials: readonly TrialRecord[], chosen: TrialRecord | null): string {
  const percent = (value: number | null | undefined) => (value === null || value === undefined ? '    —' : `${(value * 100).toFixed(1).padStart(5)}%`);
  const agent = trials.some((trial) => trial.actionRate !== undefined);
  const lines = [` trial  refusal  KL        false-ref  ${agent ? ' action  ' : ''}recipe`];
  for (const trial of paretoTrials(trials)) {
    lines.push(
      `${trial === chosen ? '→' : ' '}${String(trial.trial).padStart(5)}  ${percent(trial.refusalRate)}  ${trial.klFirstToken.toFixed(4).padEnd(8)}  ${percent(trial.falseRefusalRate).padStart(9)}  ${agent ? `${percent(trial.actionRate)}  ` : ''}${describeRecipe(trial.recipe)}`,
    );
  }
  return lines.join('\n');
}
