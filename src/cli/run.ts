/**
 * `abliterate run` (docs/contracts.md): analyze → layer sweep → recommended layer → eval → ablate, in one output
 * folder written as OUT.partial/ and renamed to OUT at the end.
 *
 * Which prompts decide what: the analysis splits each prompt file into train and held-out (seeded). The
 * directions come from the train split; the layer sweep that picks the layer generates on a sample of the
 * train split too; eval.json reports the recommended layer on the held-out split only, so its figures are
 * not flattered by either choice.
 */
import { join } from 'node:path';
import { DEFAULT_HELD_OUT_FRACTION, DEFAULT_SEED } from '../core/analysis';
import { analyzeModel, type AnalysisOutcome } from '../engine/analyze';
import { DEFAULT_CAPTURE_BATCH_SIZE, openCaptureSession, type CaptureSession } from '../engine/capture';
import { loadChatTokenizer } from '../engine/tokenize';
import { DEFAULT_LAYER_RANGE } from '../core/analysis';
import { sha256Hex } from '../core/sha256';
import { encodeDirectionsSafetensors } from '../formats/direction-file';
import { readModelConfig } from '../formats/hf-folder';
import { serializeReport } from '../formats/report';
import type { ModelFolder, OutputFolder } from '../ports/folder';
import { openNodeModelFolder } from '../platform/node-files';
import { createNodeOutputFolder } from '../platform/node-output';
import { createNodeSessionFactory } from '../platform/ort-node';
import { InvalidFileError, InvalidInputError } from '../base/errors';
import { checkEditsFitChunk, DEFAULT_MAX_CHUNK_BYTES, planAblation, type AblationManifest } from '../engine/ablate';
import { contextLengthOf, DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS, type Conversation } from '../engine/generate';
import { EvaluationSession, type EvaluationReport } from '../engine/evaluate';
import { DEFAULT_KL_BOUND } from '../engine/layer-sweep';
import { pipelineRecipe as resolveAblationRecipe, runPipeline, writePipelineModel, type PipelineChoice } from '../engine/pipeline';
import { integerOption, numberOption, parseCommandArgs, requireOption } from './args';
import {
  ABLATION_OPTIONS,
  graphInput,
  parseAblationOptions,
  parseLayerRange,
  parseSplitOptions,
  printNote,
  readMarkerFile,
  readPromptConversations,
  SPLIT_OPTIONS,
  withInterrupt,
  writeOutputFile,
} from './common';
import { createProgressPrinter } from './progress-bar';
import { agentHelp, AGENT_OPTIONS, formatAgentEvaluation, readAgentOptions } from './agent-options';
import { findOnnxGraphFiles } from '../formats/onnx-files';
import { resultsFromEvaluation } from '../formats/model-card';
import { recipeToJson } from '../core/recipe';
import { promptRecords, writeCliRunCard } from './run-card-output';

/** Prompts per set the sweep generates on for each layer: enough to rank layers, cheap enough to try many. */
export const DEFAULT_SWEEP_PROMPTS = 32;
/** Layers the sweep tries by default: the analysis' best by AUC (then d′); bounds the cost on deep models. */
export const DEFAULT_SWEEP_TOP = 8;

