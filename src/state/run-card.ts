/**
 * The run card: one zip that holds a whole session as files a paper's appendix or a colleague can use —
 * report.json and directions.safetensors exactly as `abliterate analyze` writes them, recipe.json, the prompt
 * sets (JSONL, with SHA-256 hashes), eval.json and the sweep, the layer table, the plots as SVG, reproduce.sh
 * with the exact `npx abliterate analyze …` command, a model card (README.md), and session.json, from which the
 * workbench restores plots and tables without the model. Layout in the README ("Sessions and run cards").
 * Files by path here; the page zips and unzips them (platform/zip-archive.ts).
 */

const strToU8 = (text: string) => new TextEncoder().encode(text);
const strFromU8 = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
import { sha256Hex } from '../core/sha256';
import { parseBlockRange } from './block-range';
import { recipeFromShorthand, recipeToJson } from '../core/recipe';
import { encodeDirectionsSafetensors, parseDirectionFile } from '../formats/direction-file';
import type { PromptInput } from '../protocol/analysis-api';
import { InvalidFileError } from '../base/errors';
import { LAYER_CHOICE_COLUMNS, layerChoiceRows, recommendLayer, SWEEP_COLUMNS } from './layer-choice';
import { isSessionSnapshot, type SessionSnapshot } from './session';
import { tableToCsv } from './table-export';

/** The demo model's folder in a workbench checkout, where `npx abliterate` runs. */
const DEMO_MODEL_PATH = 'public/models/demo';
const PROMPT_FILES = { harmful: 'harmful.jsonl', harmless: 'harmless.jsonl', referenceA: 'reference-a.jsonl', referenceB: 'reference-b.jsonl' } as const;

export function promptsToJsonl(prompts: readonly PromptInput[]): string {
  return prompts.map((prompt) => JSON.stringify({ messages: prompt.messages })).join('\n') + (prompts.length > 0 ? '\n' : '');
}

const quote = (value: string) => (/^[\w./=:-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`);

/** The `abliterate analyze` arguments that recompute report.json from the run card's prompt files ($RUN_CARD/...). */
export function reproduceArguments(snapshot: SessionSnapshot, modelPath: string): string[] {
  const result = snapshot.result!;
  const report = result.report;
  const split = (report.split ?? {}) as { heldOutFraction?: number | null; seed?: number | null };
  const capture = (report.capture ?? {}) as { batchSize?: number };
  const args = ['analyze', '--model', modelPath, '--harmful', `$RUN_CARD/prompts/${PROMPT_FILES.harmful}`, '--harmless', `$RUN_CARD/prompts/${PROMPT_FILES.harmless}`];
  if (snapshot.resultPrompts && snapshot.resultPrompts.referenceA.length > 0 && snapshot.resultPrompts.referenceB.length > 0) {
    args.push('--reference-a', `$RUN_CARD/prompts/${PROMPT_FILES.referenceA}`, '--reference-b', `$RUN_CARD/prompts/${PROMPT_FILES.referenceB}`);
  }
  args.push('--position', String(report.position));
  if (typeof split.heldOutFraction === 'number') args.push('--held-out', String(split.heldOutFraction));
  if (typeof split.seed === 'number') args.push('--seed', String(split.seed));
  if (typeof capture.batchSize === 'number') args.push('--batch-size', String(capture.batchSize));
  args.push('--out', '$RUN_CARD/reproduced');
  return args;
}

export function modelPathFor(snapshot: SessionSnapshot): string {
  return snapshot.model?.name === 'demo' ? DEMO_MODEL_PATH : `path/to/${snapshot.model?.name ?? 'model'}`;
}

export function reproduceCommand(snapshot: SessionSnapshot): string {
  return `npx abliterate ${reproduceArguments(snapshot, modelPathFor(snapshot)).map((arg) => (arg.startsWith('$RUN_CARD') ? `"${arg}"` : quote(arg))).join(' ')}`;
}

function reproduceScript(snapshot: SessionSnapshot): string {
  return [
    '#!/bin/sh',
    '# Recomputes report.json (AUCs within 1e-3: onnxruntime-node on the CPU vs the browser capture) into $RUN_CARD/reproduced/.',
    '# Run it from a checkout of the Abliteration Workbench (npx abliterate resolves there), with RUN_CARD set to',
    `# this unzipped folder${snapshot.model?.name === 'demo' ? '' : ` and ${modelPathFor(snapshot)} replaced by the model folder`}.`,
    'set -eu',
    'RUN_CARD="${RUN_CARD:-.}"',
    reproduceCommand(snapshot),
    '',
  ].join('\n');
}

