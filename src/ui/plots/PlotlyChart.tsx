/**
 * A Plotly container. Plotly (3 MB) is imported on first use, so the page opens without it. Clicking a point
 * reports its x value (a layer index in every workbench plot) through `onSelectLayer`, or the clicked points
 * themselves through `onClickPoints` (a histogram bin's prompts). Every plot has Plotly's toolbar: PNG and SVG
 * download (named after the plot), zoom, pan and reset.
 */
import { useEffect, useRef, useState } from 'react';

type PlotlyModule = typeof import('plotly.js-dist-min').default;
let plotlyPromise: Promise<PlotlyModule> | null = null;
export function loadPlotly(): Promise<PlotlyModule> {
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
  /** Clicked points: the trace (curveNumber) and, for a histogram bin, the indices of the values in it. */
  onClickPoints?: (points: ClickedPoint[]) => void;
  height?: number;
}

export interface ClickedPoint {
  curveNumber: number;
  x: unknown;
  pointNumbers: number[];
}

/** The toolbar: image downloads in both formats, named after the plot's test id ("plot.auc" → plot-auc.svg). */
function plotConfig(Plotly: PlotlyModule, testId: string): object {
  const filename = testId.replace(/\./g, '-');
  return {
    displayModeBar: 'hover', // shown over the plot on hover, so it never covers a legend in a still view
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ['select2d', 'lasso2d', 'autoScale2d'],
    toImageButtonOptions: { format: 'png', filename, scale: 2 },
    modeBarButtonsToAdd: [
      {
        name: 'downloadSvg',
        title: 'Download plot as SVG',
        icon: Plotly.Icons.disk,
        click: (graph: HTMLElement) => void Plotly.downloadImage(graph, { format: 'svg', filename, width: graph.clientWidth, height: graph.clientHeight }),
      },
    ],
  };
}

export function PlotlyChart({ testId, title, data, layout, pointCount, onSelectLayer, onClickPoints, height = 260 }: PlotlyChartProps) {
  const container = useRef<HTMLDivElement>(null);
  const selectRef = useRef(onSelectLayer);
  selectRef.current = onSelectLayer;
  const pointsRef = useRef(onClickPoints);
  pointsRef.current = onClickPoints;
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
          plotConfig(Plotly, testId),
        );
        if (!(plot as { __workbenchClick?: boolean }).__workbenchClick) {
          (plot as { __workbenchClick?: boolean }).__workbenchClick = true;
          plot.on('plotly_click', (event) => {
            if (pointsRef.current) {
              const points = event.points as unknown as { curveNumber: number; x: unknown; pointNumber?: number; pointNumbers?: number[] }[];
              pointsRef.current(points.map((point) => ({ curveNumber: point.curveNumber, x: point.x, pointNumbers: point.pointNumbers ?? (point.pointNumber === undefined ? [] : [point.pointNumber]) })));
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
  }, [data, layout, height, testId]);

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
