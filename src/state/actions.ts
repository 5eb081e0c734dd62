/**
 * What the UI can ask for. Every action updates the store; long ones go to the analysis worker through the
 * client and report progress. Failures land in the one error banner as named errors; a cancel is not a failure.
 */
import demoManifest from 'virtual:demo-model-manifest';
import { analysisClient } from '../clients/analysis-client';
import { CancelledError, InvalidInputError, WorkbenchError } from '../base/errors';
import type { Progress } from '../base/progress';
import { importPromptText, promptSetToInputs } from './prompt-sets';
import { workbenchStore as store, type PromptSetName, type PromptSetState } from './store';
import { type FolderDescriptor, type PromptMessage, type RenderedTemplate } from '../protocol/analysis-api';

export const DEMO_MODEL_BASE_URL = `${import.meta.env.BASE_URL}models/demo/`;

export function reportError(error: unknown): void {
  if (error instanceof CancelledError) return;
  const named = error instanceof Error ? error : new WorkbenchError(String(error));
  store.setState({ error: { name: named.name, message: named.message } });
}

export function dismissError(): void {
  store.setState({ error: null });
}

export async function probeBackend(): Promise<void> {
  try {
    const probe = await analysisClient().probeBackend();
    store.setState({ webGpu: probe });
  } catch (error) {
    reportError(error);
  }
}

let modelLoadGeneration = 0;

export async function loadModel(descriptor: FolderDescriptor, label: string): Promise<void> {
  const generation = ++modelLoadGeneration;
  // The working model stays usable until the new one is open: a failed load puts it back (the worker keeps it too).
  const previous = store.getState().model.phase === 'ready' ? store.getState().model : null;
  store.setState({ model: { phase: 'loading', label, inspection: null, message: `Loading ${label}…` }, error: null });
  try {
    const inspection = await analysisClient().openModel(descriptor, {
      onProgress: (event) => {
        // Progress travels on its own channel and may arrive after the result: only a loading model takes it.
        if (generation === modelLoadGeneration && event.status === 'progress' && event.detail && store.getState().model.phase === 'loading') {
          store.setState((state) => ({ model: { ...state.model, message: event.detail! } }));
        }
      },
    });
    if (generation !== modelLoadGeneration) return;
    // A result restored from a session or run card stays until the next capture; one captured on another model goes.
    const kept = store.getState();
    const keepResult = kept.resultOrigin !== null && kept.result?.report.hiddenSize === inspection.hiddenSize && kept.result.report.numLayers === inspection.numLayers;
    store.setState({
      model: { phase: 'ready', label, inspection, message: `${label} ready` },
      modelFolder: descriptor,
      ...(keepResult ? {} : { result: null, resultPrompts: null, resultOrigin: null, selectedLayer: null, capture: { phase: 'idle', fraction: 0, detail: '' } }),
    });
  } catch (error) {
    if (generation !== modelLoadGeneration) return;
    store.setState({
      model: previous
        ? { ...previous, message: `${label} could not be loaded; ${previous.label} is still loaded.` }
        : { phase: 'failed', label, inspection: null, message: `${label} could not be loaded.` },
    });
    reportError(error);
  }
}

export function loadDemoModel(): Promise<void> {
  if (demoManifest.length === 0) {
    reportError(new InvalidInputError('The demo model is missing from this build (public/models/demo is empty).'));
    return Promise.resolve();
  }
  return loadModel({ kind: 'url', name: 'demo', baseUrl: DEMO_MODEL_BASE_URL, files: demoManifest }, 'demo model');
}

export function setPromptSet(name: PromptSetName, update: Partial<PromptSetState>): void {
  store.setState((state) => ({
    prompts: { ...state.prompts, [name]: { ...state.prompts[name], ...update } },
    // A and B no longer match the preset once either is edited or replaced.
    promptPreset: name === 'harmful' || name === 'harmless' ? '' : state.promptPreset,
  }));
}

