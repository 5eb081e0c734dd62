/**
 * Analysis engine: captures the prompt sets through the capture engine and turns the activations into per-layer
 * directions, AUC, cosines, the recommended layer, report.json and the rows of directions.safetensors.
 * No Node imports: the CLI and the browser's analysis worker both call `analyzeModel` (or, with activations
 * from a cache, `analyzeCaptures`).
 */
import { analyzeContrast, DEFAULT_HELD_OUT_FRACTION, DEFAULT_LAYER_RANGE, DEFAULT_SEED, type ActivationSet, type ContrastAnalysis, type LayerRange, type ReferenceInput } from '../core/analysis';
import { seededSplit, StatisticsError, type Split } from '../core/statistics';
import { selectDirection, type DirectionFile } from '../formats/direction-file';
import type { PromptRecord } from '../formats/prompts';
import { buildReport, type ReportJson } from '../formats/report';
import { InvalidInputError } from '../base/errors';
import { ProgressReporter, type LongCallOptions } from '../base/progress';
import { activationsAtPosition, captureActivations, type CaptureResult, type CaptureSession } from './capture';
import type { ChatTokenizer } from './tokenize';


export type ReferenceRequest =
  | { kind: 'contrast'; a: PromptRecord[]; b: PromptRecord[] }
  | { kind: 'direction'; file: DirectionFile };

export interface AnalysisSettings {
  heldOutFraction?: number;
  seed?: number;
  /** Explicit train/held-out indices per set (e.g. a fixture's own train/test files); replaces the seeded split. */
  split?: { harmful: Split; harmless: Split };
  layerRange?: LayerRange;
  projectOutComplianceMean?: boolean;
  histogramBins?: number;
}

export interface AnalyzeRequest extends AnalysisSettings {
  harmful: PromptRecord[];
  harmless: PromptRecord[];
  reference?: ReferenceRequest;
  batchSize?: number;
  /** Describes the model in report.json ("model" field). */
  model?: Record<string, unknown>;
}

export interface AnalysisOutcome {
  analysis: ContrastAnalysis;
  report: ReportJson;
  /** Unit r_l for l = 0..L (zeros where the mean gap vanished), the rows of directions.safetensors. */
  directions: Float32Array[]; // [L + 1] × [dModel]
  /** Train-split mean activations per hidden state, written beside the directions. */
  means: { harmful: Float32Array[]; harmless: Float32Array[] }; // each [L + 1] × [dModel]
  split: { harmful: Split; harmless: Split };
  captures: { harmful: CaptureResult; harmless: CaptureResult; referenceA?: CaptureResult; referenceB?: CaptureResult };
}

function activationSet(result: CaptureResult): ActivationSet {
  return { activations: activationsAtPosition(result, 0), promptCount: result.promptCount };
}

function checkSplit(name: string, split: Split, count: number): void {
  const seen = new Set<number>();
  for (const index of [...split.train, ...split.heldOut]) {
    if (!Number.isInteger(index) || index < 0 || index >= count) throw new InvalidInputError(`${name} split index ${index} is outside 0..${count - 1}`);
    if (seen.has(index)) throw new InvalidInputError(`${name} split uses prompt ${index} twice`);
    seen.add(index);
  }
  if (split.train.length === 0) throw new InvalidInputError(`${name} split has no training prompts`);
}

/** Reference rows for the analysis: validated through the direction-file rules; all-zero per-layer rows stay (cosine null). */
function referenceRows(file: DirectionFile, layerCount: number, hiddenSize: number): Float32Array[] {
  if (!file.perLayer) return [selectDirection(file, { hiddenSize })];
  if (file.rows.length !== layerCount) {
    throw new InvalidInputError(`${file.file}: holds ${file.rows.length} per-layer directions but the model has ${layerCount} layer indices (0..${layerCount - 1})`, { file: file.file });
  }
  return file.rows.map((row, layer) => (row.every((value) => value === 0) && row.length === hiddenSize ? row : selectDirection(file, { layer, hiddenSize })));
}

export interface AnalyzeCapturesInput extends AnalysisSettings {
  harmful: CaptureResult;
  harmless: CaptureResult;
  reference?: { kind: 'contrast'; a: CaptureResult; b: CaptureResult } | { kind: 'direction'; file: DirectionFile };
  model?: Record<string, unknown>;
}

