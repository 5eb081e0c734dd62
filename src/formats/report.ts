/**
 * `report.json` (docs/contracts.md): the contract's fields always present, extra fields allowed. One builder and one
 * serializer, so `abliterate analyze` and the workbench's `report.download` write the same bytes for the same
 * analysis. JSON has no NaN or Infinity: undefined quantities (a cosine with a zero direction, an infinite d′)
 * are written as null.
 */
import type { ContrastAnalysis, LayerRange } from '../core/analysis';
import { bootstrapAucInterval, DEFAULT_BOOTSTRAP_RESAMPLES } from '../core/intervals';
import { InvalidFileError } from '../base/errors';
import type { ReportJson } from './report-json';

export type { ReportCounts, ReportJson, ReportLayer } from './report-json';

export interface ReportInput {
  model: Record<string, unknown>;
  hiddenSize: number;
  position: number;
  harmfulCount: number;
  harmlessCount: number;
  /** null when the caller gave explicit train/held-out indices instead of a seeded split. */
  heldOutFraction: number | null;
  seed: number | null;
  analysis: ContrastAnalysis;
  layerRange: LayerRange;
  reference: Record<string, unknown> | null;
  projectedOutComplianceMean: boolean;
  /** Anything else worth recording (backend, batch size, timings). */
  extra?: Record<string, unknown>;
}

export const REPORT_FORMAT_VERSION = 1;

const finiteOrNull = (value: number): number | null => (Number.isFinite(value) ? value : null);

/** 95 % bootstrap interval of a layer's held-out AUC, seeded per layer so each layer's draws are its own; null when degenerate. */
function aucInterval(layer: ContrastAnalysis['layers'][number], seed: number): [number, number] | null {
  if (layer.degenerate) return null;
  const interval = bootstrapAucInterval(layer.projections.heldOutHarmful, layer.projections.heldOutHarmless, { seed: Math.imul(seed + 1, 0x9e3779b1) ^ layer.index });
  return [interval.low, interval.high];
}

export function buildReport(input: ReportInput): ReportJson {
  const { analysis } = input;
  if (analysis.recommendedLayer === null) {
    throw new Error('buildReport needs a recommended layer; the engine reports the degenerate case as an input error');
  }
  const heldOutHarmful = analysis.layers[0]?.projections.heldOutHarmful.length ?? 0;
  const heldOutHarmless = analysis.layers[0]?.projections.heldOutHarmless.length ?? 0;
  return {
    model: input.model,
    hiddenSize: input.hiddenSize,
    numLayers: analysis.layers.length - 1,
    position: input.position,
    counts: {
      harmful: input.harmfulCount,
      harmless: input.harmlessCount,
      heldOut: analysis.heldOutIsTrain ? 0 : heldOutHarmful + heldOutHarmless,
      heldOutHarmful: analysis.heldOutIsTrain ? 0 : heldOutHarmful,
      heldOutHarmless: analysis.heldOutIsTrain ? 0 : heldOutHarmless,
    },
    bestLayer: analysis.recommendedLayer,
    layers: analysis.layers.map((layer) => ({
      index: layer.index,
      auc: layer.auc,
      aucTrain: layer.aucTrain,
      aucInterval: aucInterval(layer, input.seed ?? 0),
      cosineReference: layer.cosineReference,
      meanGapNorm: layer.meanGapNorm,
      dPrime: finiteOrNull(layer.dPrime),
      dPrimeTrain: finiteOrNull(layer.dPrimeTrain),
      meanNormHarmful: layer.meanNormHarmful,
      meanNormHarmless: layer.meanNormHarmless,
      degenerate: layer.degenerate,
      histogram: layer.histogram,
    })),
    formatVersion: REPORT_FORMAT_VERSION,
    recommendation: {
      rule: 'highest held-out AUC among candidate layers, ties broken by held-out d′ (standardized mean gap), then by lower index',
      layerRange: input.layerRange,
      candidateLayers: analysis.candidateLayers,
      ranking: analysis.layerRanking,
    },
    intervals: { auc: `95 % stratified percentile bootstrap of the held-out AUC, ${DEFAULT_BOOTSTRAP_RESAMPLES} resamples, seeded with the split seed` },
    split: { heldOutFraction: input.heldOutFraction, seed: input.seed, aucOnTrainSplit: analysis.heldOutIsTrain },
    reference: input.reference,
    projectedOutComplianceMean: input.projectedOutComplianceMean,
    crossLayerCosine: analysis.cosineMatrix,
    ...input.extra,
  };
}

/** The report's bytes: 2-space JSON and a final newline. */
export function serializeReport(report: ReportJson): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Reads a report.json back (the `run` command, the workbench's import), checking every contract field. */
export function parseReport(file: string, text: string): ReportJson {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidFileError(file, `is not valid JSON: ${(error as Error).message}`);
  }
  const fail = (problem: string): never => {
    throw new InvalidFileError(file, `is not a report.json: ${problem}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('the top level is not an object');
  const report = value as Record<string, unknown>;
  if (typeof report.model !== 'object' || report.model === null) fail('"model" is missing');
  for (const key of ['hiddenSize', 'numLayers', 'position', 'bestLayer'] as const) {
    if (!Number.isInteger(report[key])) fail(`"${key}" is not an integer`);
  }
  const counts = report.counts as Record<string, unknown> | undefined;
  if (!counts || !['harmful', 'harmless', 'heldOut'].every((key) => Number.isInteger(counts[key]))) fail('"counts" needs integer harmful, harmless and heldOut');
  const layers = report.layers;
  const numLayers = report.numLayers as number;
  if (!Array.isArray(layers) || layers.length !== numLayers + 1) fail(`"layers" must have numLayers + 1 = ${numLayers + 1} entries`);
  (layers as unknown[]).forEach((entry, position) => {
    const layer = entry as Record<string, unknown>;
    if (typeof layer !== 'object' || layer === null) fail(`layer ${position} is not an object`);
    if (layer.index !== position) fail(`layer ${position} has index ${String(layer.index)}`);
    if (!isFiniteNumber(layer.auc) || !isFiniteNumber(layer.aucTrain) || !isFiniteNumber(layer.meanGapNorm)) fail(`layer ${position} needs numeric auc, aucTrain and meanGapNorm`);
    if (layer.cosineReference !== null && !isFiniteNumber(layer.cosineReference)) fail(`layer ${position} has a cosineReference that is neither a number nor null`);
  });
  const best = report.bestLayer as number;
  if (best < 0 || best > numLayers) fail(`"bestLayer" ${best} is outside 0..${numLayers}`);
  return report as ReportJson;
}
