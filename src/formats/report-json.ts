/**
 * The report.json of docs/contracts.md, exactly as `abliterate analyze` writes it and the workbench's analysis returns
 * it: the contract's fields always present, extra fields allowed. Defined once here, at the bottom of the import
 * graph, so the writer (src/formats/report.ts), the worker API and the e2e specs share one shape.
 */

export interface ReportLayer {
  index: number;
  auc: number;
  aucTrain: number;
  cosineReference: number | null;
  meanGapNorm: number;
  [extra: string]: unknown;
}

export interface ReportCounts {
  harmful: number;
  harmless: number;
  /** Held-out prompts over both sets (the AUC is scored on these). */
  heldOut: number;
  [extra: string]: unknown;
}

export interface ReportJson {
  model: Record<string, unknown>;
  hiddenSize: number;
  numLayers: number; // L blocks; `layers` has L + 1 entries
  position: number;
  counts: ReportCounts;
  bestLayer: number;
  layers: ReportLayer[];
  [extra: string]: unknown;
}
