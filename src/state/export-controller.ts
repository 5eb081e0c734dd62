/**
 * The export step's state and actions: the form (compute backend, destination, ONNX), the run (progress, cancel,
 * result) and the status line. What is exported is the current ablation (src/state/ablation.ts), the value chat
 * and evaluation use too. The panel
 * (src/ui/export/ExportPanel.tsx) only renders this state and calls these actions; the browser-only pieces
 * (the folder picker, starting downloads) come in as `ExportBrowser` so this module runs without a DOM.
 */
import { useSyncExternalStore } from 'react';
import { CancelledError, InvalidInputError } from '../base/errors';
import type { Progress } from '../base/progress';
import { exportClient } from '../clients/export-client';
import type { ExportApi, ExportBackendChoice, ExportDestination, ExportResult } from '../protocol/export-api';
import { resultsFromEvaluation, type ModelCardResults } from '../formats/model-card';
import { reportError } from './actions';
import { currentAblation } from './ablation';
import { chatStore } from './chat-store';
import { Store, workbenchStore } from './store';

export type ExportPhase = 'idle' | 'running' | 'done' | 'cancelled' | 'failed';

export interface ExportState {
  backend: ExportBackendChoice;
  /** Also write the abliterated ONNX graphs (the CLI's --onnx). */
  onnx: boolean;
  /** null until the user picks one: a folder where the browser can write one, else downloads (destinationKind). */
  destination: ExportDestination['kind'] | null;
  phase: ExportPhase;
  fraction: number; // 0..1 over writing (90 %) and verifying (10 %)
  detail: string;
  result: ExportResult | null;
}

export const initialExportState: ExportState = {
  backend: 'auto',
  onnx: false,
  destination: null,
  phase: 'idle',
  fraction: 0,
  detail: '',
  result: null,
};

export const exportStore = new Store<ExportState>(initialExportState);

export function useExport<Slice>(select: (state: ExportState) => Slice): Slice {
  return useSyncExternalStore(exportStore.subscribe, () => select(exportStore.getState()));
}

/** What only a browser page can do; the panel passes its implementation, tests pass their own. */
export interface ExportBrowser {
  /** Whether the browser can write into a folder the user picks (File System Access). */
  canPickDirectory: boolean;
  /** The folder to write into; must be asked for before anything else awaits (user activation). */
  pickDirectory(): Promise<FileSystemDirectoryHandle>;
  /** Starts the downloads of finished files; returns a function that releases them. */
  deliver(files: ExportResult['deliver']): () => void;
}

let running: AbortController | null = null;
let releaseDownloads: () => void = () => undefined;

export function setExportOptions(update: Partial<Pick<ExportState, 'backend' | 'onnx' | 'destination'>>): void {
  exportStore.setState(update);
}

/** The destination an export goes to: the chosen one, else the browser's default. */
export function destinationKind(state: Pick<ExportState, 'destination'>, canPickDirectory: boolean): ExportDestination['kind'] {
  return state.destination ?? (canPickDirectory ? 'folder' : 'downloads');
}

/**
 * One progress event applied to the bar: writing fills 0–90 %, verifying (which runs inside the write's commit)
 * 90–100 %. The bar never goes back — the write's own final 100 % arrives after the verification, mapping to 90 %
 * — and events that arrive once the export has ended (they travel from the worker on their own message port, so
 * they may overtake or trail the result) leave the finished state alone: "done" shows 100 %.
 */
export function progressUpdate(current: ExportState, event: Progress): Partial<ExportState> {
  if (current.phase !== 'running') return {};
  const mapped = event.status === 'progress' ? (event.task === 'verify' ? 0.9 + 0.1 * event.fraction : 0.9 * event.fraction) : current.fraction;
  return { fraction: Math.max(current.fraction, mapped), detail: describeProgress(event, current.detail) };
}

