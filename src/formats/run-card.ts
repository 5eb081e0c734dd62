/**
 * The run card's format, one place for both writers: the workbench's `session.download` (state/run-card.ts,
 * zipped) and the CLI's `analyze`, `run` and `optimize` (cli/run-card-output.ts, the same files in OUT/).
 *
 *   report.json, directions.safetensors    the analysis (as `abliterate analyze` writes them)
 *   recipe.json                            the ablation the card describes
 *   prompts/<set>.jsonl, prompts/SHA256SUMS the prompt sets used, `{"messages": …}` per line, with SHA-256
 *   eval.json, sweep.json, sweep.csv       evaluation samples and figures, the layer sweep (when run)
 *   trials.jsonl, pareto.json              a recipe search's trials (when run)
 *   layers.csv, plots/*.svg                the layer table and the plots (the workbench renders them)
 *   reproduce.sh                           the exact `npx abliterate …` command, reading the card's prompt files
 *   README.md                              the model card (formats/model-card.ts) and the card's file list
 *   session.json                           the workbench session, for loading the card back (workbench only)
 */
import { sha256Hex } from '../core/sha256';
import type { PromptRecord } from './prompts';

export const PROMPT_SET_FILES = {
  harmful: 'harmful.jsonl',
  harmless: 'harmless.jsonl',
  referenceA: 'reference-a.jsonl',
  referenceB: 'reference-b.jsonl',
  evalHarmful: 'eval-harmful.jsonl',
  evalHarmless: 'eval-harmless.jsonl',
  agent: 'agent.jsonl',
} as const;
export type PromptSetName = keyof typeof PROMPT_SET_FILES;

/** The CLI flag that reads each prompt set, for rewriting a command to the card's own files. */
export const PROMPT_SET_FLAGS: Record<string, PromptSetName> = {
  '--harmful': 'harmful',
  '--harmless': 'harmless',
  '--reference-a': 'referenceA',
  '--reference-b': 'referenceB',
  '--eval-harmful': 'evalHarmful',
  '--eval-harmless': 'evalHarmless',
  '--agent': 'agent',
};

/** Where reproduce.sh writes: inside the unzipped card, beside what it reproduces. */
export const REPRODUCED_OUT = '$RUN_CARD/reproduced';

export function promptsToJsonl(prompts: readonly PromptRecord[]): string {
  return prompts.map((prompt) => JSON.stringify({ messages: prompt.messages })).join('\n') + (prompts.length > 0 ? '\n' : '');
}

/** A shell word: plain when safe, else single-quoted; `$RUN_CARD/…` paths double-quoted so the variable expands. */
export function shellWord(value: string): string {
  if (value.startsWith('$RUN_CARD')) return `"${value}"`;
  return /^[\w./=:,+-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

export function commandLine(args: readonly string[]): string {
  return `npx abliterate ${args.map(shellWord).join(' ')}`;
}

/**
 * A command's arguments as the card reproduces them: each prompt-file flag reads the card's copy
 * ($RUN_CARD/prompts/…), `--out` writes to $RUN_CARD/reproduced; everything else exactly as given.
 */
export function cardArguments(argv: readonly string[], present: ReadonlySet<PromptSetName>): string[] {
  const result: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith('--') && argv[i].includes('=') ? [argv[i].slice(0, argv[i].indexOf('=')), true] : [argv[i], false];
    const set = PROMPT_SET_FLAGS[flag];
    const replacement = flag === '--out' ? REPRODUCED_OUT : set && present.has(set) ? `$RUN_CARD/prompts/${PROMPT_SET_FILES[set]}` : null;
    if (replacement === null) {
      result.push(argv[i]);
      continue;
    }
    result.push(flag, replacement);
    if (!inline) i++; // skip the value that followed the flag
  }
  return result;
}

export function reproduceScript(args: readonly string[], comments: readonly string[]): string {
  return ['#!/bin/sh', ...comments.map((line) => `# ${line}`), 'set -eu', 'RUN_CARD="${RUN_CARD:-.}"', commandLine(args), ''].join('\n');
}

export interface RunCardContent {
  /** report.json's exact text; absent when the writer has written it already (the CLI). */
  reportText?: string;
  directions?: Uint8Array;
  recipe: Record<string, unknown>;
  prompts: Partial<Record<PromptSetName, readonly PromptRecord[]>>;
  /** eval.json's text, when there is one and the writer has not written it already. */
  evaluation?: string;
  sweep?: { json: string; csv?: string };
  trials?: { jsonl: string; pareto: string };
  layersCsv?: string;
  /** SVG text per plot name ("auc" → plots/auc.svg). */
  plots?: Record<string, string>;
  reproduce: string;
  /** The model card; the file list is appended to it. */
  modelCard: string;
  session?: string;
}

const encode = (text: string) => new TextEncoder().encode(text);

/** The run card's files by path. `alreadyWritten`: files the writer has in place (listed in the README too). */
export function runCardFiles(content: RunCardContent, alreadyWritten: readonly string[] = []): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  if (content.reportText !== undefined) files['report.json'] = encode(content.reportText);
  if (content.directions) files['directions.safetensors'] = content.directions;
  files['recipe.json'] = encode(`${JSON.stringify(content.recipe, null, 2)}\n`);
  const sums: string[] = [];
  for (const [set, name] of Object.entries(PROMPT_SET_FILES) as [PromptSetName, string][]) {
    const prompts = content.prompts[set];
    if (!prompts || prompts.length === 0) continue;
    const bytes = encode(promptsToJsonl(prompts));
    files[`prompts/${name}`] = bytes;
    sums.push(`${sha256Hex(bytes)}  ${name}`);
  }
  if (sums.length > 0) files['prompts/SHA256SUMS'] = encode(`${sums.join('\n')}\n`);
  if (content.evaluation !== undefined) files['eval.json'] = encode(content.evaluation);
  if (content.sweep) {
    files['sweep.json'] = encode(content.sweep.json);
    if (content.sweep.csv !== undefined) files['sweep.csv'] = encode(content.sweep.csv);
  }
  if (content.trials) {
    files['trials.jsonl'] = encode(content.trials.jsonl);
    files['pareto.json'] = encode(content.trials.pareto);
  }
  if (content.layersCsv !== undefined) files['layers.csv'] = encode(content.layersCsv);
  for (const [name, svg] of Object.entries(content.plots ?? {})) files[`plots/${name}.svg`] = encode(svg);
  files['reproduce.sh'] = encode(content.reproduce);
  if (content.session !== undefined) files['session.json'] = encode(content.session);
  const listed = [...new Set([...Object.keys(files), ...alreadyWritten, 'README.md'])].sort();
  files['README.md'] = encode(`${content.modelCard.replace(/\n*$/, '\n')}\n## Run card files\n\n${listed.map((file) => `- ${file}`).join('\n')}\n\n## Reproduce\n\n\`\`\`sh\n${content.reproduce.split('\n').filter((line) => line.startsWith('npx ')).join('\n')}\n\`\`\`\n`);
  return files;
}
