/**
 * `abliterate analyze` (docs/contracts.md): capture the residual stream on two prompt sets and write
 * `OUT/report.json` and `OUT/directions.safetensors`. Inputs are all read and checked before the long capture;
 * the output is written to OUT.partial/ and renamed to OUT only when complete.
 */
import { join } from 'node:path';
import type { LayerRange } from '../core/analysis';
import { DEFAULT_LAYER_RANGE } from '../core/analysis';
import { DEFAULT_HELD_OUT_FRACTION, DEFAULT_SEED } from '../core/analysis';
import { analyzeModel, type ReferenceRequest } from '../engine/analyze';
import { DEFAULT_CAPTURE_BATCH_SIZE, openCaptureSession, type CaptureSession } from '../engine/capture';
import { loadChatTokenizer, type ChatTokenizer } from '../engine/tokenize';
import { contextLengthOf } from '../engine/generate';
import { encodeDirectionsSafetensors, parseDirectionFile } from '../formats/direction-file';
import { readModelConfig, type ModelConfig } from '../formats/hf-folder';
import type { PromptRecord } from '../formats/prompts';
import { serializeReport } from '../formats/report';
import type { ModelFolder } from '../ports/folder';
import { openNodeModelFolder } from '../platform/node-files';
import { createNodeOutputFolder } from '../platform/node-output';
import { createNodeSessionFactory } from '../platform/ort-node';
import { InvalidFileError, InvalidInputError } from '../base/errors';
import { integerOption, parseCommandArgs, requireOption } from './args';
import { graphInput, parseSplitOptions, printNote, readInputFile, readPromptFile, SPLIT_OPTIONS, withInterrupt, writeOutputFile } from './common';
import { createProgressPrinter } from './progress-bar';
import { findOnnxGraphFiles } from '../formats/onnx-files';
import { recipeFromShorthand, recipeToJson } from '../core/recipe';
import { writeCliRunCard } from './run-card-output';

/** Below this held-out AUC the summary warns that the direction hardly separates the sets. */
const WEAK_SEPARATION_AUC = 0.75;

/** Prompt and direction files are small; anything larger is a wrong path, not a prompt set. */
const MAX_INPUT_FILE_BYTES = 256 * 1024 * 1024;

export const help = `Usage: abliterate analyze --model DIR --harmful FILE --harmless FILE
                         [--reference-a FILE --reference-b FILE | --reference-direction FILE]
                         [--position -1] [--held-out 0.25] [--seed 0] [--batch-size N] --out DIR

Captures the residual stream at one token position for every layer index (0 = embedding output, l = output of
block l−1, L = last block before the final norm) on two prompt sets, and per layer reports the direction
r_l = normalize(mean_harmful − mean_harmless), its held-out AUC (and train AUC), d′, the mean-gap norm and the
cosine with a reference direction. Recommends a layer: highest held-out AUC within [0.2 L, 0.9 L], ties broken
by d′. Writes OUT/report.json and OUT/directions.safetensors (tensor 'directions', F32 [L+1, d_model]), and
the rest of a run card (as the workbench's "Download run card"): recipe.json (the recommended layer), the prompt
sets with SHA256SUMS, reproduce.sh (this command, reading the card's prompt copies) and README.md (a model card).

Options:
  --model DIR                HF folder with the transformers.js ONNX export in DIR/onnx/ and its tokenizer
  --harmful FILE             set A ("refusal") prompts: .txt (one per line) or .jsonl ({"prompt","system"} or {"messages"})
  --harmless FILE            set B ("compliance") prompts, same formats
  --reference-a FILE         optional reference contrast: its r_l is compared with each layer's direction …
  --reference-b FILE         … (both files are needed)
  --reference-direction FILE or a direction file (.safetensors/.npy/.json, one row or L+1 rows) instead
  --position N               token position: -1 = last prompt token (default), -2 …, or 0, 1 … from the start
  --held-out F               fraction of each set held out for the AUC (default ${DEFAULT_HELD_OUT_FRACTION}; 0 = score on train)
  --seed N                   seed of the held-out split (default ${DEFAULT_SEED})
  --batch-size N             prompts per forward pass (default ${DEFAULT_CAPTURE_BATCH_SIZE})
  --layer-range LOW-HIGH     fractions of L searched for the recommended layer (default ${DEFAULT_LAYER_RANGE.lowFraction}-${DEFAULT_LAYER_RANGE.highFraction})
  --project-out-mean         orthogonalize each direction against the normalized harmless mean
  --onnx PATH                graph to use, relative to DIR (default: onnx/model.onnx or the best graph in onnx/)
  --threads N                onnxruntime threads (default: all cores)
  --out DIR                  output folder (must not exist or be empty)`;

