/**
 * Per-layer contrast analysis on captured activations (pure math): direction, held-out and train AUC, d′,
 * mean-gap norm, cosine with a reference, cross-layer cosines, projection histograms and the recommended layer.
 * The engine (src/engine/analyze.ts) feeds it; the UI worker and the CLI share it.
 */
import {
  crossLayerCosineMatrix,
  differenceOfMeans,
  euclideanNorm,
  cosineSimilarity,
  histogram,
  meanOfRows,
  projectOutMean,
  projectRows,
  rocAuc,
  sharedHistogramEdges,
  standardizedMeanGap,
  StatisticsError,
  type RowMatrix,
  type Split,
} from './statistics';

/** Activations of one prompt set at one token position. */
export interface ActivationSet {
  activations: Float32Array; // [prompt, layer, dModel]
  promptCount: number;
}

export type ReferenceInput =
  | { kind: 'contrast'; a: ActivationSet; b: ActivationSet }
  /** One row (used for every layer) or one row per layer index (L+1). */
  | { kind: 'direction'; rows: ArrayLike<number>[] };

export interface LayerRange {
  /** Candidates are indices l with ceil(lowFraction·L) ≤ l ≤ floor(highFraction·L). */
  lowFraction: number;
  highFraction: number;
}

/** Fraction of each prompt set held out for the AUC, and the seed of that split (docs/definitions.md defaults). */
export const DEFAULT_HELD_OUT_FRACTION = 0.25;
export const DEFAULT_SEED = 0;

export const DEFAULT_LAYER_RANGE: LayerRange = { lowFraction: 0.2, highFraction: 0.9 };
export const DEFAULT_HISTOGRAM_BINS = 30;
/** AUCs closer than this are a tie (they are ratios k/(n·m); this only absorbs float rounding). */
export const AUC_TIE_TOLERANCE = 1e-9;

export interface ContrastAnalysisInput {
  layerCount: number; // L + 1
  hiddenSize: number;
  harmful: ActivationSet; // set A ("refusal")
  harmless: ActivationSet; // set B ("compliance")
  split: { harmful: Split; harmless: Split };
  reference?: ReferenceInput;
  /** Orthogonalize each r_l against the normalized compliance (harmless train) mean. */
  projectOutComplianceMean?: boolean;
  layerRange?: LayerRange;
  histogramBins?: number;
}

export interface ProjectionHistogram {
  edges: number[]; // [bins + 1]
  harmful: number[]; // [bins] counts of held-out harmful projections
  harmless: number[]; // [bins]
}

export interface LayerAnalysis {
  index: number;
  direction: Float64Array; // [dModel], unit, or zeros when degenerate
  degenerate: boolean;
  auc: number; // held-out (= train AUC when nothing is held out)
  aucTrain: number;
  dPrime: number; // held-out standardized mean gap
  dPrimeTrain: number;
  meanGapNorm: number; // ‖mean_A − mean_B‖ on the train split
  meanNormHarmful: number;
  meanNormHarmless: number;
  /** Train-split means (the harmless one is what recipe projections orthogonalize against). */
  harmfulMean: Float64Array; // [dModel]
  harmlessMean: Float64Array; // [dModel]
  cosineReference: number | null;
  projections: { heldOutHarmful: Float64Array; heldOutHarmless: Float64Array }; // [k_A], [k_B]
  histogram: ProjectionHistogram;
}

export interface ContrastAnalysis {
  layers: LayerAnalysis[]; // [L + 1]
  cosineMatrix: (number | null)[][]; // [L + 1, L + 1]
  /** null when no layer has a direction (the two sets have equal means everywhere). */
  recommendedLayer: number | null;
  /** Usable candidates best first (empty when every layer is degenerate). */
  layerRanking: number[];
  candidateLayers: number[];
  heldOutIsTrain: boolean;
}

/** Rows of one layer of a [prompt, layer, dModel] block, copied out as a [prompt, dModel] matrix. */
export function layerMatrix(set: ActivationSet, layer: number, layerCount: number, hiddenSize: number): RowMatrix {
  const expected = set.promptCount * layerCount * hiddenSize;
  if (set.activations.length !== expected) {
    throw new StatisticsError(`activations hold ${set.activations.length} values, [${set.promptCount}, ${layerCount}, ${hiddenSize}] needs ${expected}`);
  }
  const data = new Float32Array(set.promptCount * hiddenSize); // [prompt, dModel]
  for (let prompt = 0; prompt < set.promptCount; prompt++) {
    const start = (prompt * layerCount + layer) * hiddenSize;
    data.set(set.activations.subarray(start, start + hiddenSize), prompt * hiddenSize);
  }
  return { data, rows: set.promptCount, width: hiddenSize };
}

export function candidateLayers(numLayers: number, range: LayerRange = DEFAULT_LAYER_RANGE): number[] {
  if (!(range.lowFraction >= 0 && range.highFraction <= 1 && range.lowFraction <= range.highFraction)) {
    throw new StatisticsError(`layer range [${range.lowFraction}, ${range.highFraction}] must satisfy 0 ≤ low ≤ high ≤ 1`);
  }
  const low = Math.ceil(range.lowFraction * numLayers - 1e-12);
  const high = Math.floor(range.highFraction * numLayers + 1e-12);
  const out: number[] = [];
  for (let index = low; index <= high; index++) out.push(index);
  return out;
}

/**
 * Candidate layers best first: highest held-out AUC; AUC saturates at 1.0 on many layers of real models, so
 * ties go to the larger d′ (better separation), and only then to the lower index. Degenerate layers are left
 * out. With no usable candidate in the range, every non-degenerate layer competes. A caller that can afford
 * it (the `run` command's evaluation sweep) may try the first few instead of trusting the first alone.
 */
