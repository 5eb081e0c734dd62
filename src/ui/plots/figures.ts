/**
 * Plotly figures of the per-layer analysis. Pure functions of the finished result and the selected layer:
 * the numbers are the engine's, nothing is computed here but bins and labels.
 */
import type { AnalysisResult } from '../../protocol/analysis-api';

export const COLOR_A = '#c2410c'; // A: refusal prompts
export const COLOR_B = '#2563eb'; // B: compliance prompts
const COLOR_SELECTED = 'rgba(120,120,120,0.18)';
const GRID = 'rgba(128,128,128,0.2)';
/** Room above the plot area for a horizontal legend, so it never covers points at the top (AUC = 1). */
const MARGIN_WITH_LEGEND = { l: 52, r: 16, t: 30, b: 40 };

export interface Figure {
  data: object[];
  layout: object;
  pointCount: number;
}

function layerAxis(numLayerIndices: number) {
  return { title: { text: 'layer (0 = embedding output)' }, dtick: numLayerIndices > 24 ? 4 : 1, gridcolor: GRID, zeroline: false };
}

/** A shaded band behind the selected layer, shared by the line plots. */
function selectedBand(layer: number | null) {
  if (layer === null) return [];
  return [{ type: 'rect', xref: 'x', yref: 'paper', x0: layer - 0.4, x1: layer + 0.4, y0: 0, y1: 1, fillcolor: COLOR_SELECTED, line: { width: 0 }, layer: 'below' }];
}

function recommendedMarker(x: number, y: number) {
  return {
    x: [x],
    y: [y],
    type: 'scatter',
    mode: 'markers',
    name: 'recommended',
    marker: { symbol: 'star', size: 16, color: '#eab308', line: { color: '#713f12', width: 1 } },
    hovertemplate: 'recommended layer %{x}<extra></extra>',
  };
}

/** "held-out" only when something was held out: with held-out 0 the AUC is scored on the training split. */
export function aucLabel(result: AnalysisResult): string {
  return result.report.counts.heldOut > 0 ? 'held-out' : 'train (nothing held out)';
}

/** The 95 % bootstrap interval of each layer's AUC as Plotly error bars (absent in reports without intervals). */
function aucErrorBars(layers: AnalysisResult['report']['layers']) {
  const intervals = layers.map((layer) => (Array.isArray(layer.aucInterval) ? (layer.aucInterval as [number, number]) : null));
  if (intervals.every((interval) => interval === null)) return {};
  return {
    error_y: {
      type: 'data',
      symmetric: false,
      array: intervals.map((interval, index) => (interval ? interval[1] - layers[index]!.auc : 0)),
      arrayminus: intervals.map((interval, index) => (interval ? layers[index]!.auc - interval[0] : 0)),
      color: COLOR_A,
      thickness: 1,
      width: 3,
    },
  };
}

export function aucFigure(result: AnalysisResult, selected: number | null, recommended: number = result.report.bestLayer): Figure {
  const layers = result.report.layers;
  const x = layers.map((layer) => layer.index);
  const best = layers.find((layer) => layer.index === recommended);
  const label = aucLabel(result);
  return {
    pointCount: x.length,
    data: [
      { x, y: layers.map((layer) => layer.auc), type: 'scatter', mode: 'lines+markers', name: `${label} (95% CI)`, line: { color: COLOR_A, width: 2 }, marker: { size: 7 }, ...aucErrorBars(layers), hovertemplate: `layer %{x}: ${label} AUC %{y:.4f}<extra></extra>` },
      { x, y: layers.map((layer) => layer.aucTrain), type: 'scatter', mode: 'lines+markers', name: 'train', line: { color: COLOR_A, width: 1, dash: 'dot' }, marker: { size: 5, symbol: 'circle-open' }, hovertemplate: 'layer %{x}: train AUC %{y:.4f}<extra></extra>' },
      ...(best ? [recommendedMarker(best.index, best.auc)] : []),
    ],
    layout: {
      xaxis: layerAxis(x.length),
      yaxis: { title: { text: 'AUC (A vs B)' }, range: [Math.min(0.4, ...layers.map((layer) => layer.auc)) - 0.03, 1.03], gridcolor: GRID },
      legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom' },
      margin: MARGIN_WITH_LEGEND,
      shapes: [...selectedBand(selected), { type: 'line', xref: 'paper', x0: 0, x1: 1, y0: 0.5, y1: 0.5, line: { color: GRID, dash: 'dash', width: 1 } }],
    },
  };
}