function modelCard(snapshot: SessionSnapshot, files: string[]): string {
  const result = snapshot.result!;
  const report = result.report;
  const choice = recommendLayer(result, snapshot.sweep);
  const best = report.layers[choice.layer];
  const lines = [
    `# Run card — ${snapshot.model?.label ?? 'unknown model'}`,
    '',
    `Saved ${snapshot.savedAt} by the Abliteration Workbench.`,
    '',
    `- Model: ${snapshot.model ? `${snapshot.model.name} (${snapshot.model.modelType}, ${snapshot.model.numLayers} blocks, d_model ${snapshot.model.hiddenSize}); content fingerprint ${snapshot.model.fingerprint}` : 'not recorded'}`,
    `- Prompts: ${report.counts.harmful} A (refusal) and ${report.counts.harmless} B (compliance), ${report.counts.heldOut > 0 ? `${report.counts.heldOut} held out for the AUC` : 'none held out (AUCs are on the training split)'}; token position ${report.position}.`,
    `- Recommended layer: ${choice.layer} — ${choice.rule}.`,
    best ? `- Layer ${choice.layer}: AUC ${best.auc.toFixed(4)}${Array.isArray(best.aucInterval) ? ` (95 % bootstrap ${(best.aucInterval as number[]).map((end) => end.toFixed(3)).join('–')})` : ''}, train AUC ${best.aucTrain.toFixed(4)}.` : '',
  ];
  if (snapshot.evaluation) {
    const evaluation = snapshot.evaluation;
    const pct = (value: number) => `${(value * 100).toFixed(1)} %`;
    lines.push(`- Evaluation (${evaluation.ablatedLabel}): refusal ${pct(evaluation.base.refusalRate)} → ${pct(evaluation.ablated.refusalRate)} on ${evaluation.counts.harmful} prompts (95 % Wilson ${evaluation.ablated.refusalInterval.map(pct).join('–')}), first-token KL ${evaluation.klFirstToken.toPrecision(4)} on ${evaluation.counts.harmless}.`);
  }
  lines.push('', '## Files', '', ...files.map((file) => `- ${file}`), '', '## Reproduce', '', '```sh', reproduceCommand(snapshot), '```', '');
  return lines.join('\n');
}

/** The session as JSON: typed arrays become plain arrays; the directions live in directions.safetensors instead. */
/** The shorthand's block range as `recipeFromShorthand` takes it; a range that does not parse is every block. */
function blockRangeOf(text: string | undefined): { layers?: [number, number] } {
  try {
    const layers = parseBlockRange(text ?? '');
    return layers ? { layers } : {};
  } catch {
    return {};
  }
}

function sessionJson(snapshot: SessionSnapshot): string {
  const result = snapshot.result ? { ...snapshot.result, directions: [] } : null;
  return `${JSON.stringify({ ...snapshot, result }, null, 1)}\n`;
}

export interface RunCardInput {
  snapshot: SessionSnapshot;
  /** SVG text per plot name (e.g. "auc" → plots/auc.svg), rendered by the UI. */
  plots: Record<string, string>;
}

