/**
 * Step 2: the prompt sets. A (refusal) and B (compliance) side by side, the optional reference contrast C/D
 * (or a reference direction file) below. One user prompt per line; one optional system prompt per set.
 */
import { importPromptFile, importReferenceDirection, setPromptSet } from '../state/actions';
import { applyPromptPreset } from '../state/default-prompts';
import { useMemo } from 'react';
import { parsePromptSet } from '../state/prompt-sets';
import { useWorkbench, type PromptSetName } from '../state/store';
import { AgentPromptsEditor } from './agent/AgentPromptsEditor';
import { PromptProblems, PromptRows } from './prompts/PromptRows';
import { HiddenFileInput } from './common/HiddenFileInput';

const PROMPT_SETS: { name: PromptSetName; testId: string; title: string; hint: string }[] = [
  { name: 'harmful', testId: 'prompts.harmful', title: 'A · refusal', hint: 'prompts the model refuses' },
  { name: 'harmless', testId: 'prompts.harmless', title: 'B · compliance', hint: 'prompts it answers' },
  { name: 'referenceA', testId: 'prompts.reference-a', title: 'C · reference A', hint: 'optional second contrast' },
  { name: 'referenceB', testId: 'prompts.reference-b', title: 'D · reference B', hint: 'optional second contrast' },
];

function PromptSetEditor({ name, testId, title, hint, rows }: (typeof PROMPT_SETS)[number] & { rows: number }) {
  const set = useWorkbench((state) => state.prompts[name]);
  // Parsed as you type: a broken JSON row is flagged with its line and not counted as a prompt.
  const parsed = useMemo(() => parsePromptSet(set, title), [set, title]);
  const count = parsed.rows.length;
  return (
    <div className="prompt-set">
      <div className="prompt-set-header">
        <label htmlFor={`prompt-${name}`} className="prompt-title">
          {title}
        </label>
        <span className="hint" title={hint} data-testid={`${testId}-count`}>
          {count} prompt{count === 1 ? '' : 's'}
          {parsed.problems.length > 0 && <strong className="bad"> · {parsed.problems.length} line{parsed.problems.length === 1 ? '' : 's'} with errors</strong>}
        </span>
        <label className="link-button" title="Import a .txt (one prompt per line) or .jsonl file">
          import…
          <HiddenFileInput accept=".txt,.jsonl" testId={`${testId}-file`} onFile={(file) => void importPromptFile(name, file)} />
        </label>
      </div>
      <input
        type="text"
        className="system-input"
        placeholder="system prompt (optional, shared by every prompt of this set)"
        aria-label={`${title} system prompt`}
        data-testid={`${testId}-system`}
        value={set.system}
        onChange={(event) => setPromptSet(name, { system: event.target.value, source: 'edited' })}
      />
      <textarea
        id={`prompt-${name}`}
        data-testid={testId}
        rows={rows}
        spellCheck={false}
        value={set.text}
        placeholder="one prompt per line, or one JSON row per line"
        aria-invalid={parsed.problems.length > 0}
        onChange={(event) => setPromptSet(name, { text: event.target.value, source: 'edited' })}
      />
      <PromptProblems problems={parsed.problems} testId={testId} />
      {set.source && <span className="source hint">from {set.source}</span>}
      <PromptRows rows={parsed.rows} testId={testId} />
    </div>
  );
}

export function PromptsPanel() {
  const referenceDirection = useWorkbench((state) => state.referenceDirection);
  const defaultsNote = useWorkbench((state) => state.promptDefaultsNote);
  const presets = useWorkbench((state) => state.promptPresets);
  const preset = useWorkbench((state) => state.promptPreset);
  return (
    <section className="region" aria-labelledby="region-prompts">
      <div className="region-title-row">
        <h2 id="region-prompts">2 · Prompt sets</h2>
        {presets.length > 0 && (
          <label className="preset">
            preset{' '}
            <select data-testid="prompts.preset" value={preset} onChange={(event) => void applyPromptPreset(event.target.value)}>
              {preset === '' && <option value="">(edited)</option>}
              {presets.map((option) => (
                <option key={option.id} value={option.id}>
                  {option.label}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      {defaultsNote && <p className="hint">{defaultsNote}</p>}
      <div className="prompt-grid">
        {PROMPT_SETS.slice(0, 2).map((set) => (
          <PromptSetEditor key={set.name} {...set} rows={8} />
        ))}
      </div>
      <h3 className="subheading">Reference direction (for the cosine plot)</h3>
      <div className="prompt-grid">
        {PROMPT_SETS.slice(2).map((set) => (
          <PromptSetEditor key={set.name} {...set} rows={4} />
        ))}
      </div>
      <div className="reference-file">
        <label className="link-button">
          {referenceDirection ? 'replace direction file…' : 'or use a direction file (.safetensors, .npy, .json)…'}
          <input
            type="file"
            accept=".safetensors,.npy,.json"
            className="visually-hidden"
            data-testid="reference.file-input"
            onChange={(event) => {
              void importReferenceDirection(event.currentTarget.files?.[0] ?? null);
              event.currentTarget.value = '';
            }}
          />
        </label>
        {referenceDirection && (
          <span className="hint">
            reference: <strong>{referenceDirection.file}</strong> (used instead of C/D){' '}
            <button type="button" className="link-button" onClick={() => void importReferenceDirection(null)}>
              remove
            </button>
          </span>
        )}
      </div>
      <AgentPromptsEditor />
    </section>
  );
}
