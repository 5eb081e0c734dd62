/**
 * Batch evaluation of the current ablation on held-out prompts — refusal rate base → ablated, first-token KL,
 * the replies with their markers — and the per-layer sweep (clicking a point selects that layer everywhere).
 * Named export, no props.
 */
import { useEffect, useMemo } from 'react';
import { selectLayer } from '../../state/actions';
import { cancelEvaluation, cancelSweep, followPromptSet, importHeldOut, importMarkers, runEvaluation, runSweep, sweepCandidates } from '../../state/chat-evaluation';
import { followPromptSets } from '../../state/evaluation-sets';
import { updateChat } from '../../state/chat-actions';
import { useChat, type HeldOutSet, type TaskState } from '../../state/chat-store';
import { EVAL_SAMPLE_COLUMNS } from '../../state/eval-export';
import { SWEEP_COLUMNS } from '../../state/layer-choice';
import { useWorkbench } from '../../state/store';
import { TableDownload } from '../common/TableDownload';
import { PlotlyChart } from '../plots/PlotlyChart';
import { SamplesTable } from './SamplesTable';
import { AgentMetric } from '../agent/AgentMetric';
import { useAgentPrompts } from '../../state/agent-prompts';
import { parsePromptSet } from '../../state/prompt-sets';
import { sweepFigure } from './sweep-figure';
import '../chat/chat.css';
import { HiddenFileInput } from '../common/HiddenFileInput';

const percent = (rate: number) => `${(rate * 100).toFixed(rate === 0 || rate === 1 ? 0 : 1)}%`;
/** "95% CI 3–27%": the Wilson interval that comes with every rate. */
const interval = (range: [number, number] | undefined) => (range ? `95% CI ${Math.round(range[0] * 100)}–${Math.round(range[1] * 100)}%` : '');

function HeldOutPicker({ set, which, title }: { set: HeldOutSet; which: 'harmful' | 'harmless'; title: string }) {
  return (
    <div className="eval-set">
      <span>
        <strong>{title}</strong> · {set.prompts.length} prompt{set.prompts.length === 1 ? '' : 's'}{' '}
        <label className="link-button" title="Import a .txt (one prompt per line) or .jsonl file">
          import…
          <HiddenFileInput accept=".txt,.jsonl" testId={`eval.${which}-file`} onFile={(file) => void importHeldOut(which, file)} />
        </label>
      </span>
      <span className="hint eval-set-source">
        <span title={set.source} data-testid={`eval.${which}-source`}>
          {set.source || 'none yet'}
        </span>
        {set.imported && (
          <>
            {' '}
            <button type="button" className="link-button" onClick={() => followPromptSet(which)} title={`Evaluate on the prompts of set ${which === 'harmful' ? 'A' : 'B'} again (its preset's test file, or its held-out split)`}>
              follow {which === 'harmful' ? 'A' : 'B'} again
            </button>
          </>
        )}
      </span>
    </div>
  );
}

function TaskProgress({ task, testId }: { task: TaskState; testId: string }) {
  const value = Math.round(task.fraction * 100);
  return (
    <span className="progress-wrap">
      <span className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={value} data-testid={testId} data-state={task.phase}>
        <span className="progress-fill" style={{ width: `${value}%`, display: 'block' }} />
      </span>
      <span className="progress-text">{task.phase === 'idle' ? '' : `${task.detail}${task.phase === 'running' ? ` · ${value}%` : ''}`}</span>
    </span>
  );
}

function MarkerList({ markers, used }: { markers: { list: string[]; source: string } | null; used: string[] | null }) {
  const shown = markers?.list ?? used;
  return (
    <details className="marker-list hint">
      <summary>
        refusal markers: {markers ? `${markers.list.length} from ${markers.source}` : 'the default list (as abliterate eval)'} ·{' '}
        <label className="link-button" title="A .json array of strings, or one marker per line (as abliterate eval --markers)">
          {markers ? 'replace…' : 'use a marker file…'}
          <HiddenFileInput accept=".json,.txt" testId="eval.markers-file" onFile={(file) => void importMarkers(file)} />
        </label>
        {markers && (
          <>
            {' '}
            <button type="button" className="link-button" onClick={() => void importMarkers(null)}>
              back to the default
            </button>
          </>
        )}
      </summary>
      {shown ? <p className="markers">{shown.map((marker) => `“${marker}”`).join(' · ')}</p> : <p>The list appears after the first evaluation.</p>}
    </details>
  );
}