export function rankLayers(
  layers: Pick<LayerAnalysis, 'index' | 'auc' | 'dPrime' | 'degenerate'>[],
  candidates: number[],
): number[] {
  const usable = (pool: typeof layers) => pool.filter((layer) => !layer.degenerate && Number.isFinite(layer.auc));
  let pool = usable(layers.filter((layer) => candidates.includes(layer.index)));
  if (pool.length === 0) pool = usable(layers);
  if (pool.length === 0) throw new StatisticsError('no layer separates the two prompt sets (every mean gap is zero)');
  // AUCs are ratios k/(n·m), so the tolerance only absorbs rounding and the order stays transitive.
  return [...pool]
    .sort((a, b) => (Math.abs(a.auc - b.auc) > AUC_TIE_TOLERANCE ? b.auc - a.auc : b.dPrime - a.dPrime || a.index - b.index))
    .map((layer) => layer.index);
}

/** The recommended layer: the first of `rankLayers`. */
export function recommendLayer(layers: Pick<LayerAnalysis, 'index' | 'auc' | 'dPrime' | 'degenerate'>[], candidates: number[]): number {
  return rankLayers(layers, candidates)[0];
}

function referenceDirections(reference: ReferenceInput, layerCount: number, hiddenSize: number): (Float64Array | null)[] {
  if (reference.kind === 'direction') {
    if (reference.rows.length !== 1 && reference.rows.length !== layerCount) {
      throw new StatisticsError(`a reference direction needs 1 or ${layerCount} rows, got ${reference.rows.length}`);
    }
    return Array.from({ length: layerCount }, (_, layer) => {
      const row = reference.rows.length === 1 ? reference.rows[0] : reference.rows[layer];
      if (row.length !== hiddenSize) throw new StatisticsError(`reference direction length ${row.length} ≠ hidden size ${hiddenSize}`);
      return Float64Array.from(row);
    });
  }
  return Array.from({ length: layerCount }, (_, layer) => {
    const meanA = meanOfRows(layerMatrix(reference.a, layer, layerCount, hiddenSize));
    const meanB = meanOfRows(layerMatrix(reference.b, layer, layerCount, hiddenSize));
    const result = differenceOfMeans(meanA, meanB);
    return result.degenerate ? null : result.direction;
  });
}

const finiteOrNull = (value: number): number | null => (Number.isFinite(value) ? value : null);

export function analyzeContrast(input: ContrastAnalysisInput): ContrastAnalysis {
  const { layerCount, hiddenSize, harmful, harmless, split } = input;
  const bins = input.histogramBins ?? DEFAULT_HISTOGRAM_BINS;
  const heldOutIsTrain = split.harmful.heldOut.length === 0 || split.harmless.heldOut.length === 0;
  const references = input.reference ? referenceDirections(input.reference, layerCount, hiddenSize) : null;

  const layers: LayerAnalysis[] = [];
  for (let layer = 0; layer < layerCount; layer++) {
    const matrixA = layerMatrix(harmful, layer, layerCount, hiddenSize); // [prompt_A, dModel]
    const matrixB = layerMatrix(harmless, layer, layerCount, hiddenSize); // [prompt_B, dModel]
    const meanA = meanOfRows(matrixA, split.harmful.train);
    const meanB = meanOfRows(matrixB, split.harmless.train);
    const gap = differenceOfMeans(meanA, meanB);
    let direction = gap.direction;
    let degenerate = gap.degenerate;
    if (!degenerate && input.projectOutComplianceMean) {
      direction = projectOutMean(direction, meanB);
      degenerate = euclideanNorm(direction) === 0;
    }
    const trainA = projectRows(matrixA, direction, split.harmful.train);
    const trainB = projectRows(matrixB, direction, split.harmless.train);
    const heldOutA = heldOutIsTrain ? trainA : projectRows(matrixA, direction, split.harmful.heldOut);
    const heldOutB = heldOutIsTrain ? trainB : projectRows(matrixB, direction, split.harmless.heldOut);
    const edges = sharedHistogramEdges([heldOutA, heldOutB], bins);
    const reference = references?.[layer] ?? null;
    layers.push({
      index: layer,
      direction,
      degenerate,
      auc: rocAuc(heldOutA, heldOutB),
      aucTrain: rocAuc(trainA, trainB),
      dPrime: degenerate ? 0 : standardizedMeanGap(heldOutA, heldOutB),
      dPrimeTrain: degenerate ? 0 : standardizedMeanGap(trainA, trainB),
      meanGapNorm: gap.gapNorm,
      meanNormHarmful: euclideanNorm(meanA),
      meanNormHarmless: euclideanNorm(meanB),
      harmfulMean: Float64Array.from(meanA),
      harmlessMean: Float64Array.from(meanB),
      cosineReference: reference && !degenerate ? finiteOrNull(cosineSimilarity(direction, reference)) : null,
      projections: { heldOutHarmful: heldOutA, heldOutHarmless: heldOutB },
      histogram: { edges, harmful: histogram(heldOutA, edges), harmless: histogram(heldOutB, edges) },
    });
  }
  const candidates = candidateLayers(layerCount - 1, input.layerRange ?? DEFAULT_LAYER_RANGE);
  const ranking = layers.some((layer) => !layer.degenerate) ? rankLayers(layers, candidates) : [];
  return {
    layers,
    cosineMatrix: crossLayerCosineMatrix(layers.map((layer) => layer.direction)).map((row) => row.map(finiteOrNull)),
    recommendedLayer: ranking.length > 0 ? ranking[0] : null,
    layerRanking: ranking,
    candidateLayers: candidates,
    heldOutIsTrain,
  };
}
