/**
 * A prompt set read back as the engine will see it: the lines that are not prompts (with the parser's reason,
 * as you type), and on demand one row per prompt — line, system, user, other turns — where clicking a row shows
 * that prompt through the open model's chat template, as the capture tokenizes it, with the captured token
 * marked. The template comes from the analysis worker (the tokenizer lives there).
 */
import { useEffect, useState } from 'react';
import { renderPromptTemplate } from '../../state/actions';
import type { PromptProblem, PromptRow } from '../../state/prompt-sets';
import { useWorkbench } from '../../state/store';
import type { RenderedTemplate } from '../../protocol/analysis-api';

/** Rows listed in the table; a longer set says how many more there are (the editor holds them all). */
const MAX_ROWS_SHOWN = 200;

export function PromptProblems({ problems, testId }: { problems: PromptProblem[]; testId: string }) {
  if (problems.length === 0) return null;
  return (
    <ul className="prompt-problems" data-testid={`${testId}-problems`} role="alert">
      {problems.slice(0, 5).map((problem) => (
        <li key={problem.line} data-line={problem.line}>
          {problem.error.message}
        </li>
      ))}
      {problems.length > 5 && <li>… and {problems.length - 5} more line(s) that are not prompts</li>}
    </ul>
  );
}

type TemplateView = { phase: 'idle' } | { phase: 'loading' } | { phase: 'done'; rendered: RenderedTemplate } | { phase: 'failed'; message: string };

function useTemplate(row: PromptRow | null, enabled: boolean): TemplateView {
  const modelReady = useWorkbench((state) => state.model.phase === 'ready');
  const fingerprint = useWorkbench((state) => state.model.inspection?.fingerprint ?? null);
  const position = useWorkbench((state) => state.position);
  const [view, setView] = useState<TemplateView>({ phase: 'idle' });
  useEffect(() => {
    if (!enabled || !row || !modelReady) {
      setView({ phase: 'idle' });
      return;
    }
    let current = true;
    setView({ phase: 'loading' });
    renderPromptTemplate(row.messages, position).then(
      (rendered) => current && setView({ phase: 'done', rendered }),
      (error: unknown) => current && setView({ phase: 'failed', message: error instanceof Error ? error.message : String(error) }),
    );
    return () => {
      current = false;
    };
  }, [row, enabled, modelReady, fingerprint, position]);
  return view;
}

function TemplatePane({ view, testId, modelReady }: { view: TemplateView; testId: string; modelReady: boolean }) {
  if (view.phase === 'idle') return <p className="hint">{modelReady ? 'Click a row to see it through the chat template.' : 'Load a model to see a row through its chat template.'}</p>;
  if (view.phase === 'loading') return <p className="hint">applying the chat template…</p>;
  if (view.phase === 'failed') return <p className="hint prompt-template-error" data-testid={`${testId}-template-error`}>{view.message}</p>;
  const { rendered } = view;
  return (
    <div className="prompt-template">
      <pre data-testid={`${testId}-template`}>{rendered.text}</pre>
      <p className="hint" data-testid={`${testId}-template-tokens`}>
        {rendered.tokens.length} tokens; the capture reads token {rendered.capturedIndex}: <code>{JSON.stringify(rendered.tokens[rendered.capturedIndex] ?? '')}</code>
      </p>
    </div>
  );
}

function lastUser(row: PromptRow): string {
  for (let index = row.messages.length - 1; index >= 0; index--) if (row.messages[index]!.role === 'user') return row.messages[index]!.content;
  return '';
}

export function PromptRows({ rows, testId }: { rows: PromptRow[]; testId: string }) {
  const [open, setOpen] = useState(false);
  const [selected, setSelected] = useState<number | null>(null);
  const modelReady = useWorkbench((state) => state.model.phase === 'ready');
  // A selected line that was edited away (or changed) falls back to nothing selected.
  const row = selected === null ? null : (rows.find((candidate) => candidate.line === selected) ?? null);
  const view = useTemplate(row, open);
  return (
    <details className="prompt-rows" onToggle={(event) => setOpen(event.currentTarget.open)}>
      <summary data-testid={`${testId}-rows-toggle`}>rows and chat template</summary>
      {open && (
        <>
          <div className="prompt-rows-scroll">
            <table data-testid={`${testId}-rows`}>
              <thead>
                <tr>
                  <th>line</th>
                  <th>system</th>
                  <th>user</th>
                  <th>other turns</th>
                </tr>
              </thead>
              <tbody>
                {rows.slice(0, MAX_ROWS_SHOWN).map((entry) => {
                  const system = entry.messages[0]?.role === 'system' ? entry.messages[0].content : '';
                  const others = entry.messages.slice(system ? 1 : 0, -1);
                  return (
                    <tr key={entry.line} data-testid={`${testId}-row`} data-line={entry.line} aria-selected={entry.line === selected} className={entry.line === selected ? 'selected' : undefined} onClick={() => setSelected(entry.line)}>
                      <td>{entry.line}</td>
                      <td title={system}>{system || '—'}</td>
                      <td title={lastUser(entry)}>{lastUser(entry)}</td>
                      <td>{others.length > 0 ? others.map((message) => message.role).join(', ') : ''}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
            {rows.length > MAX_ROWS_SHOWN && <p className="hint">… {rows.length - MAX_ROWS_SHOWN} more rows (all of them are used).</p>}
          </div>
          <TemplatePane view={view} testId={testId} modelReady={modelReady} />
        </>
      )}
    </details>
  );
}
