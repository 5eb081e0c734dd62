/**
 * "Which layer?" in one place: the recommendation and the rule that made it (the sweep's when there is one,
 * else the capture's AUC), the layer-choice figure on one layer axis, the per-layer table with its intervals and
 * downloads, and the selected layer's misclassified prompts.
 */
import { useMemo } from 'react';
import { selectLayer } from '../../state/actions';
import { useChat } from '../../state/chat-store';
import { LAYER_CHOICE_COLUMNS, layerChoiceRows, promptOf, recommendLayer, type LayerChoiceRow } from '../../state/layer-choice';
import { useWorkbench } from '../../state/store';
import { TableDownload } from '../common/TableDownload';
import { PlotlyChart } from '../plots/PlotlyChart';
import { layerChoiceFigure } from './layer-choice-figure';

const fixed = (value: number | null | undefined, digits: number) => (value === null || value === undefined ? '–' : value.toFixed(digits));
const percent = (value: number) => `${Math.round(value * 100)}%`;

function Misclassified({ row }: { row: LayerChoiceRow }) {
  const prompts = useWorkbench((state) => state.resultPrompts);
  const heldOut = useWorkbench((state) => state.result?.report.counts.heldOut ?? 0);
  if (!row.misclassified) return <p className="hint">Misclassified prompts need the capture's split (recapture to see them).</p>;
  const { harmful, harmless } = row.misclassified;
  const scored = heldOut > 0 ? 'held-out' : 'training (nothing held out)';
  return (
    <details className="misclassified" data-testid="layers.misclassified" open={harmful.length + harmless.length > 0 && harmful.length + harmless.length <= 12}>
      <summary>
        layer {row.layer}: {harmful.length} A and {harmless.length} B {scored} prompts on the wrong side of the midpoint between the two means
      </summary>
      <ul>
        {harmful.map((index) => (
          <li key={`a${index}`}>
            <span className="tag tag-a">A #{index + 1}</span> {promptOf(prompts, 'harmful', index)}
          </li>
        ))}
        {harmless.map((index) => (
          <li key={`b${index}`}>
            <span className="tag tag-b">B #{index + 1}</span> {promptOf(prompts, 'harmless', index)}
          </li>
        ))}
      </ul>
    </details>
  );
}

function LayerTable({ rows, selected, recommended }: { rows: LayerChoiceRow[]; selected: number | null; recommended: number }) {
  const heldOut = useWorkbench((state) => state.result?.report.counts.heldOut ?? 0);
  const hasSweep = rows.some((row) => row.sweep !== null);
  return (
    <div className="table-scroll">
      <table className="layer-table" data-testid="layers.table">
        <thead>
          <tr>
            <th>layer</th>
            <th title="95 % stratified bootstrap interval">AUC {heldOut > 0 ? 'held-out' : 'train'} [95% CI]</th>
            {heldOut > 0 && <th>AUC train</th>}
            <th>d′</th>
            <th>cos ref</th>
            {hasSweep && <th title="95 % Wilson interval">ablated refusal [95% CI]</th>}
            {hasSweep && <th>KL</th>}
            <th>misclassified A / B</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.layer} className={row.layer === selected ? 'selected' : undefined} onClick={() => selectLayer(row.layer)}>
              <td>
                {row.layer}
                {row.layer === recommended ? ' ★' : ''}
              </td>
              <td>
                {fixed(row.auc, 3)} {row.aucInterval && <span className="ci">[{fixed(row.aucInterval[0], 3)}, {fixed(row.aucInterval[1], 3)}]</span>}
              </td>
              {heldOut > 0 && <td>{fixed(row.aucTrain, 3)}</td>}
              <td>{fixed(row.dPrime, 2)}</td>
              <td>{fixed(row.cosineReference, 3)}</td>
              {hasSweep && <td>{row.sweep ? <>{percent(row.sweep.refusalRate)} <span className="ci">[{percent(row.sweep.refusalInterval[0])}, {percent(row.sweep.refusalInterval[1])}]</span></> : '–'}</td>}
              {hasSweep && <td>{row.sweep ? row.sweep.klFirstToken.toPrecision(3) : '–'}</td>}
              <td>{row.misclassified ? `${row.misclassified.harmful.length} / ${row.misclassified.harmless.length}` : '–'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function LayerChoicePanel() {
  const result = useWorkbench((state) => state.result);
  const selected = useWorkbench((state) => state.selectedLayer);
  const sweep = useChat((state) => state.sweep.result);
  const rows = useMemo(() => (result ? layerChoiceRows(result, sweep) : []), [result, sweep]);
  const choice = useMemo(() => (result ? recommendLayer(result, sweep) : null), [result, sweep]);
  const figure = useMemo(() => (result && choice ? layerChoiceFigure(result, rows, sweep, selected, choice.layer) : null), [result, rows, sweep, selected, choice]);
  if (!result || !choice || !figure) return null;
  const counts = result.report.counts;
  const selectedRow = rows.find((row) => row.layer === selected);
  return (
    <div className="layer-choice">
      <h3 className="subheading">Layer choice</h3>
      <p className="recommendation" data-testid="layers.recommendation" data-layer={choice.layer} data-source={choice.source}>
        Recommended layer <strong>{choice.layer}</strong> ★ — {choice.rule}.{' '}
        {selected !== choice.layer && (
          <button type="button" className="link-button" onClick={() => selectLayer(choice.layer)}>
            select it
          </button>
        )}
      </p>
      <p className="hint">
        AUCs from {counts.harmful} A and {counts.harmless} B prompts,{' '}
        {counts.heldOut > 0 ? `scored on the ${counts.heldOut} held out (${String(counts.heldOutHarmful ?? '?')} A, ${String(counts.heldOutHarmless ?? '?')} B)` : 'held out 0: every AUC is on the training split, which overstates separation'}
        {sweep ? `; sweep rates from ${sweep.counts.harmful} evaluation prompts, KL from ${sweep.counts.harmless}` : ''}. Intervals are 95 %.
      </p>
      <PlotlyChart testId="plot.layers" title="Per-layer evidence on one axis" {...figure} onSelectLayer={selectLayer} height={sweep ? 560 : 360} />
      <TableDownload rows={rows} columns={LAYER_CHOICE_COLUMNS} stem="layers" testId="layers.download" />
      <LayerTable rows={rows} selected={selected} recommended={choice.layer} />
      {selectedRow && <Misclassified row={selectedRow} />}
    </div>
  );
}