/** The capture reads each prompt whole: one longer than the context cannot be run (nor fit in memory). */
function checkPromptsFitContext(tokenizer: ChatTokenizer, path: string, records: readonly PromptRecord[], contextTokens: number | null): void {
  if (contextTokens === null) return;
  records.forEach((record, index) => {
    const tokens = tokenizer.encodeChat(record.messages).length;
    if (tokens > contextTokens) {
      throw new InvalidFileError(path, `prompt #${index + 1} is ${tokens} tokens long, more than the model's context (max_position_embeddings ${contextTokens}); shorten it`);
    }
  });
}

export function parseLayerRangeFractions(raw: string | undefined): LayerRange {
  if (raw === undefined) return DEFAULT_LAYER_RANGE;
  const match = /^(\d*\.?\d+)-(\d*\.?\d+)$/.exec(raw.trim());
  const range = match ? { lowFraction: Number(match[1]), highFraction: Number(match[2]) } : null;
  if (!range || !(range.lowFraction >= 0 && range.lowFraction <= range.highFraction && range.highFraction <= 1)) {
    throw new InvalidInputError(`--layer-range ${raw} is not LOW-HIGH with 0 ≤ LOW ≤ HIGH ≤ 1 (e.g. 0.2-0.9)`);
  }
  return range;
}

async function optionalConfig(folder: ModelFolder): Promise<ModelConfig | null> {
  return folder.list().includes('config.json') ? readModelConfig(folder) : null;
}

