/**
 * The workbench shell: the regions of the workflow in the order a user walks them (docs/definitions.md "What a user
 * does"): model and prompts on the left, the analysis beside them, then chat and export.
 */
import { lazy, Suspense, useEffect, type ComponentType } from 'react';
import { loadDefaultPrompts } from '../state/default-prompts';
import { dismissError, loadDemoModel, probeBackend } from '../state/actions';
import { followDirectionSources } from '../state/ablation';
import { indexedDbSessionStorage } from '../platform/session-storage';
import { restoreSession, setSessionStorage, startSavingSession } from '../state/session-persist';
import { useWorkbench, workbenchStore } from '../state/store';
import type { BackendChoice, BackendProbe } from '../protocol/analysis-api';
import { AnalysisPanel } from './AnalysisPanel';
import { ModelPanel } from './ModelPanel';
import { PromptsPanel } from './PromptsPanel';
import { CurrentRecipePanel } from './recipe/CurrentRecipePanel';
import { SearchPanel } from './search/SearchPanel';
import { SessionBar } from './session/SessionBar';

// The export panel is helper-owned (src/ui/export/); found by glob so the shell builds before and after it lands.
const exportModules = import.meta.glob<{ ExportPanel: ComponentType }>('./export/ExportPanel.tsx');
const exportLoader = exportModules['./export/ExportPanel.tsx'];
const ExportPanel = exportLoader ? lazy(() => exportLoader().then((module) => ({ default: module.ExportPanel }))) : null;
// Chat and evaluation live in src/ui/chat/ and src/ui/evaluation/, found the same way.
const chatLoader = import.meta.glob<{ ChatPanel: ComponentType }>('./chat/ChatPanel.tsx')['./chat/ChatPanel.tsx'];
const ChatPanel = chatLoader ? lazy(() => chatLoader().then((module) => ({ default: module.ChatPanel }))) : null;
const evaluationLoader = import.meta.glob<{ EvaluationPanel: ComponentType }>('./evaluation/EvaluationPanel.tsx')['./evaluation/EvaluationPanel.tsx'];
const EvaluationPanel = evaluationLoader ? lazy(() => evaluationLoader().then((module) => ({ default: module.EvaluationPanel }))) : null;

/** The named error classes (src/protocol/errors.ts) in words. */
const ERROR_LABELS: Record<string, string> = {
  InvalidFileError: 'Invalid file',
  InvalidInputError: 'Invalid input',
  UnsupportedModelError: 'Unsupported model',
  BackendError: 'Compute backend failed',
  WorkbenchError: 'Error',
};

function ErrorBanner() {
  const error = useWorkbench((state) => state.error);
  if (!error) return null;
  return (
    <div className="error-banner" role="alert" data-testid="error" data-error-name={error.name}>
      <strong>{ERROR_LABELS[error.name] ?? 'Error'}:</strong> {error.message}
      <button type="button" className="dismiss" aria-label="Dismiss error" onClick={dismissError}>
        ×
      </button>
    </div>
  );
}

function Notes() {
  const notes = useWorkbench((state) => state.notes);
  if (notes.length === 0) return null;
  return (
    <ul className="notes" aria-label="notes">
      {notes.map((note, index) => (
        <li key={index}>{note}</li>
      ))}
    </ul>
  );
}

function backendHint(probe: BackendProbe | null): string {
  if (probe === null) return 'probing WebGPU…';
  if (!probe.webgpu) return `no WebGPU (${probe.detail}); auto uses wasm`;
  if (probe.fallback) return 'WebGPU is a software fallback here; auto uses wasm (faster)';
  return `WebGPU: ${probe.detail}; auto uses WebGPU`;
}

function BackendSelect() {
  const choice = useWorkbench((state) => state.backendChoice);
  const probe = useWorkbench((state) => state.webGpu);
  const used = useWorkbench((state) => state.resultBackend);
  return (
    <div className="backend">
      <label>
        Backend{' '}
        <select
          data-testid="backend.select"
          value={choice}
          onChange={(event) => workbenchStore.setState({ backendChoice: event.target.value as BackendChoice })}
        >
          <option value="auto">auto{probe ? ` (${probe.auto})` : ''}</option>
          <option value="webgpu" disabled={probe !== null && !probe.webgpu}>
            webgpu
          </option>
          <option value="wasm">wasm</option>
        </select>
      </label>
      <span className="hint" title={probe?.detail}>
        {backendHint(probe)}
        {used && ` · last run on ${used}`}
      </span>
    </div>
  );
}

export function App() {
  useEffect(() => {
    void probeBackend();
    // A new capture makes the analysis' rows the current ablation's direction again.
    const stopFollowing = followDirectionSources();
    let stop: (() => void) | null = null;
    // The saved session first: defaults only fill what it left empty, and saving starts once it is in.
    setSessionStorage(indexedDbSessionStorage());
    void restoreSession().then(() => {
      stop = startSavingSession();
      void loadDefaultPrompts();
      // The demo is the default model: a researcher sees a working page with no set-up.
      if (workbenchStore.getState().model.phase === 'none') void loadDemoModel();
    });
    return () => {
      stopFollowing();
      stop?.();
    };
  }, []);

  return (
    <div className="app">
      <header className="app-header">
        <div>
          <h1>Abliteration Workbench</h1>
          <p className="tagline">Find the refusal direction in a model's residual stream, inspect it per layer, and remove it from the weights — locally, in your browser.</p>
        </div>
        <BackendSelect />
      </header>
      <SessionBar />
      <ErrorBanner />
      <Notes />
      <main className="layout">
        <div className="column-inputs">
          <ModelPanel />
          <PromptsPanel />
        </div>
        <div className="column-results">
          <AnalysisPanel />
          <section className="region region-wide" aria-labelledby="region-recipe">
            <h2 id="region-recipe">Current recipe: what chat, evaluation and export apply</h2>
            <CurrentRecipePanel />
          </section>
          <section className="region region-wide" aria-labelledby="region-chat">
            <h2 id="region-chat">4 · Chat and evaluation: base | ablated</h2>
            {ChatPanel && EvaluationPanel ? (
              <Suspense fallback={<p className="hint">Loading the chat and evaluation panels…</p>}>
                <ChatPanel />
                <EvaluationPanel />
              </Suspense>
            ) : (
              <p className="hint">Side-by-side chat and the refusal-rate / KL evaluation with the selected layer's direction will appear here.</p>
            )}
          </section>
          <section className="region region-wide" aria-labelledby="region-search">
            <h2 id="region-search">Recipe search: refusals vs KL</h2>
            <SearchPanel />
          </section>
          <section className="region" aria-labelledby="region-export">
            <h2 id="region-export">5 · Export</h2>
            {ExportPanel ? (
              <Suspense fallback={<p className="hint">Loading the export panel…</p>}>
                <ExportPanel />
              </Suspense>
            ) : (
              <p className="hint">Orthogonalized safetensors shards, streamed; every other byte unchanged.</p>
            )}
          </section>
        </div>
      </main>
    </div>
  );
}
