/**
 * Step 3: capture and the per-layer analysis — progress and cancel, the layer selector, the four plots, and
 * the report download. Clicking a layer in any layer plot selects it.
 */
import { useMemo } from 'react';
import { cancelCapture, downloadReport, runCapture, selectLayer } from '../state/actions';
import { useWorkbench, workbenchStore } from '../state/store';
import { aucFigure, cosineFigure, heatmapFigure, histogramFigure } from './plots/figures';
import { PlotlyChart } from './plots/PlotlyChart';
import { PreflightPanel } from './agent/PreflightPanel';

function CaptureControls() {
  const capture = useWorkbench((state) => state.capture);
  const modelReady = useWorkbench((state) => state.model.phase === 'ready');
  const canCapture = useWorkbench((state) => state.model.inspection?.capabilities.capture ?? false);
  const running = capture.phase === 'running';
  const percent = Math.round(capture.fraction * 100);
  return (
    <div className="capture-controls">
      <button type="button" className="primary" data-testid="capture.run" disabled={!modelReady || !canCapture || running} onClick={() => void runCapture()}>
        {running ? 'Capturing…' : 'Capture & analyse'}
      </button>
      <button type="button" data-testid="capture.cancel" disabled={!running} onClick={cancelCapture}>
        Cancel
      </button>
      <div className="progress-wrap">
        <div
          className="progress"
          role="progressbar"
          aria-label="capture progress"
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={percent}
          data-testid="capture.progress"
          data-state={capture.phase}
        >
          <div className="progress-fill" style={{ width: `${percent}%` }} />
        </div>
        <span className="progress-text" data-testid="capture.detail">
          {capture.phase === 'idle'
            ? !modelReady
              ? 'Load a model to capture.'
              : canCapture
                ? 'Ready to capture.'
                : 'This folder cannot be captured (it needs a tokenizer and an ONNX graph).' : `${capture.detail}${running ? ` · ${percent}%` : ''}`}
        </span>
      </div>
    </div>
  );
}

/** Token position, held-out fraction and split seed: the CLI's --position, --held-out and --seed. */
function CaptureSettings() {
  const position = useWorkbench((state) => state.position);
  const heldOut = useWorkbench((state) => state.heldOutFraction);
  const seed = useWorkbench((state) => state.seed);
  const running = useWorkbench((state) => state.capture.phase === 'running');
  const setInteger = (key: 'position' | 'seed', value: number) => {
    if (Number.isInteger(value)) workbenchStore.setState({ [key]: value });
  };
  return (
    <div className="capture-settings">
      <label title="Token whose residual is read: -1 = the last prompt token (after the chat template's assistant opener)">
        position <input type="number" data-testid="capture.position" step={1} value={position} disabled={running} onChange={(event) => setInteger('position', event.currentTarget.valueAsNumber)} />
      </label>
      <label title="Fraction of each set held out to score the AUC">
        held out{' '}
        <input
          type="number"
          data-testid="capture.held-out"
          min={0}
          max={0.9}
          step={0.05}
          value={heldOut}
          disabled={running}
          onChange={(event) => {
            const value = event.currentTarget.valueAsNumber;
            if (value >= 0 && value < 1) workbenchStore.setState({ heldOutFraction: value });
          }}
        />
      </label>
      <label title="Seed of the train / held-out split">
        seed <input type="number" data-testid="capture.seed" step={1} value={seed} disabled={running} onChange={(event) => setInteger('seed', event.currentTarget.valueAsNumber)} />
      </label>
    </div>
  );
}

function LayerSelector() {
  const result = useWorkbench((state) => state.result);
  const selected = useWorkbench((state) => state.selectedLayer);
  if (!result) return null;
  const report = result.report;
  const layer = selected === null ? null : report.layers[selected];
  return (
    <div className="layer-selector">
      <label>
        Layer{' '}
        <input
          type="number"
          data-testid="layer.input"
          min={0}
          max={report.layers.length - 1}
          step={1}
          value={selected ?? ''}
          onChange={(event) => selectLayer(Number(event.target.value))}
        />
      </label>
      <span className="selected-layer">
        selected <strong data-testid="layer.selected">{selected ?? ''}</strong>
        {selected === report.bestLayer && <span className="badge">★ recommended</span>}
      </span>
      {layer && (
        <span className="layer-stats">
          AUC {layer.auc.toFixed(3)} held-out · {layer.aucTrain.toFixed(3)} train
          {layer.cosineReference !== null && <> · cos ref {layer.cosineReference.toFixed(3)}</>} · ‖mean gap‖ {layer.meanGapNorm.toPrecision(3)}
        </span>
      )}
      {selected !== report.bestLayer && (
        <button type="button" className="link-button" onClick={() => selectLayer(report.bestLayer)}>
          back to recommended (layer {report.bestLayer})
        </button>
      )}
      <button type="button" className="download" data-testid="report.download" onClick={downloadReport}>
        Download report.json
      </button>
    </div>
  );
}

function Plots() {
  const result = useWorkbench((state) => state.result);
  const selected = useWorkbench((state) => state.selectedLayer);
  const figures = useMemo(
    () =>
      result && {
        auc: aucFigure(result, selected),
        cosine: cosineFigure(result, selected),
        heatmap: heatmapFigure(result, selected),
        histogram: histogramFigure(result, selected),
      },
    [result, selected],
  );
  if (!figures || !result) {
    return <p className="empty-plots hint">Plots appear here after a capture: AUC and reference cosine per layer, the cross-layer cosine map, and A-vs-B projections at the selected layer.</p>;
  }
  const counts = result.report.counts;
  return (
    <>
      <p className="hint result-summary">
        {counts.harmful} A and {counts.harmless} B prompts, {counts.heldOut} held out · position {result.report.position} · {result.fromCache ? 'from the activation cache' : `captured on ${result.backend}`} · recommended layer{' '}
        <strong>{result.report.bestLayer}</strong> (★)
      </p>
      <div className="plot-grid">
        <PlotlyChart testId="plot.auc" title="AUC per layer — A vs B projections on r_l" {...figures.auc} onSelectLayer={selectLayer} />
        <PlotlyChart testId="plot.cosine" title="Cosine of r_l with the reference direction" {...figures.cosine} onSelectLayer={selectLayer} />
        <PlotlyChart testId="plot.heatmap" title="Cross-layer cosine cos(r_i, r_j)" {...figures.heatmap} onSelectLayer={selectLayer} />
        <PlotlyChart testId="plot.histogram" title={`Held-out projections at layer ${selected ?? '–'}`} {...figures.histogram} />
      </div>
    </>
  );
}

export function AnalysisPanel() {
  return (
    <section className="region region-wide" aria-labelledby="region-analysis">
      <h2 id="region-analysis">3 · Capture and per-layer analysis</h2>
      <PreflightPanel />
      <CaptureControls />
      <CaptureSettings />
      <LayerSelector />
      <Plots />
    </section>
  );
}
