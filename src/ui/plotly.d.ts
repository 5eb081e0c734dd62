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
    Plots: { resize(element: HTMLElement): void };
  };
  export default Plotly;
}