export async function importPromptFile(name: PromptSetName, file: File): Promise<void> {
  try {
    setPromptSet(name, importPromptText(file.name, await file.text()));
  } catch (error) {
    reportError(error);
  }
}

export async function importReferenceDirection(file: File | null): Promise<void> {
  if (!file) {
    store.setState({ referenceDirection: null });
    return;
  }
  store.setState({ referenceDirection: { file: file.name, bytes: new Uint8Array(await file.arrayBuffer()) } });
}

/** One prompt through the open model's chat template (the prompt editors' row view). */
export function renderPromptTemplate(messages: PromptMessage[], position: number): Promise<RenderedTemplate> {
  return analysisClient().renderTemplate(messages, position);
}

let captureController: AbortController | null = null;

export async function runCapture(): Promise<void> {
  const state = store.getState();
  let prompts;
  try {
    prompts = {
      harmful: promptSetToInputs(state.prompts.harmful, 'A (refusal prompts)'),
      harmless: promptSetToInputs(state.prompts.harmless, 'B (compliance prompts)'),
      referenceA: promptSetToInputs(state.prompts.referenceA, 'C (reference A)'),
      referenceB: promptSetToInputs(state.prompts.referenceB, 'D (reference B)'),
    };
  } catch (error) {
    reportError(error);
    return;
  }
  if (state.model.phase !== 'ready') {
    reportError(new InvalidInputError('Load a model first: the demo model or a model folder.'));
    return;
  }
  if (captureController) return; // one capture at a time; the button is disabled meanwhile
  const controller = new AbortController();
  captureController = controller;
  store.setState({ capture: { phase: 'running', fraction: 0, detail: 'Starting…' }, error: null, notes: [] });
  const onProgress = (event: Progress) => {
    // Progress travels on its own channel and may arrive after the result: only a running capture takes it.
    if (controller.signal.aborted || captureController !== controller || store.getState().capture.phase !== 'running') return;
    if (event.status === 'progress') {
      store.setState((current) => ({
        capture: { phase: 'running', fraction: Math.max(current.capture.fraction, event.fraction), detail: event.detail ?? current.capture.detail },
      }));
    } else if (event.status === 'message') {
      store.setState((current) => ({ capture: { ...current.capture, detail: event.text } }));
    }
  };
  try {
    const result = await analysisClient().analyze(
      {
        prompts,
        referenceDirection: state.referenceDirection,
        position: state.position,
        heldOutFraction: state.heldOutFraction,
        seed: state.seed,
        backend: state.backendChoice,
      },
      { signal: controller.signal, onProgress },
    );
    store.setState((current) => ({
      result,
      resultPrompts: prompts,
      resultOrigin: null,
      resultBackend: result.backend,
      selectedLayer: result.report.bestLayer,
      capture: { phase: 'done', fraction: 1, detail: result.fromCache ? 'Loaded from the activation cache' : `Captured on ${result.backend}` },
      notes: [...current.notes, ...result.notes],
    }));
  } catch (error) {
    const cancelled = error instanceof CancelledError || controller.signal.aborted;
    store.setState((current) => ({
      capture: { phase: cancelled ? 'cancelled' : 'failed', fraction: current.capture.fraction, detail: cancelled ? 'Cancelled' : 'Failed' },
    }));
    if (!cancelled) reportError(error);
  } finally {
    captureController = null;
  }
}

export function cancelCapture(): void {
  captureController?.abort();
}

export function selectLayer(layer: number): void {
  const result = store.getState().result;
  const maxLayer = result ? result.report.layers.length - 1 : null;
  if (!Number.isInteger(layer) || layer < 0 || (maxLayer !== null && layer > maxLayer)) return;
  store.setState({ selectedLayer: layer });
}

export function downloadReport(): void {
  const result = store.getState().result;
  if (!result) return;
  const url = URL.createObjectURL(new Blob([result.reportText], { type: 'application/json' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = 'report.json';
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
