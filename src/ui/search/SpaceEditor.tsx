/** The search space, one row per parameter: a range (low–high), the allowed choices, or a pinned value. */
import { parameterChoices, setParameter } from '../../state/search-actions';
import type { SearchParameterSpec } from '../../protocol/search-api';

function NumberInput({ value, onChange, label, disabled }: { value: number; onChange: (value: number) => void; label: string; disabled: boolean }) {
  return <input type="number" className="small-number" aria-label={label} step={0.1} value={value} disabled={disabled} onChange={(event) => onChange(Number(event.currentTarget.value))} />;
}

function FloatRow({ name, spec, disabled }: { name: string; spec: SearchParameterSpec; disabled: boolean }) {
  const pinned = spec.kind === 'pinned';
  const low = spec.kind === 'float' ? spec.low : Number(spec.kind === 'pinned' ? spec.value : 0);
  const high = spec.kind === 'float' ? spec.high : low;
  return (
    <>
      <select value={pinned ? 'pinned' : 'range'} disabled={disabled} aria-label={`${name} mode`} onChange={(event) => setParameter(name, event.currentTarget.value === 'pinned' ? { kind: 'pinned', value: low } : { kind: 'float', low, high })}>
        <option value="range">range</option>
        <option value="pinned">pinned</option>
      </select>
      {pinned ? (
        <NumberInput label={`${name} value`} value={low} disabled={disabled} onChange={(value) => setParameter(name, { kind: 'pinned', value })} />
      ) : (
        <span>
          <NumberInput label={`${name} low`} value={low} disabled={disabled} onChange={(value) => setParameter(name, { kind: 'float', low: value, high })} />
          {' – '}
          <NumberInput label={`${name} high`} value={high} disabled={disabled} onChange={(value) => setParameter(name, { kind: 'float', low, high: value })} />
          {low > high && <span className="bad"> min &gt; max</span>}
        </span>
      )}
    </>
  );
}

function ChoiceRow({ name, spec, choices, disabled }: { name: string; spec: SearchParameterSpec; choices: readonly string[]; disabled: boolean }) {
  const chosen: readonly string[] = spec.kind === 'categorical' ? spec.choices : spec.kind === 'pinned' ? [String(spec.value)] : [];
  const toggle = (choice: string, on: boolean) => {
    const next = choices.filter((entry) => (entry === choice ? on : chosen.includes(entry)));
    if (next.length === 0) return; // at least one choice stays
    setParameter(name, next.length === 1 ? { kind: 'pinned', value: next[0]! } : { kind: 'categorical', choices: next });
  };
  return (
    <>
      <span className="hint">{chosen.length === 1 ? 'pinned' : 'choices'}</span>
      <span>
        {choices.map((choice) => (
          <label key={choice} className="choice">
            <input type="checkbox" checked={chosen.includes(choice)} disabled={disabled} onChange={(event) => toggle(choice, event.currentTarget.checked)} /> {choice}
          </label>
        ))}
      </span>
    </>
  );
}

export function SpaceEditor({ space, notes, disabled }: { space: Record<string, SearchParameterSpec>; notes: string[]; disabled: boolean }) {
  return (
    <details className="space-editor">
      <summary>Search space ({Object.values(space).filter((spec) => spec.kind !== 'pinned').length} free parameters)</summary>
      {notes.map((note) => (
        <p key={note} className="hint">
          {note}
        </p>
      ))}
      <div className="space-grid">
        {Object.entries(space).map(([name, spec]) => {
          const choices = parameterChoices(name);
          return (
            <div key={name} className="space-row">
              <code>{name}</code>
              {choices ? <ChoiceRow name={name} spec={spec} choices={choices} disabled={disabled} /> : <FloatRow name={name} spec={spec} disabled={disabled} />}
            </div>
          );
        })}
      </div>
    </details>
  );
}