export function cosineFigure(result: AnalysisResult, selected: number | null, recommended: number = result.report.bestLayer): Figure {
  const layers = result.report.layers;
  const x = layers.map((layer) => layer.index);
  const y = layers.map((layer) => layer.cosineReference);
  const hasReference = y.some((value) => value !== null);
  const best = layers.find((layer) => layer.index === recommended);
  return {
    pointCount: hasReference ? x.length : 0, // a degenerate layer (no direction) is a gap at its index
    data: hasReference
      ? [
          { x, y, type: 'scatter', mode: 'lines+markers', name: 'cosine(r_l, reference)', line: { color: '#7c3aed', width: 2 }, marker: { size: 7 }, hovertemplate: 'layer %{x}: cosine %{y:.4f}<extra></extra>' },
          ...(best && best.cosineReference !== null ? [recommendedMarker(best.index, best.cosineReference)] : []),
        ]
      : [],
    layout: {
      xaxis: layerAxis(x.length),
      yaxis: { title: { text: 'cosine with reference' }, range: [-1.05, 1.05], gridcolor: GRID, zeroline: true, zerolinecolor: GRID },
      showlegend: false,
      shapes: selectedBand(selected),
      annotations: hasReference
        ? []
        : [{ text: 'No reference: fill reference prompts C/D or import a direction file.', xref: 'paper', yref: 'paper', x: 0.5, y: 0.5, showarrow: false, font: { color: '#71717a' } }],
    },
  };
}

export function heatmapFigure(result: AnalysisResult, selected: number | null): Figure {
  const indices = result.report.layers.map((layer) => layer.index);
  return {
    pointCount: indices.length,
    data: [
      {
        z: result.crossLayerCosine,
        x: indices,
        y: indices,
        type: 'heatmap',
        colorscale: 'RdBu',
        reversescale: true,
        zmin: -1,
        zmax: 1,
        colorbar: { thickness: 10, title: { text: 'cos' } },
        hovertemplate: 'cos(r_%{x}, r_%{y}) = %{z:.3f}<extra></extra>',
        hoverongaps: false, // a layer without a direction (equal means) is a blank row and column
      },
    ],
    layout: {
      xaxis: { ...layerAxis(indices.length), title: { text: 'layer' } },
      yaxis: { title: { text: 'layer' }, dtick: indices.length > 24 ? 4 : 1, autorange: 'reversed' },
      shapes:
        selected === null
          ? []
          : [{ type: 'rect', x0: selected - 0.5, x1: selected + 0.5, y0: -0.5, y1: indices.length - 0.5, line: { color: '#111827', width: 1.5 } }],
    },
  };
}

export function histogramFigure(result: AnalysisResult, selected: number | null): Figure {
  const projections = selected === null ? null : result.projections[selected];
  if (!projections) return { pointCount: 0, data: [], layout: {} };
  const all = [...projections.harmful, ...projections.harmless];
  const low = Math.min(...all);
  const high = Math.max(...all);
  const binSize = high > low ? (high - low) / 30 : 1;
  const bins = { start: low - binSize / 2, end: high + binSize / 2, size: binSize };
  return {
    pointCount: all.length,
    data: [
      { x: projections.harmful, type: 'histogram', name: `A (${projections.harmful.length})`, marker: { color: COLOR_A }, opacity: 0.6, xbins: bins },
      { x: projections.harmless, type: 'histogram', name: `B (${projections.harmless.length})`, marker: { color: COLOR_B }, opacity: 0.6, xbins: bins },
    ],
    layout: {
      barmode: 'overlay',
      xaxis: { title: { text: `projection on r_${selected} (${result.report.counts.heldOut > 0 ? 'held-out' : 'training — nothing held out'} prompts; click a bar for its prompts)` }, gridcolor: GRID },
      yaxis: { title: { text: 'prompts' }, gridcolor: GRID },
      legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom' },
      margin: MARGIN_WITH_LEGEND,
    },
  };
}
