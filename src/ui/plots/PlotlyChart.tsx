/**
 * A Plotly container. Plotly (3 MB) is imported on first use, so the page opens without it. Clicking a point
 * reports its x value (a layer index in every workbench plot) through `onSelectLayer`.
 */
import { useEffect, useRef, useState } from 'react';

type PlotlyModule = typeof import('plotly.js-dist-min').default;
let plotlyPromise: Promise<PlotlyModule> | null = null;
function loadPlotly(): Promise<PlotlyModule> {
  plotlyPromise ??= import('plotly.js-dist-min').then((module) => module.default);
  return plotlyPromise;
}

export interface PlotlyChartProps {
  testId: string;
  title: string;
  data: object[];
  layout: object;
  /** Number of layer points plotted, exposed as data-point-count for tests and screen readers. */
  pointCount: number;
  onSelectLayer?: (layer: number) => void;
  /** Clicking a point that carries a numeric `customdata` reports it (e.g. a trial number) instead of x. */
  onSelectPoint?: (customdata: number) => void;
  height?: number;
}

export function PlotlyChart({ testId, title, data, layout, pointCount, onSelectLayer, onSelectPoint, height = 260 }: PlotlyChartProps) {
  const container = useRef<HTMLDivElement>(null);
  const selectRef = useRef(onSelectLayer);
  selectRef.current = onSelectLayer;
  const selectPointRef = useRef(onSelectPoint);
  selectPointRef.current = onSelectPoint;
  const [failed, setFailed] = useState<string | null>(null);
  const [rendered, setRendered] = useState(false);

  useEffect(() => {
    let alive = true;
    const element = container.current;
    if (!element) return;
    loadPlotly()
      .then(async (Plotly) => {
        if (!alive) return;
        const plot = await Plotly.react(
          element,
          data,
          { height, margin: { l: 52, r: 16, t: 8, b: 40 }, font: { size: 11 }, paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: 'rgba(0,0,0,0)', ...layout },
          { displayModeBar: false, responsive: true },
        );
        if (!(plot as { __workbenchClick?: boolean }).__workbenchClick) {
          (plot as { __workbenchClick?: boolean }).__workbenchClick = true;
          plot.on('plotly_click', (event) => {
            const custom = (event.points[0] as { customdata?: unknown } | undefined)?.customdata;
            if (selectPointRef.current && typeof custom === 'number') {
              selectPointRef.current(custom);
              return;
            }
            const x = Number(event.points[0]?.x);
            if (Number.isInteger(x)) selectRef.current?.(x);
          });
        }
        if (alive) setRendered(true);
      })
      .catch((error: Error) => alive && setFailed(error.message));
    return () => {
      alive = false;
    };
  }, [data, layout, height]);

  useEffect(() => {
    const element = container.current;
    return () => {
      if (element) void loadPlotly().then((Plotly) => Plotly.purge(element));
    };
  }, []);

  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      {failed && <p className="hint">The chart could not be drawn: {failed}</p>}
      <div
        ref={container}
        className="chart-canvas"
        data-testid={testId}
        data-point-count={pointCount}
        data-rendered={rendered ? 'true' : 'false'}
        style={{ minHeight: height }}
      />
    </figure>
  );
}
