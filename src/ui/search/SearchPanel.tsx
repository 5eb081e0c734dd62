/**
 * The recipe search panel: settings (trials, seed, prompts, the KL bound of the suggested trial), the search
 * space (a range, the choices, or a pinned value per parameter), run/stop with progress, the live Pareto plot
 * (click a point to make its recipe current) and the sortable trials table. Named export, no props.
 */
import { useEffect, useMemo } from 'react';
import { cancelSearch, ensureSearchSpace, paretoTrialNumbers, runSearch, selectTrial, suggestedTrial, updateSearch } from '../../state/search-actions';
import { useSearch } from '../../state/search-store';
import { useWorkbench } from '../../state/store';
import { PlotlyChart } from '../plots/PlotlyChart';
import { paretoFigure } from './pareto-figure';
import { SpaceEditor } from './SpaceEditor';
import { TrialsTable } from './TrialsTable';
import './search.css';

function NumberField({ label, value, testId, min, step, onChange }: { label: string; value: number; testId?: string; min?: number; step?: number; onChange: (value: number) => void }) {
  return (
    <label>
      {label}{' '}
      <input type="number" className="small-number" data-testid={testId} value={value} min={min} step={step ?? 1} onChange={(event) => onChange(Number(event.currentTarget.value))} />
    </label>
  );
}

export function SearchPanel() {
  const result = useWorkbench((state) => state.result);
  const state = useSearch((search) => search);
  useEffect(() => {
    if (result) ensureSearchSpace();
  }, [result]);
  const pareto = useMemo(() => paretoTrialNumbers(state.results), [state.results]);
  const figure = useMemo(() => paretoFigure(state.results, pareto, state.selectedTrial), [state.results, pareto, state.selectedTrial]);
  const suggestion = useMemo(() => suggestedTrial(state.results, state.klBound), [state.results, state.klBound]);
  const running = state.task.phase === 'running';
  const value = Math.round(state.task.fraction * 100);
  return (
    <div className="search-panel">
      <p className="hint">
        Minimizes the refusal rate on the held-out refusal prompts (A) and the first-token KL on the held-out compliance prompts (B), over
        recipes: direction, projection, method and per-block weight kernels. False refusals on B are reported. Multi-objective TPE after 10
        random trials; a trial already dominated by its refusals stops early.
      </p>
      <div className="search-settings">
        <NumberField label="Trials" testId="optimize.trials" value={state.trials} min={1} onChange={(trials) => updateSearch({ trials })} />
        <NumberField label="Seed" value={state.seed} onChange={(seed) => updateSearch({ seed })} />
        <NumberField label="Prompts per set" value={state.promptsPerSet} min={1} onChange={(promptsPerSet) => updateSearch({ promptsPerSet })} />
        <NumberField label="Max new tokens" value={state.maxNewTokens} min={1} onChange={(maxNewTokens) => updateSearch({ maxNewTokens })} />
        <NumberField label="KL bound (suggested trial)" value={state.klBound} min={0} step={0.05} onChange={(klBound) => updateSearch({ klBound })} />
        <button type="button" data-testid="optimize.run" disabled={!result && !running} onClick={() => (running ? cancelSearch() : void runSearch())}>
          {running ? 'Stop search' : 'Run search'}
        </button>
      </div>
      <div className="search-status">
        <span className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={value} data-state={state.task.phase}>
          <span className="progress-fill" style={{ width: `${value}%`, display: 'block' }} />
        </span>
        <span data-testid="optimize.status" data-state={state.task.phase}>
          {state.task.phase === 'idle' ? (result ? 'ready' : 'run the capture (step 3) first') : state.task.phase === 'running' ? `running · ${state.task.detail}` : state.task.detail}
        </span>
      </div>
      {state.space && <SpaceEditor space={state.space} notes={state.spaceNotes} disabled={running} />}
      <PlotlyChart
        testId="plot.pareto"
        title={`Trials: refusal rate vs first-token KL (${state.results.length} finished, ${pareto.size} on the front)`}
        data={figure.data}
        layout={figure.layout}
        pointCount={figure.pointCount}
        onClickPoints={(points) => {
          // Every trace carries the trial numbers as customdata, in point order.
          const point = points[0];
          const trial = point ? (figure.data[point.curveNumber] as { customdata?: number[] } | undefined)?.customdata?.[point.pointNumbers[0] ?? -1] : undefined;
          if (trial !== undefined) selectTrial(trial);
        }}
        height={300}
      />
      {suggestion && (
        <p className="hint">
          Suggested: trial {suggestion.trial} (lowest refusal rate with KL ≤ {state.klBound}).{' '}
          <button type="button" className="link-button" onClick={() => selectTrial(suggestion.trial)}>
            use it
          </button>
        </p>
      )}
      <TrialsTable trials={state.results} pareto={pareto} selected={state.selectedTrial} sort={state.sort} />
    </div>
  );
}
