/**
 * From captured activations to the result the UI shows, through the CLI's own analysis (`analyzeCaptures`) and
 * report serializer, so `report.download` gives the same report.json as `abliterate analyze`.
 */
import { DEFAULT_CAPTURE_BATCH_SIZE, type CaptureResult } from '../src/engine/capture';
import { analyzeCaptures } from '../src/engine/analyze';
import { parseDirectionFile } from '../src/formats/direction-file';
import { serializeReport } from '../src/formats/report';
import type { AnalysisRequest, AnalysisResult } from '../src/protocol/analysis-api';
import type { OpenedModel } from '../src/engine/model-inspection';
import { type ResolvedBackend } from '../src/ports/onnx-session';

export interface CapturedSets {
  harmful: CaptureResult;
  harmless: CaptureResult;
  referenceA: CaptureResult | null;
  referenceB: CaptureResult | null;
}

type AnalysisOutput = Omit<AnalysisResult, 'fromCache' | 'notes'>;

export function analyzeCapturedSets(opened: OpenedModel, request: AnalysisRequest, sets: CapturedSets, backend: ResolvedBackend, captureSeconds: number): AnalysisOutput {
  const reference = request.referenceDirection
    ? { kind: 'direction' as const, file: parseDirectionFile(request.referenceDirection.file, request.referenceDirection.bytes) }
    : sets.referenceA && sets.referenceB
      ? { kind: 'contrast' as const, a: sets.referenceA, b: sets.referenceB }
      : undefined;
  const outcome = analyzeCaptures({
    harmful: sets.harmful,
    harmless: sets.harmless,
    reference,
    heldOutFraction: request.heldOutFraction,
    seed: request.seed,
    model: {
      name: opened.folder.name,
      onnx: opened.onnx?.path ?? null,
      graphStyle: opened.onnx?.residual.style ?? null,
      modelType: opened.config.modelType,
      architectures: opened.config.architectures,
    },
  });
  outcome.report.capture = { backend: `onnxruntime-web ${backend}`, batchSize: request.batchSize ?? DEFAULT_CAPTURE_BATCH_SIZE, seconds: captureSeconds };
  return {
    report: outcome.report,
    reportText: serializeReport(outcome.report),
    crossLayerCosine: outcome.analysis.cosineMatrix,
    projections: outcome.analysis.layers.map((layer) => ({ harmful: [...layer.projections.heldOutHarmful], harmless: [...layer.projections.heldOutHarmless] })),
    directions: outcome.directions,
    split: outcome.split,
    backend,
  };
}