/** The status line under the progress bar. */
export function describeProgress(event: Progress, current: string): string {
  if (event.status === 'start') return event.task === 'verify' ? 'Verifying (headers, SHA-256 of every file)…' : 'Writing…';
  if (event.status === 'progress') return `${event.task === 'verify' ? 'Verifying' : 'Writing'} ${event.detail ?? ''}`.trim();
  if (event.status === 'message') return event.text;
  return current;
}

/** `why`: why there is no current ablation ('' when there is one). */
export function exportStatusText(state: ExportState, modelReady: boolean, why: string): string {
  const { phase, result, detail } = state;
  if (phase === 'done' && result) {
    const totalBytes = result.files.reduce((sum, file) => sum + file.bytes, 0);
    return `done: ${result.outputName} — ${result.files.length + 1} files, ${(totalBytes / 1e6).toFixed(1)} MB, ${result.editedTensors} tensors edited${result.onnx === 'ablated' ? ', ONNX ablated' : ''}, verified (${result.verification.filesChecked} SHA-256, ${result.verification.headersChecked} headers), ${result.backend}, ${result.seconds.toFixed(1)} s`;
  }
  if (phase === 'idle') {
    if (!modelReady) return 'Load a model folder with safetensors (or ONNX, with the ONNX option) to export.';
    return why === '' ? 'Ready to export.' : why;
  }
  if (phase === 'running') return `${detail} · ${Math.round(state.fraction * 100)}%`;
  return `${phase}: ${detail}`;
}

/** The last evaluation's figures for the model card, saying which ablation they measured. */
function evaluationResults(): ModelCardResults | null {
  const evaluation = chatStore.getState().evaluation.result;
  if (!evaluation) return null;
  return resultsFromEvaluation(evaluation, `the workbench's evaluation of ${evaluation.ablatedLabel} (hook-ablated, greedy, up to ${evaluation.maxNewTokens} new tokens)`);
}

/**
 * Runs one export of the open model folder with the form's settings. `api` is the export worker's client unless
 * a test passes the in-thread service.
 */
export async function runExport(browser: ExportBrowser, api: ExportApi = exportClient()): Promise<void> {
  const workbench = workbenchStore.getState();
  const state = exportStore.getState();
  const folder = workbench.modelFolder;
  if (!folder || state.phase === 'running') return;
  let started = false;
  try {
    const { current, why } = currentAblation();
    if (!current) throw new InvalidInputError(why);
    const kind = destinationKind(state, browser.canPickDirectory);
    const destination: ExportDestination = kind === 'folder' ? { kind, parent: await browser.pickDirectory() } : { kind };
    releaseDownloads();
    started = true;
    running = new AbortController();
    exportStore.setState({ phase: 'running', fraction: 0, result: null, detail: 'Planning…' });
    workbenchStore.setState({ error: null });
    const finished = await api.exportModel(
      { folder, ablation: current.spec, destination, backend: state.backend, onnx: state.onnx, results: evaluationResults() },
      {
        signal: running.signal,
        onProgress: (event) => exportStore.setState((current) => progressUpdate(current, event)),
      },
    );
    releaseDownloads = browser.deliver(finished.deliver);
    exportStore.setState({ result: finished, fraction: 1, phase: 'done' });
  } catch (error) {
    if (!started && (error as DOMException)?.name === 'AbortError') return; // the folder picker was dismissed
    if (error instanceof CancelledError || (error as Error)?.name === 'CancelledError') {
      exportStore.setState({ phase: 'cancelled', detail: 'Cancelled; the partial output was removed.' });
      return;
    }
    exportStore.setState({ phase: 'failed', detail: (error as Error)?.message ?? String(error) });
    reportError(error);
  } finally {
    running = null;
  }
}

export function cancelExport(): void {
  running?.abort();
}

/** Frees the object URLs of the last downloads (the panel calls this when it unmounts). */
export function releaseExportDownloads(): void {
  releaseDownloads();
}