export const help = `Usage: abliterate run --model DIR --harmful FILE --harmless FILE --out OUT
                    [--reference-a FILE --reference-b FILE] [--eval-harmful FILE --eval-harmless FILE]
                    [--position -1] [--held-out 0.25] [--seed 0] [--batch-size N]
                    [--max-new-tokens ${DEFAULT_MAX_NEW_TOKENS}] [--kl-bound ${DEFAULT_KL_BOUND}] [--sweep-prompts ${DEFAULT_SWEEP_PROMPTS}]
                    [--sweep-top ${DEFAULT_SWEEP_TOP} | --sweep-layers A-B]
                    [--layer N] [--scale 1] [--targets embed,attn,mlp] [--trials N] [--markers FILE]
                    [--agent FILE [--action-keys cmd,command]]

The whole recipe in one go:
  1. analyze   per-layer directions from the train split of both prompt files (as 'abliterate analyze')
  2. sweep     for each candidate layer's direction, hook-ablated refusal rate and first-token KL on a sample
               of the train prompts; recommended layer = lowest refusal rate with KL ≤ --kl-bound (ties: lower KL)
               (with --trials N: the recipe search instead, as 'abliterate optimize' on the same train sample;
               the chosen trial = lowest refusal rate on the Pareto front with KL ≤ --kl-bound)
  3. eval      base vs ablated with the recommended layer (or chosen recipe) on the held-out prompts (as 'abliterate eval')
  4. ablate    when DIR has *.safetensors, the edited model (as 'abliterate ablate') in OUT/model/
Prints a summary table and writes OUT/report.json, OUT/directions.safetensors, OUT/eval.json, OUT/model/, and
the rest of a run card: recipe.json, sweep.json, the prompt sets with SHA256SUMS, reproduce.sh, README.md
(and OUT/trials.jsonl with --trials).
OUT is written as OUT.partial/ and renamed when complete.

Options:
  --model DIR          HF folder: onnx/model.onnx + tokenizer for analysis and eval, *.safetensors for ablate
  --harmful FILE       refusal prompts (.txt one per line, or .jsonl)
  --harmless FILE      compliance prompts
  --reference-a FILE   optional reference contrast (as 'abliterate analyze'): report.json gains each layer's
  --reference-b FILE   cosine with the reference direction (both files are needed)
  --eval-harmful FILE  evaluate (step 3) on these refusal prompts instead of the held-out split …
  --eval-harmless FILE … and on these compliance prompts for the first-token KL (both files are needed)
  --position N         token position for the analysis (default -1, the last prompt token)
  --held-out F         held-out fraction of each set (default ${DEFAULT_HELD_OUT_FRACTION})
  --seed N             seed of the split (default ${DEFAULT_SEED})
  --batch-size N       prompts per forward pass (default ${DEFAULT_BATCH_SIZE} for generation, ${DEFAULT_CAPTURE_BATCH_SIZE} for capture)
  --max-new-tokens N   reply length for refusal classification (default ${DEFAULT_MAX_NEW_TOKENS})
  --kl-bound K         largest acceptable first-token KL for the recommendation (default ${DEFAULT_KL_BOUND})
  --sweep-prompts N    prompts per set in the sweep (default ${DEFAULT_SWEEP_PROMPTS})
  --sweep-top N        sweep the analysis' N best layers by held-out AUC (then d′) within its candidate range
                       ${DEFAULT_LAYER_RANGE.lowFraction}·L to ${DEFAULT_LAYER_RANGE.highFraction}·L (default ${DEFAULT_SWEEP_TOP})
  --sweep-layers A-B   sweep exactly these layer indices instead
  --layer N            skip the sweep and use this layer index
  --scale α            ablation strength (default 1)
  --targets LIST       comma-separated subset of embed,attn,mlp (default all three)
  --trials N           choose a recipe with N trials of the recipe search instead of the single-layer sweep
                       (direction, projection, per-block kernels; standard method); the edit applies that recipe
  --markers FILE       refusal markers instead of the default list (.json array or .txt one per line)
  --threads N          onnxruntime threads for the capture (default: all cores)
${agentHelp(23)}
                       (all of FILE is evaluated with the recommended layer; keep it out of --harmless)`;

/** Every `count`-th prompt spread over the list, so the sample covers the whole file, deterministically. */
export function spreadSample<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  return Array.from({ length: count }, (_, index) => items[Math.floor((index * items.length) / count)]!);
}

/** e₀ of length `size`: a unit vector for validating an ablation plan before the real direction is known. */
function unitVector(size: number): Float32Array {
  const vector = new Float32Array(size);
  vector[0] = 1;
  return vector;
}

/** Presents `model/` of the run's output as an output folder of its own; the run commits the whole. */
function subfolder(output: OutputFolder, prefix: string): OutputFolder {
  return {
    name: `${output.name}/${prefix}`,
    createFile: (path, options) => output.createFile(`${prefix}/${path}`, options),
    commit: async () => {},
    abort: async () => {},
  };
}