export function EvaluationPanel() {
  const heldOut = useChat((state) => state.heldOut);
  const evaluation = useChat((state) => state.evaluation);
  const sweep = useChat((state) => state.sweep);
  const maxNewTokens = useChat((state) => state.evalMaxNewTokens);
  const markers = useChat((state) => state.markers);
  const modelReady = useWorkbench((state) => state.model.phase === 'ready');
  const hasAnalysis = useWorkbench((state) => state.result !== null);
  const selected = useWorkbench((state) => state.selectedLayer);
  const result = evaluation.result;
  const agentSet = useAgentPrompts((state) => state.set);
  const agentCount = useMemo(() => parsePromptSet(agentSet, 'agent prompts').rows.length, [agentSet]);
  const figure = useMemo(() => (sweep.result ? sweepFigure(sweep.result, selected) : null), [sweep.result, selected]);
  const candidates = hasAnalysis ? sweepCandidates() : [];
  // The evaluation sets follow the prompt sets (their held-out split) unless a file was imported here.
  useEffect(() => followPromptSets(), []);
  return (
    <div className="evaluation-panel">
      <h3 className="subheading">Evaluation on held-out prompts</h3>
      <div className="eval-sets">
        <HeldOutPicker set={heldOut.harmful} which="harmful" title="A · refusal rate" />
        <HeldOutPicker set={heldOut.harmless} which="harmless" title="B · first-token KL" />
        <label className="hint" title="Greedy reply length, as abliterate eval --max-new-tokens">
          max tokens{' '}
          <input type="number" className="small-number" min={1} max={4096} value={maxNewTokens} data-testid="eval.max-tokens" onChange={(event) => Number.isInteger(event.target.valueAsNumber) && event.target.valueAsNumber >= 1 && updateChat({ evalMaxNewTokens: event.target.valueAsNumber })} />
        </label>
      </div>
      <MarkerList markers={markers} used={result?.markers ?? null} />
      <div className="eval-controls">
        <button type="button" className="primary" data-testid="eval.run" disabled={!modelReady || evaluation.phase === 'running'} onClick={() => void runEvaluation()}>
          {evaluation.phase === 'running' ? 'Evaluating…' : 'Evaluate ablation'}
        </button>
        <button type="button" data-testid="eval.cancel" disabled={evaluation.phase !== 'running'} onClick={cancelEvaluation}>
          Cancel
        </button>
        <TaskProgress task={evaluation} testId="eval.progress" />
      </div>
      <div className="metrics">
        <div className="metric">
          <div className="metric-label">refusal rate, base → ablated ({result?.counts.harmful ?? heldOut.harmful.prompts.length} prompts)</div>
          <div className="metric-value">
            <span className="base-rate" data-testid="eval.refusal-base" data-value={result?.base.refusalRate}>
              {result ? percent(result.base.refusalRate) : '–'}
            </span>
            <span className="arrow">→</span>
            <span className="ablated-rate" data-testid="eval.refusal-ablated" data-value={result?.ablated.refusalRate}>
              {result ? percent(result.ablated.refusalRate) : '–'}
            </span>
          </div>
          <div className="metric-detail" data-testid="eval.refusal-interval">
            {result ? `base ${interval(result.base.refusalInterval)} · ablated ${interval(result.ablated.refusalInterval)} (Wilson) · ` : ''}
            greedy, {result?.maxNewTokens ?? maxNewTokens} tokens; a reply with a marker (or empty) is a refusal
          </div>
          <div className="metric-detail" data-testid="eval.harmful-prompts">prompts: {result?.promptSources?.harmful ?? (heldOut.harmful.source || 'none yet')}</div>
        </div>
        <div className="metric">
          <div className="metric-label">first-token KL(base ‖ ablated) ({result?.counts.harmless ?? heldOut.harmless.prompts.length} prompts)</div>
          <div className="metric-value" data-testid="eval.kl" data-value={result?.klFirstToken}>
            {result ? result.klFirstToken.toPrecision(4) : '–'}
          </div>
          <div className="metric-detail">{result ? `max over prompts ${Math.max(...result.klPerPrompt).toPrecision(3)} · nats` : 'mean over compliance prompts, nats'}</div>
          <div className="metric-detail" data-testid="eval.harmless-prompts">prompts: {result?.promptSources?.harmless ?? (heldOut.harmless.source || 'none yet')}</div>
        </div>
        <AgentMetric agent={result?.agent} pending={agentCount} />
        <div className="metric">
          <div className="metric-label">evaluated ablation</div>
          <div className="metric-detail" data-testid="eval.ablation">
            {result ? `${result.ablatedLabel} · ${result.backend} · ${result.seconds.toFixed(1)} s` : 'Run the evaluation for the current ablation.'}
          </div>
        </div>
      </div>
      {result && (
        <>
          <TableDownload rows={result.samples.map((sample, index) => ({ ...sample, index }))} columns={EVAL_SAMPLE_COLUMNS} stem="eval-samples" testId="eval.download" json={() => `${JSON.stringify(result, null, 2)}\n`} />
          <SamplesTable samples={result.samples} />
        </>
      )}

      <h3 className="subheading">Per-layer sweep</h3>
      <div className="eval-controls">
        <button type="button" data-testid="sweep.run" disabled={!modelReady || !hasAnalysis || sweep.phase === 'running'} onClick={() => void runSweep()} title={hasAnalysis ? `layers ${candidates.join(', ')}` : 'needs the capture (step 3)'}>
          {sweep.phase === 'running' ? 'Sweeping…' : candidates.length > 0 ? `Sweep ${candidates.length} layer${candidates.length === 1 ? '' : 's'}` : 'Sweep layers'}
        </button>
        <button type="button" data-testid="sweep.cancel" disabled={sweep.phase !== 'running'} onClick={cancelSweep} title="Stop the sweep; the layers that finished stay on the plot">
          Cancel
        </button>
        <TaskProgress task={sweep} testId="sweep.progress" />
      </div>
      {!hasAnalysis && <p className="hint">The sweep removes each layer's analysis direction in turn: run the capture (step 3) first.</p>}
      {sweep.result && figure && (
        <>
          <p className="hint sweep-summary" data-testid="sweep.recommendation">
            {sweep.result.cancelled && (
              <span data-testid="sweep.cancelled">
                Cancelled after {sweep.result.rows.length} of {sweep.result.rows.length + sweep.result.cancelled.notSwept.length} layers: the finished ones are kept (recommendation among them); not reached: {sweep.result.cancelled.notSwept.join(', ')}.{' '}
              </span>
            )}
            {sweep.result.recommendation ? (
              <>
                recommended layer <strong>{sweep.result.recommendation.layer}</strong>: {sweep.result.recommendation.reason}.{' '}
              </>
            ) : null}
            Base refusal {percent(sweep.result.baseRefusalRate)} ({interval(sweep.result.baseRefusalInterval)}) on {sweep.result.counts.harmful} refusal prompts ({sweep.result.promptSources?.harmful ?? 'the evaluation set A'}); KL on {sweep.result.counts.harmless} compliance prompts ({sweep.result.promptSources?.harmless ?? 'the evaluation set B'}); click a point to select its layer.
            {sweep.result.skipped.length > 0 && ` Not swept: ${sweep.result.skipped.map((entry) => `layer ${entry.layer} — ${entry.reason}`).join('; ')}.`}
          </p>
          <TableDownload rows={sweep.result.rows} columns={SWEEP_COLUMNS} stem="sweep" testId="sweep.download" json={() => `${JSON.stringify(sweep.result, null, 2)}\n`} />
          <PlotlyChart testId="plot.sweep" title="Refusal rate and first-token KL after removing each layer's direction" {...figure} onSelectLayer={selectLayer} height={280} />
        </>
      )}
    </div>
  );
}
