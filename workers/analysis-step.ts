/**
 * From captured activations to the result the UI shows: the per-layer contrast analysis (src/core/analysis.ts)
 * and the report.json the CLI writes.
 */
import { analyzeContrast, type ReferenceInput } from '../src/core/analysis';
import { seededSplit } from '../src/core/statistics';
import { parseDirectionFile } from '../src/formats/direction-file';
import type { AnalysisRequest, AnalysisResult, ReportJson } from '../src/protocol/analysis-api';
import { InvalidInputError } from '../src/protocol/errors';
import type { OpenedModel } from './model-inspection';

export interface CapturedSets {
  harmful: Float32Array; // [prompt, layer, dModel]
  harmless: Float32Array; // [prompt, layer, dModel]
  referenceA: Float32Array | null;
  referenceB: Float32Array | null;
  layerCount: number; // L + 1
  hiddenSize: number;
}

type AnalysisOutput = Omit<AnalysisResult, 'backend' | 'fromCache' | 'notes'>;

export function analyzeCapturedSets(opened: OpenedModel, request: AnalysisRequest, sets: CapturedSets): AnalysisOutput {
  const { layerCount, hiddenSize } = sets;
  const block = layerCount * hiddenSize;
  const harmfulCount = sets.harmful.length / block;
  const harmlessCount = sets.harmless.length / block;
  let reference: ReferenceInput | undefined;
  if (request.referenceDirection) {
    const parsed = parseDirectionFile(request.referenceDirection.file, request.referenceDirection.bytes);
    if (parsed.rows.length !== 1 && parsed.rows.length !== layerCount) {
      throw new InvalidInputError(`${request.referenceDirection.file}: has ${parsed.rows.length} rows; a reference needs 1 row or ${layerCount} (one per layer index)`);
    }
    if (parsed.rows[0].length !== hiddenSize) {
      throw new InvalidInputError(`${request.referenceDirection.file}: direction length ${parsed.rows[0].length} ≠ d_model ${hiddenSize}`);
    }
    reference = { kind: 'direction', rows: parsed.rows };
  } else if (sets.referenceA && sets.referenceB) {
    reference = {
      kind: 'contrast',
      a: { activations: sets.referenceA, promptCount: sets.referenceA.length / block },
      b: { activations: sets.referenceB, promptCount: sets.referenceB.length / block },
    };
  }
  const split = {
    harmful: seededSplit(harmfulCount, request.heldOutFraction, request.seed, 0),
    harmless: seededSplit(harmlessCount, request.heldOutFraction, request.seed, 1),
  };
  const analysis = analyzeContrast({
    layerCount,
    hiddenSize,
    harmful: { activations: sets.harmful, promptCount: harmfulCount },
    harmless: { activations: sets.harmless, promptCount: harmlessCount },
    split,
    ...(reference ? { reference } : {}),
  });
  if (analysis.recommendedLayer === null) throw new InvalidInputError('A and B give the same mean activation at every layer: no direction separates them.');
  const report: ReportJson = {
    model: { name: opened.folder.name, modelType: opened.config.modelType, onnx: opened.onnx?.path ?? null },
    hiddenSize,
    numLayers: layerCount - 1,
    position: request.position,
    counts: { harmful: harmfulCount, harmless: harmlessCount, heldOut: split.harmful.heldOut.length + split.harmless.heldOut.length },
    bestLayer: analysis.recommendedLayer,
    layers: analysis.layers.map((layer) => ({
      index: layer.index,
      auc: layer.auc,
      aucTrain: layer.aucTrain,
      cosineReference: layer.cosineReference,
      meanGapNorm: layer.meanGapNorm,
    })),
  };
  return {
    report,
    reportText: JSON.stringify(report, null, 2) + '\n',
    crossLayerCosine: analysis.cosineMatrix.map((row) => row.map((value) => value ?? 0)),
    projections: analysis.layers.map((layer) => ({ harmful: [...layer.projections.heldOutHarmful], harmless: [...layer.projections.heldOutHarmless] })),
    directions: analysis.layers.map((layer) => Float32Array.from(layer.direction)),
  };
}
