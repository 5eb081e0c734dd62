/**
 * The run card from a workbench session (the format is formats/run-card.ts, shared with the CLI): report.json and
 * directions.safetensors exactly as `abliterate analyze` writes them, recipe.json, the prompt sets with SHA-256
 * hashes, eval.json and the sweep, the layer table, the plots as SVG, reproduce.sh with the exact
 * `npx abliterate analyze …` command, the model card (README.md), and session.json, from which the workbench
 * restores plots and tables without the model. Files by path here; the page zips and unzips them
 * (platform/zip-archive.ts).
 */
import { sha256Hex } from '../core/sha256';
import { recipeFromShorthand, recipeToJson } from '../core/recipe';
import { encodeDirectionsSafetensors, parseDirectionFile } from '../formats/direction-file';
import { buildModelCard, resultsFromEvaluation, TOOL } from '../formats/model-card';
import { cardArguments, commandLine, reproduceScript, runCardFiles as formatRunCardFiles, type PromptSetName } from '../formats/run-card';
import { InvalidFileError } from '../base/errors';
import { LAYER_CHOICE_COLUMNS, layerChoiceRows, recommendLayer, SWEEP_COLUMNS } from './layer-choice';
import { isSessionSnapshot, type SessionSnapshot } from './session';
import { tableToCsv } from './table-export';

export { promptsToJsonl } from '../formats/run-card';

const strFromU8 = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** The demo model's folder in a workbench checkout, where `npx abliterate` runs. */
const DEMO_MODEL_PATH = 'public/models/demo';

/** The `abliterate analyze` arguments that recompute report.json from the run card's prompt files ($RUN_CARD/...). */
export function reproduceArguments(snapshot: SessionSnapshot, modelPath: string): string[] {
  const result = snapshot.result!;
  const report = result.report;
  const split = (report.split ?? {}) as { heldOutFraction?: number | null; seed?: number | null };
  const capture = (report.capture ?? {}) as { batchSize?: number };
  const args = ['analyze', '--model', modelPath, '--harmful', 'harmful', '--harmless', 'harmless'];
  const present = new Set<PromptSetName>(['harmful', 'harmless']);
  if (snapshot.resultPrompts && snapshot.resultPrompts.referenceA.length > 0 && snapshot.resultPrompts.referenceB.length > 0) {
    args.push('--reference-a', 'reference-a', '--reference-b', 'reference-b');
    present.add('referenceA').add('referenceB');
  }
  args.push('--position', String(report.position));
  if (typeof split.heldOutFraction === 'number') args.push('--held-out', String(split.heldOutFraction));
  if (typeof split.seed === 'number') args.push('--seed', String(split.seed));
  if (typeof capture.batchSize === 'number') args.push('--batch-size', String(capture.batchSize));
  args.push('--out', 'out');
  return cardArguments(args, present);
}

export function modelPathFor(snapshot: SessionSnapshot): string {
  return snapshot.model?.name === 'demo' ? DEMO_MODEL_PATH : `path/to/${snapshot.model?.name ?? 'model'}`;
}

export function reproduceCommand(snapshot: SessionSnapshot): string {
  return commandLine(reproduceArguments(snapshot, modelPathFor(snapshot)));
}

function reproduceComments(snapshot: SessionSnapshot): string[] {
  return [
    'Recomputes report.json (AUCs within 1e-3: onnxruntime-node on the CPU vs the browser capture) into $RUN_CARD/reproduced/.',
    'Run it from a checkout of the Abliteration Workbench (npx abliterate resolves there), with RUN_CARD set to',
    `this unzipped folder${snapshot.model?.name === 'demo' ? '' : ` and ${modelPathFor(snapshot)} replaced by the model folder`}.`,
  ];
}