/** The run card's files by path; zip them with `savedAt` as the modification time. */
export function runCardFiles({ snapshot, plots }: RunCardInput): Record<string, Uint8Array> {
  const result = snapshot.result;
  if (!result) throw new InvalidFileError('run card', 'needs a capture result: run the capture (step 3) first');
  const files: Record<string, Uint8Array> = {};
  const put = (name: string, content: string | Uint8Array) => (files[name] = typeof content === 'string' ? strToU8(content) : content);
  put('report.json', result.reportText);
  put('directions.safetensors', encodeDirectionsSafetensors(result.directions));
  const layer = snapshot.selectedLayer ?? recommendLayer(result, snapshot.sweep).layer;
  // The current ablation's recipe: a whole recipe when one is current, else the shorthand's at the chosen layer.
  const current = snapshot.ablation.recipe?.recipe ?? recipeToJson(recipeFromShorthand({ layer, scale: snapshot.ablation.scale, targets: snapshot.ablation.targets, ...blockRangeOf(snapshot.ablation.blockRange) }));
  put('recipe.json', `${JSON.stringify(current, null, 2)}\n`);
  const hashes: string[] = [];
  const putPrompts = (name: string, prompts: readonly PromptInput[]) => {
    if (prompts.length === 0) return;
    const bytes = strToU8(promptsToJsonl(prompts));
    put(`prompts/${name}`, bytes);
    hashes.push(`${sha256Hex(bytes)}  ${name}`);
  };
  if (snapshot.resultPrompts) for (const [set, name] of Object.entries(PROMPT_FILES)) putPrompts(name, snapshot.resultPrompts[set as keyof typeof PROMPT_FILES]);
  putPrompts('eval-harmful.jsonl', snapshot.heldOut.harmful.prompts);
  putPrompts('eval-harmless.jsonl', snapshot.heldOut.harmless.prompts);
  put('prompts/SHA256SUMS', `${hashes.join('\n')}\n`);
  put('layers.csv', tableToCsv(layerChoiceRows(result, snapshot.sweep), LAYER_CHOICE_COLUMNS));
  if (snapshot.evaluation) put('eval.json', `${JSON.stringify(snapshot.evaluation, null, 2)}\n`);
  if (snapshot.sweep) {
    put('sweep.json', `${JSON.stringify(snapshot.sweep, null, 2)}\n`);
    put('sweep.csv', tableToCsv(snapshot.sweep.rows, SWEEP_COLUMNS));
  }
  for (const [name, svg] of Object.entries(plots)) put(`plots/${name}.svg`, svg);
  put('reproduce.sh', reproduceScript(snapshot));
  put('session.json', sessionJson(snapshot));
  put('README.md', modelCard(snapshot, [...Object.keys(files), 'README.md'].sort()));
  return files;
}

/** Reads a run card's files back into a snapshot (directions from directions.safetensors); one clear error per problem. */
export function snapshotFromRunCard(name: string, entries: Record<string, Uint8Array>): SessionSnapshot {
  const sessionBytes = entries['session.json'];
  if (!sessionBytes) throw new InvalidFileError(name, 'is not a run card: it has no session.json');
  let value: unknown;
  try {
    value = JSON.parse(strFromU8(sessionBytes));
  } catch (error) {
    throw new InvalidFileError(`${name}: session.json`, `is not valid JSON (${(error as Error).message})`);
  }
  if (!isSessionSnapshot(value)) throw new InvalidFileError(`${name}: session.json`, 'is not a workbench session (format or version field)');
  if (value.result) {
    const directionBytes = entries['directions.safetensors'];
    if (!directionBytes) throw new InvalidFileError(name, 'has a result but no directions.safetensors');
    const parsed = parseDirectionFile(`${name}: directions.safetensors`, directionBytes);
    if (parsed.rows.length !== value.result.report.layers.length) {
      throw new InvalidFileError(`${name}: directions.safetensors`, `holds ${parsed.rows.length} rows but report.json has ${value.result.report.layers.length} layers`);
    }
    value.result = { ...value.result, directions: parsed.rows.map((row) => Float32Array.from(row)) };
  }
  return value;
}
