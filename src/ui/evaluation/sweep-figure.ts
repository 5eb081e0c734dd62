/**
 * The per-layer sweep as a Plotly figure: ablated refusal rate (left axis) and first-token KL (right axis)
 * against the layer whose direction was removed (rates with 95 % Wilson intervals), the base refusal rate and the
 * KL bound as reference lines named in the legend,
 * the selected layer shaded and the recommended one starred. Numbers are the worker's; only layout here.
 */
import type { SweepResult } from '../../protocol/chat-api';
import { COLOR_A, COLOR_B, type Figure } from '../plots/figures';

const GRID = 'rgba(128,128,128,0.2)';
const KL_COLOR = '#7c3aed';

export function sweepFigure(sweep: SweepResult, selected: number | null): Figure {
  const x = sweep.rows.map((row) => row.layer);
  const best = sweep.recommendation ? sweep.rows.find((row) => row.layer === sweep.recommendation!.layer) : undefined;
  // KL spans decades (1e-5 for a clean edit, >1 for a damaging one): a log axis keeps every layer readable.
  const positive = sweep.rows.map((row) => row.klFirstToken).filter((value) => value > 0);
  const lowKL = Math.min(sweep.klBound, ...positive) / 3;
  const highKL = Math.max(sweep.klBound, ...positive) * 3;
  const xSpan = x.length > 0 ? [Math.min(...x) - 0.5, Math.max(...x) + 0.5] : [0, 1];
  return {
    pointCount: x.length,
    data: [
      {
        x,
        y: sweep.rows.map((row) => row.refusalRate),
        type: 'scatter',
        mode: 'lines+markers',
        name: 'ablated refusal rate',
        line: { color: COLOR_B, width: 2 },
        marker: { size: 8 },
        // 95 % Wilson interval of each rate: with tens of prompts one refusal moves the rate by several points.
        error_y: { type: 'data', symmetric: false, array: sweep.rows.map((row) => row.refusalInterval[1] - row.refusalRate), arrayminus: sweep.rows.map((row) => row.refusalRate - row.refusalInterval[0]), color: COLOR_B, thickness: 1, width: 4 },
        customdata: sweep.rows.map((row) => row.refusalInterval.map((end) => Math.round(end * 100))),
        hovertemplate: 'layer %{x}: refusal %{y:.0%} (95%% CI %{customdata[0]}–%{customdata[1]}%)<extra></extra>',
      },
      {
        x,
        // A KL of exactly 0 (scale 0, or an untouched distribution) sits on the axis floor of the log scale.
        y: sweep.rows.map((row) => Math.max(row.klFirstToken, lowKL)),
        customdata: sweep.rows.map((row) => row.klFirstToken),
        yaxis: 'y2',
        type: 'scatter',
        mode: 'lines+markers',
        name: 'first-token KL',
        line: { color: KL_COLOR, width: 2, dash: 'dot' },
        marker: { size: 7, symbol: 'diamond' },
        hovertemplate: 'layer %{x}: KL %{customdata:.3g}<extra></extra>',
      },
      // The reference lines are traces, not annotations, so their labels sit in the legend and never on a tick label.
      { x: xSpan, y: [sweep.baseRefusalRate, sweep.baseRefusalRate], type: 'scatter', mode: 'lines', name: `base refusal ${Math.round(sweep.baseRefusalRate * 100)}%`, line: { color: COLOR_A, dash: 'dash', width: 1 }, hoverinfo: 'skip' },
      { x: xSpan, y: [sweep.klBound, sweep.klBound], yaxis: 'y2', type: 'scatter', mode: 'lines', name: `KL bound ${sweep.klBound}`, line: { color: KL_COLOR, dash: 'dash', width: 1 }, hoverinfo: 'skip' },
      ...(best
        ? [
            {
              x: [best.layer],
              y: [best.refusalRate],
              type: 'scatter',
              mode: 'markers',
              name: 'recommended',
              marker: { symbol: 'star', size: 16, color: '#eab308', line: { color: '#713f12', width: 1 } },
              hovertemplate: 'recommended layer %{x}<extra></extra>',
            },
          ]
        : []),
    ],
    layout: {
      xaxis: { title: { text: 'layer of the removed direction' }, dtick: x.length > 24 ? 4 : 1, gridcolor: GRID, zeroline: false },
      yaxis: { title: { text: 'refusal rate (ablated)' }, range: [-0.05, 1.05], tickformat: '.0%', gridcolor: GRID },
      yaxis2: {
        title: { text: 'first-token KL (log)', font: { color: KL_COLOR } },
        type: 'log',
        overlaying: 'y',
        side: 'right',
        range: [Math.log10(lowKL), Math.log10(highKL)],
        exponentformat: 'power',
        dtick: 1, // one tick per power of ten
        showgrid: false,
        tickfont: { color: KL_COLOR },
      },
      legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom' },
      margin: { l: 56, r: 56, t: 52, b: 40 },
      shapes: selected === null ? [] : [{ type: 'rect', xref: 'x', yref: 'paper', x0: selected - 0.4, x1: selected + 0.4, y0: 0, y1: 1, fillcolor: 'rgba(120,120,120,0.18)', line: { width: 0 }, layer: 'below' }],
    },
  };
}