/** The model card of the ablation the card's recipe describes, then what the session measured. */
function modelCard(snapshot: SessionSnapshot, recipe: Record<string, unknown>, layer: number, directionsSha256: string): string {
  const result = snapshot.result!;
  const report = result.report;
  const choice = recommendLayer(result, snapshot.sweep);
  const best = report.layers[choice.layer];
  const evaluation = snapshot.evaluation;
  const card = buildModelCard(
    {
      baseModel: snapshot.model?.name ?? 'model',
      libraryName: 'transformers',
      onnx: null,
      recipe,
      direction: { file: 'directions.safetensors', fileSha256: directionsSha256, layer, sha256: null },
      results: evaluation ? resultsFromEvaluation(evaluation, `eval.json: the workbench's evaluation of ${evaluation.ablatedLabel}`) : null,
      tool: TOOL,
      manifestFile: null,
    },
    null,
  );
  const lines = [
    '## Run',
    '',
    `Saved ${snapshot.savedAt} by the Abliteration Workbench.`,
    '',
    `- Model: ${snapshot.model ? `${snapshot.model.label}: ${snapshot.model.name} (${snapshot.model.modelType}, ${snapshot.model.numLayers} blocks, d_model ${snapshot.model.hiddenSize}); content fingerprint ${snapshot.model.fingerprint}` : 'not recorded'}`,
    `- Prompts: ${report.counts.harmful} A (refusal) and ${report.counts.harmless} B (compliance), ${report.counts.heldOut > 0 ? `${report.counts.heldOut} held out for the AUC` : 'none held out (AUCs are on the training split)'}; token position ${report.position}.`,
    `- Recommended layer: ${choice.layer} — ${choice.rule}.`,
    best ? `- Layer ${choice.layer}: AUC ${best.auc.toFixed(4)}${Array.isArray(best.aucInterval) ? ` (95 % bootstrap ${(best.aucInterval as number[]).map((end) => end.toFixed(3)).join('–')})` : ''}, train AUC ${best.aucTrain.toFixed(4)}.` : '',
  ];
  if (evaluation) {
    const pct = (value: number) => `${(value * 100).toFixed(1)} %`;
    lines.push(`- Evaluation (${evaluation.ablatedLabel}): refusal ${pct(evaluation.base.refusalRate)} → ${pct(evaluation.ablated.refusalRate)} on ${evaluation.counts.harmful} prompts (95 % Wilson ${evaluation.ablated.refusalInterval.map(pct).join('–')}), first-token KL ${evaluation.klFirstToken.toPrecision(4)} on ${evaluation.counts.harmless}.`);
  }
  return `${card}\n${lines.join('\n')}\n`;
}

/** The session as JSON: typed arrays become plain arrays; the directions live in directions.safetensors instead. */
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
  const directions = encodeDirectionsSafetensors(result.directions);
  const layer = snapshot.selectedLayer ?? recommendLayer(result, snapshot.sweep).layer;
  const recipe = recipeToJson(recipeFromShorthand({ layer, scale: snapshot.ablation.scale, targets: snapshot.ablation.targets }));
  const prompts = snapshot.resultPrompts;
  return formatRunCardFiles({
    reportText: result.reportText,
    directions,
    recipe,
    prompts: {
      ...(prompts ? { harmful: prompts.harmful, harmless: prompts.harmless, referenceA: prompts.referenceA, referenceB: prompts.referenceB } : {}),
      evalHarmful: snapshot.heldOut.harmful.prompts,
      evalHarmless: snapshot.heldOut.harmless.prompts,
    },
    ...(snapshot.evaluation ? { evaluation: `${JSON.stringify(snapshot.evaluation, null, 2)}\n` } : {}),
    ...(snapshot.sweep ? { sweep: { json: `${JSON.stringify(snapshot.sweep, null, 2)}\n`, csv: tableToCsv(snapshot.sweep.rows, SWEEP_COLUMNS) } } : {}),
    layersCsv: tableToCsv(layerChoiceRows(result, snapshot.sweep), LAYER_CHOICE_COLUMNS),
    plots,
    reproduce: reproduceScript(reproduceArguments(snapshot, modelPathFor(snapshot)), reproduceComments(snapshot)),
    modelCard: modelCard(snapshot, recipe, layer, sha256Hex(directions)),
    session: sessionJson(snapshot),
  });
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
