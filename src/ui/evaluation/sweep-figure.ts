/**
 * The per-layer sweep as a Plotly figure: ablated refusal rate (left axis) and first-token KL (right axis)
 * against the layer whose direction was removed, the base refusal rate and the KL bound as reference lines,
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
        hovertemplate: 'layer %{x}: refusal %{y:.0%}<extra></extra>',
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
      legend: { orientation: 'h', x: 0, y: 1.15 },
      margin: { l: 56, r: 56, t: 8, b: 40 },
      shapes: [
        ...(selected === null ? [] : [{ type: 'rect', xref: 'x', yref: 'paper', x0: selected - 0.4, x1: selected + 0.4, y0: 0, y1: 1, fillcolor: 'rgba(120,120,120,0.18)', line: { width: 0 }, layer: 'below' }]),
        { type: 'line', xref: 'paper', x0: 0, x1: 1, y0: sweep.baseRefusalRate, y1: sweep.baseRefusalRate, line: { color: COLOR_A, dash: 'dash', width: 1 } },
        { type: 'line', xref: 'paper', yref: 'y2', x0: 0, x1: 1, y0: sweep.klBound, y1: sweep.klBound, line: { color: KL_COLOR, dash: 'dash', width: 1 } },
      ],
      annotations: [
        { xref: 'paper', x: 1, y: sweep.baseRefusalRate, yanchor: 'bottom', xanchor: 'right', text: `base ${Math.round(sweep.baseRefusalRate * 100)}%`, showarrow: false, font: { size: 10, color: COLOR_A } },
        { xref: 'paper', yref: 'y2', x: 0, y: Math.log10(sweep.klBound), yanchor: 'bottom', xanchor: 'left', text: `KL bound ${sweep.klBound}`, showarrow: false, font: { size: 10, color: KL_COLOR } },
      ],
    },
  };
}