export async function run(argv: string[]): Promise<number> {
  const values = parseCommandArgs('run', argv, {
    model: { type: 'string' },
    harmful: { type: 'string' },
    harmless: { type: 'string' },
    'reference-a': { type: 'string' },
    'reference-b': { type: 'string' },
    'eval-harmful': { type: 'string' },
    'eval-harmless': { type: 'string' },
    out: { type: 'string' },
    ...SPLIT_OPTIONS,
    'batch-size': { type: 'string' },
    'max-new-tokens': { type: 'string' },
    'kl-bound': { type: 'string' },
    'sweep-prompts': { type: 'string' },
    'sweep-layers': { type: 'string' },
    'sweep-top': { type: 'string' },
    ...ABLATION_OPTIONS,
    trials: { type: 'string' },
    markers: { type: 'string' },
    threads: { type: 'string' },
    ...AGENT_OPTIONS,
  });
  const modelDir = requireOption('run', values, 'model');
  const harmfulPath = requireOption('run', values, 'harmful');
  const harmlessPath = requireOption('run', values, 'harmless');
  const outDir = requireOption('run', values, 'out');
  const { position, heldOutFraction, seed } = parseSplitOptions(values);
  const batchSize = values['batch-size'] === undefined ? undefined : integerOption(values, 'batch-size', DEFAULT_BATCH_SIZE, (n) => n >= 1 && n <= 1024);
  const maxNewTokens = integerOption(values, 'max-new-tokens', DEFAULT_MAX_NEW_TOKENS, (n) => n >= 1 && n <= 4096);
  const klBound = numberOption(values, 'kl-bound', DEFAULT_KL_BOUND, (n) => n >= 0);
  const sweepPrompts = integerOption(values, 'sweep-prompts', DEFAULT_SWEEP_PROMPTS, (n) => n >= 1);
  const sweepRange = parseLayerRange(values['sweep-layers'] as string | undefined);
  const sweepTop = integerOption(values, 'sweep-top', DEFAULT_SWEEP_TOP, (n) => n >= 1);
  if (sweepRange && values['sweep-top'] !== undefined) throw new InvalidInputError('give either --sweep-top or --sweep-layers, not both');
  const { layer: fixedLayer, scale, targets } = parseAblationOptions(values);
  const threads = integerOption(values, 'threads', 0, (n) => n >= 0);
  const trials = values.trials === undefined ? undefined : integerOption(values, 'trials', 1, (n) => n >= 1);
  if (trials !== undefined) {
    const clashing = (['layer', 'scale', 'targets', 'sweep-layers', 'sweep-top'] as const).filter((flag) => values[flag] !== undefined);
    if (clashing.length > 0) throw new InvalidInputError(`--trials chooses the whole recipe; drop ${clashing.map((flag) => `--${flag}`).join(', ')}`);
  }
  const markers = values.markers === undefined ? undefined : await readMarkerFile(values.markers as string);

  // Everything cheap is read and checked before anything is written or computed.
  const agent = await readAgentOptions(values);
  const folder = await openNodeModelFolder(modelDir);
  const config = await readModelConfig(folder);
  const context = contextLengthOf(config.raw);
  const harmful = await readPromptConversations(harmfulPath, 'harmful prompt file', context);
  const harmless = await readPromptConversations(harmlessPath, 'harmless prompt file', context);
  const pairOf = async (a: 'reference-a' | 'eval-harmful', b: 'reference-b' | 'eval-harmless', what: string) => {
    const [pathA, pathB] = [values[a] as string | undefined, values[b] as string | undefined];
    if ((pathA === undefined) !== (pathB === undefined)) throw new InvalidInputError(`--${a} and --${b} go together: give both or neither`);
    return pathA && pathB ? { a: await readPromptConversations(pathA, `${what} (--${a})`, context), b: await readPromptConversations(pathB, `${what} (--${b})`, context) } : null;
  };
  const reference = await pairOf('reference-a', 'reference-b', 'reference prompt file');
  const evalSets = await pairOf('eval-harmful', 'eval-harmless', 'evaluation prompt file');
  const graphs = findOnnxGraphFiles(folder.list());
  if (!graphs) throw new InvalidFileError(join(modelDir, 'onnx'), 'no ONNX graph found; run needs a transformers.js export (onnx/model.onnx) beside the tokenizer');
  if (fixedLayer !== undefined && fixedLayer > config.numLayers) throw new InvalidInputError(`--layer ${fixedLayer} is outside 0..${config.numLayers} (the model has ${config.numLayers} blocks)`);
  const hasSafetensors = folder.list().some((path) => path.endsWith('.safetensors'));
  // The weights are validated now (every header, the index, the targets), not after hours of analysis and sweep:
  // the plan depends on the direction only through its length, so any unit vector of hidden_size stands in.
  // A search may weight any component, so its plan is checked with all of them.
  if (hasSafetensors) checkEditsFitChunk(await planAblation(folder, { direction: unitVector(config.hiddenSize), scale, targets: trials === undefined ? targets : ['embed', 'attn', 'mlp'] }, null), DEFAULT_MAX_CHUNK_BYTES);
  const started = Date.now();
  const output = await createNodeOutputFolder(outDir, { inputs: [modelDir, harmfulPath, harmlessPath], onNote: printNote });
  const onProgress = createProgressPrinter();
  try {
    const result = await withInterrupt(async (signal) => {
      // 0. every prompt must fit the context before hours of capture and generation start
      const session = await EvaluationSession.open(folder, { signal, onProgress, onnxFile: graphs.decoder });
      try {
        session.checkPromptsFit(harmful, harmfulPath);
        session.checkPromptsFit(harmless, harmlessPath);
        if (agent) session.checkPromptsFit(agent.prompts, agent.path);
      } catch (error) {
        await session.dispose();
        throw error;
      }
      // 1. analyze
      const outcome = await analyze(folder, graphs, { harmful, harmless, reference, position, heldOutFraction, seed, batchSize, threads, numLayers: config.numLayers, modelDir, harmfulPath, harmlessPath }, signal, onProgress);
      try {
        const pick = (set: Conversation[], indices: number[]) => indices.map((index) => set[index]!);
        const heldOut = {
          harmful: evalSets ? evalSets.a : outcome.split.harmful.heldOut.length ? pick(harmful, outcome.split.harmful.heldOut) : harmful,
          harmless: evalSets ? evalSets.b : outcome.split.harmless.heldOut.length ? pick(harmless, outcome.split.harmless.heldOut) : harmless,
        };
        const range = sweepRange ?? null;
        const candidates = range ? Array.from({ length: range[1] - range[0] + 1 }, (_, index) => range[0] + index) : outcome.analysis.layerRanking.slice(0, sweepTop).sort((a, b) => a - b);
        // 2. choose on a sample of the train prompts (sweep or search), 3. evaluate on the held-out prompts
        const pipeline = await runPipeline(session, folder, outcome, {
          train: { harmful: spreadSample(pick(harmful, outcome.split.harmful.train), sweepPrompts), harmless: spreadSample(pick(harmless, outcome.split.harmless.train), sweepPrompts) },
          heldOut,
          ...(fixedLayer !== undefined ? { fixedLayer } : {}),
          candidates,
          ...(trials !== undefined ? { trials } : {}),
          seed,
          klBound,
          scale,
          targets,
          maxNewTokens,
          ...(batchSize ? { batchSize } : {}),
          ...(markers ? { markers } : {}),
          onnxFile: graphs.decoder,
          ...(agent ? { agent: { prompts: agent.prompts, actionKeys: agent.actionKeys } } : {}),
          signal,
          onProgress,
        });
        return { outcome, pipeline, heldOutIsTrain: !evalSets && outcome.split.harmful.heldOut.length === 0 };
      } finally {
        await session.dispose();
      }
    });
    // 4. ablate: the very selection that was evaluated
    const directionsBytes = encodeDirectionsSafetensors(result.outcome.directions, result.outcome.means);
    const { pipeline } = result;
    const { choice } = pipeline;
    const chosenText = choice.kind === 'layer' ? `layer ${choice.layer}` : `search trial ${choice.chosen.trial}`;
    const cardResults = resultsFromEvaluation(pipeline.evaluation, `eval.json: ${chosenText}, ${evalSets ? 'the --eval-* prompt files' : 'the held-out split'}`);
    let manifest: AblationManifest | null = null;
    if (hasSafetensors) {
      manifest = await withInterrupt((signal) =>
        writePipelineModel(folder, subfolder(output, 'model'), pipeline, { file: 'directions.safetensors', sha256: sha256Hex(directionsBytes) }, { results: cardResults, signal, onProgress }),
      );
    }
    const report = result.outcome.report;
    const layer = choice.kind === 'layer' ? choice.layer : null;
    report.run =
      choice.kind === 'layer'
        ? { recommendedLayer: choice.layer, recommendation: choice.sweep?.recommendation ?? { layer: choice.layer, reason: choice.reason }, klBound }
        : { recommendedLayer: null, recipe: choice.chosen.recipe, recommendation: { trial: choice.chosen.trial, reason: choice.reason }, klBound };
    const evalJson = {
      ...pipeline.evaluation,
      layer,
      ...(choice.kind === 'recipe' ? { recipe: choice.chosen.recipe, search: { trials: choice.search.trials.length, chosenTrial: choice.chosen.trial, paretoTrials: choice.search.pareto.map((trial) => trial.trial) } } : {}),
      split: 'held-out',
      ...(result.heldOutIsTrain ? { note: '--held-out 0: evaluated on the same prompts the direction came from' } : {}),
      layerSweep: choice.kind === 'layer' ? choice.sweep : null,
    };
    if (choice.kind === 'recipe') await writeOutputFile(output, 'trials.jsonl', new TextEncoder().encode(choice.search.trials.map((trial) => `${JSON.stringify(trial)}\n`).join('')));
    await writeOutputFile(output, 'report.json', new TextEncoder().encode(serializeReport(report)));
    await writeOutputFile(output, 'directions.safetensors', directionsBytes);
    await writeOutputFile(output, 'eval.json', new TextEncoder().encode(`${JSON.stringify(evalJson, null, 1)}\n`));
    await writeCliRunCard((path, bytes) => writeOutputFile(output, path, bytes), {
      command: 'run', argv, modelDir, config: config.raw, recipe: recipeToJson(resolveAblationRecipe(pipeline)), layer: pipeline.row, directions: directionsBytes, results: cardResults, sweep: choice.kind === 'layer' ? choice.sweep : null,
      prompts: { harmful: promptRecords(harmful), harmless: promptRecords(harmless), ...(reference ? { referenceA: promptRecords(reference.a), referenceB: promptRecords(reference.b) } : {}), ...(evalSets ? { evalHarmful: promptRecords(evalSets.a), evalHarmless: promptRecords(evalSets.b) } : {}), ...(agent ? { agent: promptRecords(agent.prompts) } : {}) },
      report, written: ['report.json', 'directions.safetensors', 'eval.json', ...(manifest ? ['model/'] : [])],
    });
    await output.commit();
    process.stdout.write(summary(result.outcome, choice, pipeline.evaluation, manifest, outDir, (Date.now() - started) / 1000, evalSets ? 'eval-file' : 'held-out'));
    return 0;
  } catch (error) {
    await output.abort().catch(() => undefined);
    throw error;
  }
}

