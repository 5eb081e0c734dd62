/**
 * The layer-choice figure: every per-layer number on one shared layer axis, in stacked panels — AUC (with its
 * 95 % bootstrap interval) and train AUC; d′; cosine with the reference; and, when a sweep ran, the ablated
 * refusal rate (95 % Wilson interval) and first-token KL. The recommended layer is starred in the top panel and
 * the selected one shaded through all panels. Layout only: every number arrives computed.
 */
import type { AnalysisResult } from '../../protocol/analysis-api';
import type { SweepResult } from '../../protocol/chat-api';
import type { LayerChoiceRow } from '../../state/layer-choice';
import { aucLabel, COLOR_A, COLOR_B, type Figure } from '../plots/figures';

const GRID = 'rgba(128,128,128,0.2)';
const KL_COLOR = '#7c3aed';
const COSINE_COLOR = '#0f766e';

/** Panel domains top to bottom, with a gap between panels for their axis titles. */
function domains(count: number): [number, number][] {
  const gap = 0.06;
  const height = (1 - gap * (count - 1)) / count;
  return Array.from({ length: count }, (_, index) => {
    const top = 1 - index * (height + gap);
    return [top - height, top];
  });
}

export function layerChoiceFigure(result: AnalysisResult, rows: LayerChoiceRow[], sweep: SweepResult | null, selected: number | null, recommended: number): Figure {
  const x = rows.map((row) => row.layer);
  const hasCosine = rows.some((row) => row.cosineReference !== null);
  const hasSweep = sweep !== null && sweep.rows.length > 0;
  const panels = 2 + (hasCosine ? 1 : 0) + (hasSweep ? 1 : 0);
  const spans = domains(panels);
  const label = aucLabel(result);
  const data: object[] = [];
  const layout: Record<string, unknown> = {
    showlegend: true,
    legend: { orientation: 'h', x: 0, y: 1.01, yanchor: 'bottom' },
    margin: { l: 56, r: 56, t: 36, b: 40 },
    xaxis: { title: { text: 'layer (0 = embedding output)' }, dtick: x.length > 24 ? 4 : 1, gridcolor: GRID, zeroline: false, anchor: `y${panels === 1 ? '' : panels}` },
    shapes: selected === null ? [] : [{ type: 'rect', xref: 'x', yref: 'paper', x0: selected - 0.4, x1: selected + 0.4, y0: 0, y1: 1, fillcolor: 'rgba(120,120,120,0.15)', line: { width: 0 }, layer: 'below' }],
  };
  let panel = 0;
  const axis = (title: string, extra: object = {}) => {
    panel++;
    const name = panel === 1 ? 'yaxis' : `yaxis${panel}`;
    layout[name] = { title: { text: title }, domain: spans[panel - 1], gridcolor: GRID, ...extra };
    return panel === 1 ? 'y' : `y${panel}`;
  };
  const bars = (values: (number | null)[], intervals: ([number, number] | null)[], color: string) => ({
    error_y: { type: 'data', symmetric: false, array: intervals.map((interval, index) => (interval ? interval[1] - (values[index] ?? 0) : 0)), arrayminus: intervals.map((interval, index) => (interval ? (values[index] ?? 0) - interval[0] : 0)), color, thickness: 1, width: 3 },
  });

  const aucAxis = axis('AUC', { range: [Math.min(0.4, ...rows.map((row) => row.auc)) - 0.05, 1.05] });
  const auc = rows.map((row) => row.auc);
  data.push({ x, y: auc, yaxis: aucAxis, type: 'scatter', mode: 'lines+markers', name: `AUC ${label} (95% CI)`, line: { color: COLOR_A, width: 2 }, ...bars(auc, rows.map((row) => row.aucInterval), COLOR_A), hovertemplate: `layer %{x}: AUC %{y:.4f}<extra></extra>` });
  if (result.report.counts.heldOut > 0) {
    data.push({ x, y: rows.map((row) => row.aucTrain), yaxis: aucAxis, type: 'scatter', mode: 'lines+markers', name: 'AUC train', line: { color: COLOR_A, width: 1, dash: 'dot' }, marker: { symbol: 'circle-open', size: 5 }, hovertemplate: 'layer %{x}: train AUC %{y:.4f}<extra></extra>' });
  }
  const star = rows.find((row) => row.layer === recommended);
  if (star) data.push({ x: [star.layer], y: [star.auc], yaxis: aucAxis, type: 'scatter', mode: 'markers', name: 'recommended', marker: { symbol: 'star', size: 15, color: '#eab308', line: { color: '#713f12', width: 1 } }, hovertemplate: 'recommended layer %{x}<extra></extra>' });

  const dAxis = axis('d′');
  data.push({ x, y: rows.map((row) => row.dPrime), yaxis: dAxis, type: 'scatter', mode: 'lines+markers', name: `d′ ${label}`, line: { color: '#b45309', width: 2 }, hovertemplate: 'layer %{x}: d′ %{y:.3f}<extra></extra>' });

  if (hasCosine) {
    const cosineAxis = axis('cos ref', { range: [-1.05, 1.05] });
    data.push({ x, y: rows.map((row) => row.cosineReference), yaxis: cosineAxis, type: 'scatter', mode: 'lines+markers', name: 'cosine with reference', line: { color: COSINE_COLOR, width: 2 }, hovertemplate: 'layer %{x}: cosine %{y:.3f}<extra></extra>' });
  }
  if (hasSweep) {
    const refusalAxis = axis('refusal', { range: [-0.05, 1.05], tickformat: '.0%' });
    const swept = rows.filter((row) => row.sweep !== null);
    const rates = swept.map((row) => row.sweep!.refusalRate);
    data.push({ x: swept.map((row) => row.layer), y: rates, yaxis: refusalAxis, type: 'scatter', mode: 'lines+markers', name: 'ablated refusal (95% CI)', line: { color: COLOR_B, width: 2 }, ...bars(rates, swept.map((row) => row.sweep!.refusalInterval), COLOR_B), hovertemplate: 'layer %{x}: refusal %{y:.0%}<extra></extra>' });
    const positive = swept.map((row) => row.sweep!.klFirstToken).filter((value) => value > 0);
    const floor = Math.min(sweep!.klBound, ...positive) / 3;
    const klAxisIndex = panels + 1;
    layout[`yaxis${klAxisIndex}`] = { title: { text: 'KL (log)', font: { color: KL_COLOR } }, type: 'log', overlaying: refusalAxis, side: 'right', showgrid: false, exponentformat: 'power', dtick: 1, tickfont: { color: KL_COLOR }, range: [Math.log10(floor), Math.log10(Math.max(sweep!.klBound, ...positive) * 3)] };
    data.push({ x: swept.map((row) => row.layer), y: swept.map((row) => Math.max(row.sweep!.klFirstToken, floor)), customdata: swept.map((row) => row.sweep!.klFirstToken), yaxis: `y${klAxisIndex}`, type: 'scatter', mode: 'lines+markers', name: 'first-token KL', line: { color: KL_COLOR, width: 2, dash: 'dot' }, marker: { symbol: 'diamond', size: 6 }, hovertemplate: 'layer %{x}: KL %{customdata:.3g}<extra></extra>' });
  }
  return { data, layout, pointCount: x.length };
}
