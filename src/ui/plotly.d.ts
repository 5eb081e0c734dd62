/** The slice of Plotly's API the workbench uses (plotly.js-dist-min ships no types). */
declare module 'plotly.js-dist-min' {
  export interface PlotlyClickPoint {
    x: number | string;
    y: number | string;
    curveNumber: number;
    pointNumber: number | number[];
  }
  export interface PlotlyHTMLElement extends HTMLElement {
    on(event: 'plotly_click', handler: (event: { points: PlotlyClickPoint[] }) => void): void;
    removeAllListeners?(event: string): void;
    data?: { x?: unknown[]; y?: unknown[] }[];
  }
  const Plotly: {
    react(element: HTMLElement, data: object[], layout: object, config?: object): Promise<PlotlyHTMLElement>;
    purge(element: HTMLElement): void;
    /** A data URL ("data:image/svg+xml,…" or base64 PNG) of a rendered graph or of a {data, layout} figure. */
    toImage(figure: HTMLElement | { data: object[]; layout: object }, options: { format: 'png' | 'svg'; width: number; height: number; scale?: number }): Promise<string>;
    downloadImage(graph: HTMLElement, options: { format: 'png' | 'svg'; filename: string; width?: number; height?: number }): Promise<string>;
    Icons: Record<string, unknown>;
    Plots: { resize(element: HTMLElement): void };
  };
  export default Plotly;
}