interface AnalyzeInputs {
  harmful: Conversation[];
  harmless: Conversation[];
  reference: { a: Conversation[]; b: Conversation[] } | null;
  position: number;
  heldOutFraction: number;
  seed: number;
  batchSize: number | undefined;
  threads: number;
  numLayers: number;
  modelDir: string;
  harmfulPath: string;
  harmlessPath: string;
}

export async function analyze(
  folder: ModelFolder,
  graphs: NonNullable<ReturnType<typeof findOnnxGraphFiles>>,
  inputs: AnalyzeInputs,
  signal: AbortSignal,
  onProgress: ReturnType<typeof createProgressPrinter>,
): Promise<AnalysisOutcome> {
  const tokenizer = await loadChatTokenizer(folder);
  const factory = createNodeSessionFactory(inputs.threads ? { threads: inputs.threads } : {});
  const decoder = await graphInput(folder, graphs.decoder);
  const embedding = graphs.embedding ? await graphInput(folder, graphs.embedding) : undefined;
  let capture: CaptureSession | null = null;
  try {
    capture = await openCaptureSession(factory, decoder, { positions: [inputs.position], embedding, numLayers: inputs.numLayers });
    return await analyzeModel(
      capture,
      tokenizer,
      {
        harmful: inputs.harmful.map((messages) => ({ messages: [...messages] })),
        harmless: inputs.harmless.map((messages) => ({ messages: [...messages] })),
        ...(inputs.reference
          ? { reference: { kind: 'contrast' as const, a: inputs.reference.a.map((messages) => ({ messages: [...messages] })), b: inputs.reference.b.map((messages) => ({ messages: [...messages] })) } }
          : {}),
        batchSize: inputs.batchSize ?? DEFAULT_CAPTURE_BATCH_SIZE,
        heldOutFraction: inputs.heldOutFraction,
        seed: inputs.seed,
        model: { path: inputs.modelDir, onnx: graphs.decoder, graphStyle: capture.style, promptFiles: { harmful: inputs.harmfulPath, harmless: inputs.harmlessPath } },
      },
      { signal, onProgress },
    );
  } finally {
    await capture?.release();
  }
}

