/**
 * Step 3: capture and the per-layer analysis — progress and cancel, the layer selector, the four plots, and
 * the report download. Clicking a layer in any layer plot selects it.
 */
import { useMemo, useState } from 'react';
import { cancelCapture, downloadReport, runCapture, selectLayer } from '../state/actions';
import { useChat } from '../state/chat-store';
import { projectedPromptIndex, promptOf, recommendLayer } from '../state/layer-choice';
import { useWorkbench, workbenchStore } from '../state/store';
import { LayerChoicePanel } from './layers/LayerChoicePanel';
import { aucFigure, aucLabel, cosineFigure, heatmapFigure, histogramFigure } from './plots/figures';
import { PlotlyChart, type ClickedPoint } from './plots/PlotlyChart';
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

/** The one recommended layer (the sweep's when there is one, else the capture's), as every view of this panel stars it. */
function useRecommended(): number | null {
  const result = useWorkbench((state) => state.result);
  const sweep = useChat((state) => state.sweep.result);
  return useMemo(() => (result ? recommendLayer(result, sweep).layer : null), [result, sweep]);
}

function LayerSelector() {
  const result = useWorkbench((state) => state.result);
  const selected = useWorkbench((state) => state.selectedLayer);
  const recommended = useRecommended();
  if (!result || recommended === null) return null;
  const report = result.report;
  const layer = selected === null ? null : report.layers[selected];
  const interval = Array.isArray(layer?.aucInterval) ? (layer.aucInterval as number[]) : null;
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
        {selected === recommended && <span className="badge">★ recommended</span>}
      </span>
      {layer && (
        <span className="layer-stats">
          AUC {layer.auc.toFixed(3)}
          {interval && ` [${interval.map((end) => end.toFixed(3)).join(', ')}]`} {aucLabel(result)}
          {report.counts.heldOut > 0 && ` · ${layer.aucTrain.toFixed(3)} train`}
          {typeof layer.dPrime === 'number' && ` · d′ ${layer.dPrime.toFixed(2)}`}
          {layer.cosineReference !== null && <> · cos ref {layer.cosineReference.toFixed(3)}</>} · ‖mean gap‖ {layer.meanGapNorm.toPrecision(3)}
        </span>
      )}
      {selected !== recommended && (
        <button type="button" className="link-button" onClick={() => selectLayer(recommended)}>
          back to recommended (layer {recommended})
        </button>
      )}
      <button type="button" className="download" data-testid="report.download" onClick={downloadReport}>
        Download report.json
      </button>
    </div>
  );
}

/** The prompts of a clicked histogram bar, named by set and number. */
function BinPrompts({ clicked, onClose }: { clicked: { layer: number; points: ClickedPoint[] }; onClose: () => void }) {
  const result = useWorkbench((state) => state.result);
  const prompts = useWorkbench((state) => state.resultPrompts);
  if (!result) return null;
  const entries = clicked.points.flatMap((point) => {
    const set = point.curveNumber === 0 ? ('harmful' as const) : ('harmless' as const);
    return point.pointNumbers.map((position) => ({ set, index: projectedPromptIndex(result, set, position) }));
  });
  return (
    <div className="bin-prompts" data-testid="histogram.prompts">
      <strong>
        {entries.length} prompt{entries.length === 1 ? '' : 's'} in this bar at layer {clicked.layer}
      </strong>{' '}
      <button type="button" className="link-button" onClick={onClose}>
        close
      </button>
      <ul>
        {entries.map((entry, position) => (
          <li key={position}>
            <span className={`tag ${entry.set === 'harmful' ? 'tag-a' : 'tag-b'}`}>{entry.set === 'harmful' ? 'A' : 'B'}{entry.index === null ? '' : ` #${entry.index + 1}`}</span>{' '}
            {entry.index === null ? '(prompt not recorded with this result)' : promptOf(prompts, entry.set, entry.index)}
          </li>
        ))}
      </ul>
    </div>
  );
}

function Plots() {
  const result = useWorkbench((state) => state.result);
  const selected = useWorkbench((state) => state.selectedLayer);
  const origin = useWorkbench((state) => state.resultOrigin);
  const recommended = useRecommended();
  const [clicked, setClicked] = useState<{ layer: number; points: ClickedPoint[] } | null>(null);
  const figures = useMemo(
    () =>
      result && {
        auc: aucFigure(result, selected, recommended ?? undefined),
        cosine: cosineFigure(result, selected, recommended ?? undefined),
        heatmap: heatmapFigure(result, selected),
        histogram: histogramFigure(result, selected),
      },
    [result, selected, recommended],
  );
  if (!figures || !result) {
    return <p className="empty-plots hint">Plots appear here after a capture: AUC and reference cosine per layer, the cross-layer cosine map, and A-vs-B projections at the selected layer.</p>;
  }
  const counts = result.report.counts;
  return (
    <>
      <p className="hint result-summary">
        {counts.harmful} A and {counts.harmless} B prompts, {counts.heldOut > 0 ? `${counts.heldOut} held out` : 'none held out (AUCs on the training split)'} · position {result.report.position} ·{' '}
        <span data-testid="result.origin">{origin ? `restored from ${origin}` : result.fromCache ? 'from the activation cache' : `captured on ${result.backend}`}</span> · recommended layer <strong>{recommended}</strong> (★)
      </p>
      <div className="plot-grid">
        <PlotlyChart testId="plot.auc" title={`AUC per layer (${aucLabel(result)}) — A vs B projections on r_l`} {...figures.auc} onSelectLayer={selectLayer} />
        <PlotlyChart testId="plot.cosine" title="Cosine of r_l with the reference direction" {...figures.cosine} onSelectLayer={selectLayer} />
        <PlotlyChart testId="plot.heatmap" title="Cross-layer cosine cos(r_i, r_j)" {...figures.heatmap} onSelectLayer={selectLayer} />
        <div>
          <PlotlyChart testId="plot.histogram" title={`${counts.heldOut > 0 ? 'Held-out' : 'Training'} projections at layer ${selected ?? '–'}`} {...figures.histogram} onClickPoints={(points) => selected !== null && setClicked({ layer: selected, points })} />
          {clicked && clicked.layer === selected && <BinPrompts clicked={clicked} onClose={() => setClicked(null)} />}
        </div>
      </div>
      <LayerChoicePanel />
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