/** Analysis of activations already captured (the browser reuses cached captures). */
export function analyzeCaptures(input: AnalyzeCapturesInput): Omit<AnalysisOutcome, 'captures'> {
  const { harmful, harmless } = input;
  const { layerCount, hiddenSize } = harmful;
  if (harmless.layerCount !== layerCount || harmless.hiddenSize !== hiddenSize) {
    throw new InvalidInputError('the harmful and harmless captures come from different models');
  }
  const heldOutFraction = input.heldOutFraction ?? DEFAULT_HELD_OUT_FRACTION;
  const seed = input.seed ?? DEFAULT_SEED;
  if (!(heldOutFraction >= 0 && heldOutFraction < 1)) throw new InvalidInputError(`--held-out must be in [0, 1), got ${heldOutFraction}`);
  if (!Number.isInteger(seed)) throw new InvalidInputError(`--seed must be an integer, got ${seed}`);
  const split = input.split ?? {
    harmful: seededSplit(harmful.promptCount, heldOutFraction, seed, 0),
    harmless: seededSplit(harmless.promptCount, heldOutFraction, seed, 1),
  };
  checkSplit('harmful', split.harmful, harmful.promptCount);
  checkSplit('harmless', split.harmless, harmless.promptCount);

  let reference: ReferenceInput | undefined;
  let referenceDescription: Record<string, unknown> | null = null;
  if (input.reference?.kind === 'contrast') {
    reference = { kind: 'contrast', a: activationSet(input.reference.a), b: activationSet(input.reference.b) };
    referenceDescription = { kind: 'contrast', a: input.reference.a.promptCount, b: input.reference.b.promptCount };
  } else if (input.reference?.kind === 'direction') {
    reference = { kind: 'direction', rows: referenceRows(input.reference.file, layerCount, hiddenSize) };
    referenceDescription = { kind: 'direction', file: input.reference.file.file, perLayer: input.reference.file.perLayer };
  }

  const layerRange = input.layerRange ?? DEFAULT_LAYER_RANGE;
  let analysis: ContrastAnalysis;
  try {
    analysis = analyzeContrast({
      layerCount,
      hiddenSize,
      harmful: activationSet(harmful),
      harmless: activationSet(harmless),
      split,
      reference,
      projectOutComplianceMean: input.projectOutComplianceMean ?? false,
      layerRange,
      histogramBins: input.histogramBins,
    });
  } catch (error) {
    if (error instanceof StatisticsError) throw new InvalidInputError(`analysis failed: ${error.message}`);
    throw error;
  }
  if (analysis.recommendedLayer === null) {
    throw new InvalidInputError('the harmful and harmless prompts give the same mean activation at every layer, so there is no direction to find; check that the two prompt files differ');
  }
  const report = buildReport({
    model: input.model ?? {},
    hiddenSize,
    position: harmful.positions[0],
    harmfulCount: harmful.promptCount,
    harmlessCount: harmless.promptCount,
    heldOutFraction: input.split ? null : heldOutFraction,
    seed: input.split ? null : seed,
    analysis,
    layerRange,
    reference: referenceDescription,
    projectedOutComplianceMean: input.projectOutComplianceMean ?? false,
  });
  const directions = analysis.layers.map((layer) => Float32Array.from(layer.direction));
  const means = {
    harmful: analysis.layers.map((layer) => Float32Array.from(layer.harmfulMean)),
    harmless: analysis.layers.map((layer) => Float32Array.from(layer.harmlessMean)),
  };
  return { analysis, report, directions, means, split };
}

/** Captures every prompt set on one capture session, then analyses. Progress: one task per set, then "analyze". */
export async function analyzeModel(
  capture: CaptureSession,
  tokenizer: ChatTokenizer,
  request: AnalyzeRequest,
  options: LongCallOptions = {},
): Promise<AnalysisOutcome> {
  if (capture.positions.length !== 1) throw new InvalidInputError('analysis uses one token position; open the capture session with a single position');
  const run = (label: string, prompts: PromptRecord[]) =>
    captureActivations(capture, tokenizer, prompts, { label, batchSize: request.batchSize, signal: options.signal, onProgress: options.onProgress });
  const harmful = await run('harmful', request.harmful);
  const harmless = await run('harmless', request.harmless);
  let referenceA: CaptureResult | undefined;
  let referenceB: CaptureResult | undefined;
  if (request.reference?.kind === 'contrast') {
    referenceA = await run('reference-a', request.reference.a);
    referenceB = await run('reference-b', request.reference.b);
  }
  const progress = new ProgressReporter('analyze', options.onProgress);
  const outcome = analyzeCaptures({
    ...request,
    harmful,
    harmless,
    reference: referenceA && referenceB ? { kind: 'contrast', a: referenceA, b: referenceB } : request.reference?.kind === 'direction' ? request.reference : undefined,
  });
  progress.done();
  return { ...outcome, captures: { harmful, harmless, referenceA, referenceB } };
}
