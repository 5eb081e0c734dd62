/**
 * The session line under the header: where the current results came from, the run card download
 * (`session.download`) and load (`session.file-input`), the command that reproduces the analysis, and a way to
 * start over. Sessions persist across reloads on their own (IndexedDB).
 */
import { useState } from 'react';
import { reportError } from '../../state/actions';
import { zipFiles, unzipFiles } from '../../platform/zip-archive';
import { reproduceCommand, runCardFiles, snapshotFromRunCard } from '../../state/run-card';
import { applySnapshot, takeSnapshot } from '../../state/session';
import { clearSavedSession } from '../../state/session-persist';
import { useWorkbench } from '../../state/store';
import { downloadBytes } from '../../state/table-export';
import { renderPlotSvgs } from '../plots/plot-svgs';
import { HiddenFileInput } from '../common/HiddenFileInput';

async function downloadRunCard(setStatus: (text: string) => void): Promise<void> {
  try {
    setStatus('rendering plots…');
    const snapshot = takeSnapshot();
    const plots = await renderPlotSvgs(snapshot);
    setStatus('zipping…');
    const zip = zipFiles(runCardFiles({ snapshot, plots }), new Date(snapshot.savedAt));
    const stamp = snapshot.savedAt.slice(0, 19).replace(/[:T]/g, '-');
    downloadBytes(`run-card-${snapshot.model?.name ?? 'model'}-${stamp}.zip`, zip, 'application/zip');
    setStatus(`run card saved (${(zip.byteLength / 1024).toFixed(0)} KiB)`);
  } catch (error) {
    setStatus('');
    reportError(error);
  }
}

async function loadRunCard(file: File, setStatus: (text: string) => void): Promise<void> {
  try {
    const snapshot = snapshotFromRunCard(file.name, unzipFiles(file.name, new Uint8Array(await file.arrayBuffer())));
    applySnapshot(snapshot, `run card ${file.name}`);
    setStatus(`loaded ${file.name}`);
  } catch (error) {
    setStatus('');
    reportError(error);
  }
}

export function SessionBar() {
  const result = useWorkbench((state) => state.result);
  const origin = useWorkbench((state) => state.resultOrigin);
  const [status, setStatus] = useState('');
  const command = result ? reproduceCommand(takeSnapshot()) : null;
  return (
    <div className="session-bar" aria-label="session">
      <span className="session-state" data-testid="session.status">
        {origin ? `Results restored from ${origin}.` : result ? 'Session saved in this browser as you work.' : 'Your session is saved in this browser as you work.'}
      </span>
      <button type="button" className="download" data-testid="session.download" disabled={!result} onClick={() => void downloadRunCard(setStatus)} title="report.json, directions, recipe, prompts with hashes, eval and sweep, plots as SVG, the reproducing command">
        Download run card
      </button>
      <label className="button" title="Load a run card (.zip) back: plots and tables return without the model">
        Load run card…
        <HiddenFileInput accept=".zip" testId="session.file-input" onFile={(file) => void loadRunCard(file, setStatus)} />
      </label>
      <button type="button" className="link-button" data-testid="session.forget" onClick={() => void clearSavedSession().then(() => location.reload())}>
        start over
      </button>
      {status && <span className="hint" data-testid="session.message">{status}</span>}
      {command && (
        <details className="session-command">
          <summary>reproduce with the CLI</summary>
          <code data-testid="session.command">{command}</code>
        </details>
      )}
    </div>
  );
}