export async function run(argv: string[]): Promise<number> {
  const values = parseCommandArgs('analyze', argv, {
    model: { type: 'string' },
    harmful: { type: 'string' },
    harmless: { type: 'string' },
    'reference-a': { type: 'string' },
    'reference-b': { type: 'string' },
    'reference-direction': { type: 'string' },
    ...SPLIT_OPTIONS,
    'batch-size': { type: 'string' },
    'layer-range': { type: 'string' },
    'project-out-mean': { type: 'boolean' },
    onnx: { type: 'string' },
    threads: { type: 'string' },
    out: { type: 'string' },
  });
  const modelDir = requireOption('analyze', values, 'model');
  const harmfulPath = requireOption('analyze', values, 'harmful');
  const harmlessPath = requireOption('analyze', values, 'harmless');
  const outDir = requireOption('analyze', values, 'out');
  const { position, heldOutFraction, seed } = parseSplitOptions(values);
  const batchSize = integerOption(values, 'batch-size', DEFAULT_CAPTURE_BATCH_SIZE, (n) => n >= 1);
  const threads = integerOption(values, 'threads', 0, (n) => n >= 0);
  const layerRange = parseLayerRangeFractions(values['layer-range'] as string | undefined);
  const referenceA = values['reference-a'] as string | undefined;
  const referenceB = values['reference-b'] as string | undefined;
  const referenceDirection = values['reference-direction'] as string | undefined;
  if ((referenceA === undefined) !== (referenceB === undefined)) {
    throw new InvalidInputError('--reference-a and --reference-b go together (a reference contrast needs both sets)');
  }
  if (referenceA !== undefined && referenceDirection !== undefined) {
    throw new InvalidInputError('give either --reference-a/--reference-b or --reference-direction, not both');
  }

  // Everything cheap is checked before the capture starts.
  const folder = await openNodeModelFolder(modelDir);
  // As the workbench's folder check: without config.json there is no architecture to name layers by.
  if (!folder.list().includes('config.json')) throw new InvalidFileError(join(modelDir, 'config.json'), 'is missing: a model folder needs its config.json (the HF config) beside onnx/ and the tokenizer');
  const config = await optionalConfig(folder);
  const context = config ? contextLengthOf(config.raw) : null;
  const readPrompts = (path: string, flag: string) => readPromptFile(path, `prompt file (--${flag})`, context, MAX_INPUT_FILE_BYTES);
  const harmful = await readPrompts(harmfulPath, 'harmful');
  const harmless = await readPrompts(harmlessPath, 'harmless');
  let reference: ReferenceRequest | undefined;
  if (referenceA !== undefined && referenceB !== undefined) {
    reference = { kind: 'contrast', a: await readPrompts(referenceA, 'reference-a'), b: await readPrompts(referenceB, 'reference-b') };
  } else if (referenceDirection !== undefined) {
    reference = { kind: 'direction', file: parseDirectionFile(referenceDirection, await readInputFile(referenceDirection, 'direction file', MAX_INPUT_FILE_BYTES)) };
  }
  const onnxOverride = values.onnx as string | undefined;
  const graphs = findOnnxGraphFiles(onnxOverride ? folder.list().filter((path) => path === onnxOverride || path.startsWith(`${onnxOverride}_data`) || path.startsWith('onnx/embed_tokens')) : folder.list());
  if (!graphs || (onnxOverride && graphs.decoder !== onnxOverride)) {
    throw new InvalidFileError(
      join(modelDir, onnxOverride ?? 'onnx'),
      onnxOverride ? 'is not an ONNX graph of this folder' : 'no ONNX graph found; analyze needs a transformers.js export (onnx/model.onnx) beside the tokenizer',
    );
  }
  const tokenizer = await loadChatTokenizer(folder);
  checkPromptsFitContext(tokenizer, harmfulPath, harmful, context);
  checkPromptsFitContext(tokenizer, harmlessPath, harmless, context);
  if (reference?.kind === 'contrast') {
    checkPromptsFitContext(tokenizer, referenceA!, reference.a, context);
    checkPromptsFitContext(tokenizer, referenceB!, reference.b, context);
  }

  const onProgress = createProgressPrinter();
  const factory = createNodeSessionFactory(threads ? { threads } : {});
  const decoder = await graphInput(folder, graphs.decoder);
  const embedding = graphs.embedding ? await graphInput(folder, graphs.embedding) : undefined;
  const output = await createNodeOutputFolder(outDir, {
    inputs: [modelDir, harmfulPath, harmlessPath, ...[referenceA, referenceB, referenceDirection].filter((path): path is string => path !== undefined)],
    onNote: printNote,
  });
  // Ctrl-C (or SIGTERM) cancels between batches, so OUT.partial is removed instead of left behind.
  return withInterrupt(async (signal) => {
    let capture: CaptureSession | null = null;
    try {
      capture = await openCaptureSession(factory, decoder, { positions: [position], embedding, ...(config ? { numLayers: config.numLayers } : {}) });
      const started = Date.now();
      const outcome = await analyzeModel(
        capture,
        tokenizer,
        {
          harmful,
          harmless,
          reference,
          batchSize,
          heldOutFraction,
          seed,
          layerRange,
          projectOutComplianceMean: Boolean(values['project-out-mean']),
          model: {
            path: modelDir,
            onnx: graphs.decoder,
            graphStyle: capture.style,
            ...(config ? { modelType: config.modelType, architectures: config.architectures } : {}),
            promptFiles: { harmful: harmfulPath, harmless: harmlessPath, referenceA: referenceA ?? null, referenceB: referenceB ?? null, referenceDirection: referenceDirection ?? null },
          },
        },
        { onProgress, signal },
      );
      outcome.report.capture = { backend: factory.name, batchSize, seconds: (Date.now() - started) / 1000 };
      const directionsBytes = encodeDirectionsSafetensors(outcome.directions, outcome.means);
      await writeOutputFile(output, 'report.json', new TextEncoder().encode(serializeReport(outcome.report)));
      await writeOutputFile(output, 'directions.safetensors', directionsBytes);
      const bestLayer = outcome.report.bestLayer;
      await writeCliRunCard((path, bytes) => writeOutputFile(output, path, bytes), {
        command: 'analyze',
        argv,
        modelDir,
        config: config?.raw ?? null,
        prompts: { harmful, harmless, ...(reference?.kind === 'contrast' ? { referenceA: reference.a, referenceB: reference.b } : {}) },
        recipe: recipeToJson(recipeFromShorthand({ layer: bestLayer })),
        layer: bestLayer,
        directions: directionsBytes,
        results: null,
        report: outcome.report,
        written: ['report.json', 'directions.safetensors'],
      });
      await output.commit();
      printSummary(outcome.report);
      return 0;
    } catch (error) {
      await output.abort();
      throw error;
    } finally {
      await capture?.release();
    }
  });
}

function printSummary(report: import('../formats/report').ReportJson): void {
  const format = (value: unknown, digits: number) => (typeof value === 'number' ? value.toFixed(digits) : '—');
  const lines = ['layer   AUC  AUC(train)     d′  mean gap  cos(ref)'];
  for (const layer of report.layers) {
    const mark = layer.index === report.bestLayer ? ' ←' : '';
    lines.push(
      `${String(layer.index).padStart(5)} ${format(layer.auc, 3).padStart(5)} ${format(layer.aucTrain, 3).padStart(11)} ${format(layer.dPrime, 2).padStart(6)} ${format(layer.meanGapNorm, 3).padStart(9)} ${format(layer.cosineReference, 3).padStart(9)}${mark}`,
    );
  }
  lines.push(`recommended layer: ${report.bestLayer}`);
  const bestAuc = report.layers[report.bestLayer].auc;
  if (bestAuc < WEAK_SEPARATION_AUC) {
    lines.push(`note: the best held-out AUC is only ${bestAuc.toFixed(3)}; the two prompt sets barely differ along any mean-difference direction`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
