/**
 * The session's plots as SVG text for the run card: each figure is rebuilt from the saved numbers (the same
 * figure functions the page draws) and rendered off-screen by Plotly, so no plot needs to be on screen.
 */
import { recommendLayer, layerChoiceRows } from '../../state/layer-choice';
import type { SessionSnapshot } from '../../state/session';
import { sweepFigure } from '../evaluation/sweep-figure';
import { layerChoiceFigure } from '../layers/layer-choice-figure';
import { aucFigure, cosineFigure, heatmapFigure, histogramFigure, type Figure } from './figures';
import { loadPlotly } from './PlotlyChart';

const SIZE = { width: 720, height: 420 };
const BASE_LAYOUT = { font: { size: 12 }, paper_bgcolor: 'white', plot_bgcolor: 'white', margin: { l: 60, r: 60, t: 40, b: 50 } };

function decodeDataUrl(url: string): string {
  const comma = url.indexOf(',');
  const body = url.slice(comma + 1);
  return url.slice(0, comma).endsWith(';base64') ? atob(body) : decodeURIComponent(body);
}

export async function renderPlotSvgs(snapshot: SessionSnapshot): Promise<Record<string, string>> {
  const result = snapshot.result;
  if (!result) return {};
  const recommended = recommendLayer(result, snapshot.sweep).layer;
  const selected = snapshot.selectedLayer ?? recommended;
  const figures: Record<string, { figure: Figure; height?: number }> = {
    auc: { figure: aucFigure(result, selected, recommended) },
    cosine: { figure: cosineFigure(result, selected, recommended) },
    'cross-layer-cosine': { figure: heatmapFigure(result, selected) },
    [`histogram-layer-${selected}`]: { figure: histogramFigure(result, selected) },
    layers: { figure: layerChoiceFigure(result, layerChoiceRows(result, snapshot.sweep), snapshot.sweep, selected, recommended), height: 640 },
  };
  if (snapshot.sweep) figures.sweep = { figure: sweepFigure(snapshot.sweep, selected) };
  const Plotly = await loadPlotly();
  const svgs: Record<string, string> = {};
  for (const [name, { figure, height }] of Object.entries(figures)) {
    const layout = { ...BASE_LAYOUT, ...figure.layout, width: SIZE.width, height: height ?? SIZE.height };
    svgs[name] = decodeDataUrl(await Plotly.toImage({ data: figure.data, layout }, { format: 'svg', width: SIZE.width, height: height ?? SIZE.height }));
  }
  return svgs;
}
