/** The finished trials, sortable by each metric; clicking a row makes its recipe current. */
import { selectTrial, sortTrials, sortedTrials } from '../../state/search-actions';
import type { TrialSortKey } from '../../state/search-store';
import type { TrialRecord } from '../../protocol/search-api';
import { recipeHover } from './pareto-figure';

const COLUMNS: { key: TrialSortKey; label: string }[] = [
  { key: 'trial', label: 'trial' },
  { key: 'refusalRate', label: 'refusal' },
  { key: 'klFirstToken', label: 'KL' },
  { key: 'falseRefusalRate', label: 'false refusals' },
  { key: 'seconds', label: 'seconds' },
];

const percent = (value: number | null) => (value === null ? '—' : `${(value * 100).toFixed(1)}%`);

export function TrialsTable({ trials, pareto, selected, sort }: { trials: TrialRecord[]; pareto: ReadonlySet<number>; selected: number | null; sort: { key: TrialSortKey; descending: boolean } }) {
  if (trials.length === 0) return null;
  return (
    <div className="trials-table-wrap">
      <table className="trials-table" data-testid="optimize.table">
        <thead>
          <tr>
            {COLUMNS.map((column) => (
              <th key={column.key} aria-sort={sort.key === column.key ? (sort.descending ? 'descending' : 'ascending') : 'none'}>
                <button type="button" className="link-button" onClick={() => sortTrials(column.key)}>
                  {column.label}
                  {sort.key === column.key ? (sort.descending ? ' ▼' : ' ▲') : ''}
                </button>
              </th>
            ))}
            <th>recipe</th>
          </tr>
        </thead>
        <tbody>
          {sortedTrials(trials, sort).map((trial) => (
            <tr key={trial.trial} className={`${pareto.has(trial.trial) ? 'pareto' : ''} ${trial.trial === selected ? 'selected' : ''}`} onClick={() => selectTrial(trial.trial)} data-trial={trial.trial}>
              <td>
                {trial.trial}
                {pareto.has(trial.trial) ? ' ★' : ''}
              </td>
              <td>
                {percent(trial.refusalRate)}
                {trial.pruned ? ' (≥, stopped early)' : ''}
              </td>
              <td>{trial.klFirstToken.toPrecision(3)}</td>
              <td>{percent(trial.falseRefusalRate)}</td>
              <td>{trial.seconds.toFixed(1)}</td>
              <td className="recipe-cell">{recipeHover(trial).split('<br>').slice(2).join(' · ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
