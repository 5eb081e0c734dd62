/**
 * The recipe search as a Plotly figure: every finished trial at (first-token KL, refusal rate), the Pareto
 * front highlighted and joined as a staircase, trials stopped early drawn hollow, the chosen trial starred.
 * Hovering a point shows its recipe; each point carries its trial number as customdata, so a click can make
 * that trial's recipe current. Numbers are the worker's; only layout here.
 */
import type { TrialRecord } from '../../protocol/search-api';
import { COLOR_A, COLOR_B, type Figure } from '../plots/figures';

const GRID = 'rgba(128,128,128,0.2)';
const OTHER = '#9ca3af';

/** The recipe in a few lines for the hover box. */
export function recipeHover(trial: TrialRecord): string {
  const recipe = trial.recipe as { method?: string; direction?: number | string; projection?: string; components?: Record<string, unknown> };
  const weight = (value: unknown) => {
    if (value === undefined) return 'untouched';
    if (typeof value === 'number') return value.toFixed(2);
    const kernel = value as { max: number; peak: number; min: number; distance: number };
    return `max ${kernel.max.toFixed(2)} at block ${kernel.peak.toFixed(1)}, min ${kernel.min.toFixed(2)} at ±${kernel.distance.toFixed(1)}`;
  };
  const direction = typeof recipe.direction === 'number' ? recipe.direction.toFixed(2) : String(recipe.direction);
  return [
    `trial ${trial.trial}${trial.pruned ? ' (stopped early: refusal ≥ shown)' : ''}`,
    `refusal ${(trial.refusalRate * 100).toFixed(1)}% · KL ${trial.klFirstToken.toPrecision(3)}${trial.falseRefusalRate === null ? '' : ` · false refusals ${(trial.falseRefusalRate * 100).toFixed(1)}%`}`,
    `direction ${direction} · ${recipe.method} · projection ${recipe.projection}`,
    `embed ${weight(recipe.components?.embed)}`,
    `attn ${weight(recipe.components?.attn)}`,
    `mlp ${weight(recipe.components?.mlp)}`,
  ].join('<br>');
}

export function paretoFigure(trials: readonly TrialRecord[], pareto: ReadonlySet<number>, selected: number | null): Figure {
  // KL spans decades; a log axis with a floor for exact zeros keeps every trial visible.
  const positive = trials.map((trial) => trial.klFirstToken).filter((value) => value > 0);
  const floor = positive.length ? Math.min(...positive) / 3 : 1e-6;
  const x = (trial: TrialRecord) => Math.max(trial.klFirstToken, floor);
  const others = trials.filter((trial) => !pareto.has(trial.trial));
  const front = trials.filter((trial) => pareto.has(trial.trial)).sort((a, b) => a.klFirstToken - b.klFirstToken || b.refusalRate - a.refusalRate);
  const chosen = trials.find((trial) => trial.trial === selected);
  const scatter = (points: readonly TrialRecord[]) => ({
    x: points.map(x),
    y: points.map((trial) => trial.refusalRate),
    customdata: points.map((trial) => trial.trial),
    text: points.map(recipeHover),
    hovertemplate: '%{text}<extra></extra>',
    type: 'scatter',
  });
  return {
    pointCount: trials.length,
    data: [
      {
        ...scatter(others),
        mode: 'markers',
        name: 'dominated',
        marker: { size: 8, color: OTHER, symbol: others.map((trial) => (trial.pruned ? 'circle-open' : 'circle')) },
      },
      {
        ...scatter(front),
        mode: 'lines+markers',
        name: 'Pareto front',
        line: { shape: 'hv', color: COLOR_B, width: 2 },
        marker: { size: 10, color: COLOR_B },
      },
      ...(chosen
        ? [{ ...scatter([chosen]), mode: 'markers', name: 'current recipe', marker: { symbol: 'star', size: 18, color: '#eab308', line: { color: '#713f12', width: 1 } } }]
        : []),
    ],
    layout: {
      xaxis: { title: { text: 'first-token KL on compliance prompts (log)' }, type: 'log', exponentformat: 'power', gridcolor: GRID },
      yaxis: { title: { text: 'refusal rate', font: { color: COLOR_A } }, range: [-0.05, 1.05], tickformat: '.0%', gridcolor: GRID },
      legend: { orientation: 'h', x: 0, y: 1.15 },
      hovermode: 'closest',
      margin: { l: 56, r: 16, t: 8, b: 44 },
    },
  };
}
