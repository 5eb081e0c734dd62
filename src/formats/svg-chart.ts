/**
 * A small line chart as standalone SVG text, for run cards written where no browser (and so no Plotly) is at
 * hand: the CLI's plots/auc.svg and plots/cosine.svg. One x axis of integers (layer indices), one linear y axis
 * over a fixed range, a polyline with a dot per point for each series (null values leave gaps), a boxed legend
 * at the bottom right and an optional marked x (the recommended layer). Plain SVG 1.1, no scripts or external
 * resources.
 */

export interface ChartSeries {
  name: string;
  color: string;
  /** [x, y]; y null leaves a gap. */
  points: [number, number | null][];
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  yRange: [number, number];
  series: ChartSeries[];
  /** An x drawn as a dashed vertical line, with its label. */
  marker?: { x: number; label: string };
}

const WIDTH = 720;
const HEIGHT = 420;
const PLOT = { left: 70, right: WIDTH - 30, top: 50, bottom: HEIGHT - 60 };
const Y_TICKS = 5;

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fixed = (value: number) => Number(value.toFixed(2)).toString();

export function lineChartSvg(chart: LineChart): string {
  const xs = chart.series.flatMap((series) => series.points.map(([x]) => x));
  const [xMin, xMax] = xs.length > 0 ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  const [yMin, yMax] = chart.yRange;
  const px = (x: number) => PLOT.left + ((x - xMin) / Math.max(1, xMax - xMin)) * (PLOT.right - PLOT.left);
  const py = (y: number) => PLOT.bottom - ((Math.min(yMax, Math.max(yMin, y)) - yMin) / (yMax - yMin)) * (PLOT.bottom - PLOT.top);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15">${escapeXml(chart.title)}</text>`,
  ];
  for (let tick = 0; tick <= Y_TICKS; tick++) {
    const value = yMin + ((yMax - yMin) * tick) / Y_TICKS;
    const y = fixed(py(value));
    parts.push(`<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`, `<text x="${PLOT.left - 8}" y="${y}" dy="4" text-anchor="end">${fixed(value)}</text>`);
  }
  const step = Math.max(1, Math.ceil((xMax - xMin) / 20));
  for (let x = Math.ceil(xMin); x <= xMax; x += step) parts.push(`<text x="${fixed(px(x))}" y="${PLOT.bottom + 18}" text-anchor="middle">${x}</text>`);
  parts.push(
    `<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${PLOT.bottom}" y2="${PLOT.bottom}" stroke="#333"/>`,
    `<line x1="${PLOT.left}" x2="${PLOT.left}" y1="${PLOT.top}" y2="${PLOT.bottom}" stroke="#333"/>`,
    `<text x="${(PLOT.left + PLOT.right) / 2}" y="${HEIGHT - 18}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
    `<text transform="translate(18 ${(PLOT.top + PLOT.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`,
  );
  if (chart.marker) {
    const x = fixed(px(chart.marker.x));
    parts.push(`<line x1="${x}" x2="${x}" y1="${PLOT.top}" y2="${PLOT.bottom}" stroke="#888" stroke-dasharray="4 4"/>`, `<text x="${x}" y="${PLOT.top - 6}" text-anchor="middle" fill="#555">${escapeXml(chart.marker.label)}</text>`);
  }
  chart.series.forEach((series, index) => {
    // Runs of non-null points become one polyline each.
    let run: string[] = [];
    const flush = () => {
      if (run.length > 0) parts.push(`<polyline fill="none" stroke="${series.color}" stroke-width="2" points="${run.join(' ')}" data-series="${escapeXml(series.name)}"/>`);
      run = [];
    };
    for (const [x, y] of series.points) {
      if (y === null || !Number.isFinite(y)) {
        flush();
        continue;
      }
      run.push(`${fixed(px(x))},${fixed(py(y))}`);
      parts.push(`<circle cx="${fixed(px(x))}" cy="${fixed(py(y))}" r="3" fill="${series.color}" data-series="${escapeXml(series.name)}" data-x="${x}" data-y="${y}"/>`);
    }
    flush();
    const legendY = PLOT.bottom - 14 - (chart.series.length - 1 - index) * 18;
    if (index === 0) parts.push(`<rect x="${PLOT.right - 158}" y="${PLOT.bottom - 24 - (chart.series.length - 1) * 18}" width="154" height="${chart.series.length * 18 + 2}" fill="white" fill-opacity="0.85" stroke="#ccc"/>`);
    parts.push(`<line x1="${PLOT.right - 150}" x2="${PLOT.right - 130}" y1="${legendY}" y2="${legendY}" stroke="${series.color}" stroke-width="2"/>`, `<text x="${PLOT.right - 124}" y="${legendY}" dy="4">${escapeXml(series.name)}</text>`);
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}