function summary(outcome: AnalysisOutcome, choice: PipelineChoice, evaluation: EvaluationReport, manifest: AblationManifest | null, outDir: string, seconds: number, evaluationSource: 'held-out' | 'eval-file'): string {
  const percent = (value: number | undefined) => (value === undefined ? '     —' : `${(value * 100).toFixed(1).padStart(5)}%`);
  const fixed = (value: number | undefined, digits: number) => (value === undefined ? '—' : value.toFixed(digits));
  const lines: string[] = [''];
  let chosen: string;
  if (choice.kind === 'layer') {
    const { sweep, layer } = choice;
    const sweepRows = new Map((sweep?.rows ?? []).map((row) => [row.layer, row]));
    lines.push('layer    AUC  refusal before  refusal after  first-token KL   (sweep: train prompts)');
    for (const entry of outcome.report.layers) {
      const row = sweepRows.get(entry.index);
      if (!row && entry.index !== layer) continue;
      lines.push(
        `${entry.index === layer ? '→' : ' '}${String(entry.index).padStart(4)}  ${fixed(entry.auc, 3).padStart(5)}  ${percent(sweep?.baseRefusalRate).padStart(14)}  ${percent(row?.refusalRate).padStart(13)}  ${fixed(row?.klFirstToken, 4).padStart(14)}`,
      );
    }
    lines.push('', `recommended layer ${layer}: ${choice.reason}`);
    chosen = `layer ${layer}`;
  } else {
    lines.push(`recipe search (train prompts): ${choice.search.trials.length} trials, ${choice.search.pareto.length} on the Pareto front`);
    lines.push(`chosen recipe: ${JSON.stringify(choice.chosen.recipe)}`, `  ${choice.reason}`);
    chosen = `trial ${choice.chosen.trial}`;
  }
  lines.push(
    `${evaluationSource} evaluation, ${chosen}: refusal ${percent(evaluation.base.refusalRate).trim()} → ${percent(evaluation.ablated.refusalRate).trim()} (${evaluation.counts.harmful} prompts), first-token KL ${evaluation.klFirstToken.toFixed(4)} (${evaluation.counts.harmless} prompts)`,
    ...(evaluation.agent ? [formatAgentEvaluation(evaluation.agent)] : []),
    '',
    'files written:',
    `  ${outDir}/report.json`,
    `  ${outDir}/directions.safetensors   (${outcome.directions.length} × ${outcome.directions[0]?.length ?? 0})`,
    `  ${outDir}/eval.json`,
    ...(choice.kind === 'recipe' ? [`  ${outDir}/trials.jsonl   (${choice.search.trials.length} trials)`] : []),
    manifest ? `  ${outDir}/model/   (${Object.keys(manifest.files).length} files, ${manifest.editedTensors.length} tensors edited)` : `  (no *.safetensors in the model folder: no edited model written)`,
    `done in ${seconds.toFixed(1)} s`,
    '',
  );
  return lines.join('\n');
}
