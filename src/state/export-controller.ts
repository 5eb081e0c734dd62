/**
 * The export step's state and actions: the form (direction source, scale, tensor groups, block range, compute
 * backend, destination), the run (progress, cancel, result) and the status line. The panel
 * (src/ui/export/ExportPanel.tsx) only renders this state and calls these actions; the browser-only pieces
 * (the folder picker, starting downloads) come in as `ExportBrowser` so this module runs without a DOM.
 */
import { useSyncExternalStore } from 'react';
import { CancelledError, InvalidInputError } from '../base/errors';
import type { Progress } from '../base/progress';
import { ABLATION_COMPONENTS, type AblationComponent } from '../core/recipe';
import { exportClient } from '../clients/export-client';
import type { ExportApi, ExportBackendChoice, ExportDestination, ExportDirection, ExportResult } from '../protocol/export-api';
import { resultsFromEvaluation, type ModelCardResults } from '../formats/model-card';
import { reportError } from './actions';
import { chatStore } from './chat-store';
import { Store, workbenchStore, type WorkbenchState } from './store';

export type ExportPhase = 'idle' | 'running' | 'done' | 'cancelled' | 'failed';
export type DirectionSource = 'analysis' | 'file';

export interface ExportState {
  /** The source the user chose; the effective one falls back to whichever exists (effectiveSource). */
  source: DirectionSource;
  scale: string; // as typed; parsed when the export starts
  components: Record<AblationComponent, boolean>;
  blockRange: string; // '' for all blocks, or 'A-B'
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
  source: 'analysis',
  scale: '1',
  components: { embed: true, attn: true, mlp: true },
  blockRange: '',
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

export function setExportOptions(update: Partial<Pick<ExportState, 'source' | 'scale' | 'blockRange' | 'backend' | 'onnx' | 'destination'>>): void {
  exportStore.setState(update);
}

export function setExportComponent(component: AblationComponent, on: boolean): void {
  exportStore.setState((state) => ({ components: { ...state.components, [component]: on } }));
}

/** The destination an export goes to: the chosen one, else the browser's default. */
export function destinationKind(state: Pick<ExportState, 'destination'>, canPickDirectory: boolean): ExportDestination['kind'] {
  return state.destination ?? (canPickDirectory ? 'folder' : 'downloads');
}

/** Which direction an export would use now: the chosen source if it exists, else the other, else none. */
export function effectiveSource(source: DirectionSource, workbench: Pick<WorkbenchState, 'result' | 'importedDirection'>): DirectionSource | null {
  const hasAnalysis = workbench.result !== null;
  const hasFile = workbench.importedDirection !== null;
  if (source === 'file') return hasFile ? 'file' : hasAnalysis ? 'analysis' : null;
  return hasAnalysis ? 'analysis' : hasFile ? 'file' : null;
}

/** '' → all blocks; 'A-B' or 'A' → inclusive range, as the CLI's --layers. */
export function parseBlockRange(raw: string): [number, number] | null {
  const text = raw.trim();
  if (text === '') return null;
  const match = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(text);
  const range: [number, number] | null = match ? [Number(match[1]), Number(match[2] ?? match[1])] : null;
  if (!range || range[0] > range[1]) throw new InvalidInputError(`Blocks "${raw}" is not a range A-B with A ≤ B (e.g. 4-20).`);
  return range;
}

function parseScale(raw: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw new InvalidInputError(`Scale ${JSON.stringify(raw)} is not a number.`);
  return value;
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

export function exportStatusText(state: ExportState, modelReady: boolean, source: DirectionSource | null): string {
  const { phase, result, detail } = state;
  if (phase === 'done' && result) {
    const totalBytes = result.files.reduce((sum, file) => sum + file.bytes, 0);
    return `done: ${result.outputName} — ${result.files.length + 1} files, ${(totalBytes / 1e6).toFixed(1)} MB, ${result.editedTensors} tensors edited${result.onnx === 'ablated' ? ', ONNX ablated' : ''}, verified (${result.verification.filesChecked} SHA-256, ${result.verification.headersChecked} headers), ${result.backend}, ${result.seconds.toFixed(1)} s`;
  }
  if (phase === 'idle') {
    if (!modelReady) return 'Load a model folder with safetensors (or ONNX, with the ONNX option) to export.';
    return source ? 'Ready to export.' : 'Run the analysis or import a direction file.';
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
  const source = effectiveSource(state.source, workbench);
  if (!folder || source === null || state.phase === 'running') return;
  let started = false;
  try {
    const kind = destinationKind(state, browser.canPickDirectory);
    const destination: ExportDestination = kind === 'folder' ? { kind, parent: await browser.pickDirectory() } : { kind };
    const scale = parseScale(state.scale);
    const layers = parseBlockRange(state.blockRange);
    let direction: ExportDirection;
    if (source === 'analysis' && workbench.result) {
      if (workbench.selectedLayer === null) throw new InvalidInputError('Select a layer in the analysis first.');
      direction = { kind: 'analysis', directions: workbench.result.directions, layer: workbench.selectedLayer };
    } else if (workbench.importedDirection) {
      direction = { kind: 'file', file: workbench.importedDirection.file, bytes: workbench.importedDirection.bytes, layer: workbench.selectedLayer };
    } else {
      return;
    }
    const targets = ABLATION_COMPONENTS.filter((component) => state.components[component]);
    releaseDownloads();
    started = true;
    running = new AbortController();
    exportStore.setState({ phase: 'running', fraction: 0, result: null, detail: 'Planning…' });
    workbenchStore.setState({ error: null });
    const finished = await api.exportModel(
      { folder, direction, scale, targets, layers, destination, backend: state.backend, onnx: state.onnx, results: evaluationResults() },
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

/** Keeps the direction source in step with the workbench: an import selects the file, a new analysis the analysis. */
export function followDirectionSources(): () => void {
  let imported = workbenchStore.getState().importedDirection;
  let result = workbenchStore.getState().result;
  exportStore.setState({ source: result || !imported ? 'analysis' : 'file' });
  return workbenchStore.subscribe(() => {
    const next = workbenchStore.getState();
    if (next.importedDirection !== imported) {
      imported = next.importedDirection;
      exportStore.setState({ source: imported ? 'file' : 'analysis' });
    }
    if (next.result !== result) {
      result = next.result;
      if (result) exportStore.setState({ source: 'analysis' });
    }
  });
}
