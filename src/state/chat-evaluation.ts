/**
 * Evaluation actions: the held-out prompt sets (the chosen preset's `.test` files from public/prompts, or
 * imported files, parsed by the CLI's own parser), the batch evaluation of the current ablation, and the
 * per-layer sweep over the analysis directions. Results arrive finished from the chat worker.
 */
import { chatClient } from '../clients/chat-client';
import { parsePromptFile } from '../formats/prompts';
import type { PromptInput } from '../protocol/analysis-api';
import { CancelledError, InvalidFileError, InvalidInputError } from '../base/errors';
import type { Progress } from '../base/progress';
import { reportError } from './actions';
import { currentAblation, currentModels } from './chat-actions';
import { chatStore, type ChatState, type PresetHeldOut } from './chat-store';
import { workbenchStore } from './store';
import { agentEvaluationInputs } from './agent-prompts';
import { syncEvaluationSets } from './evaluation-sets';

const PROMPTS_BASE_URL = `${import.meta.env.BASE_URL}prompts/`;
/** Sweeping every layer of a deep model takes long; past this many layer indices only the best-AUC ones are tried. */
const MAX_SWEEP_LAYERS = 12;
const SWEEP_TOP_LAYERS = 8;

interface PromptIndex {
  sets?: { id: string; files: { train?: string; test?: string; all?: string }; role?: string }[];
  contrasts?: { id: string; a?: string; b?: string; default?: boolean }[];
}

let index: PromptIndex | null = null;

async function fetchText(url: string): Promise<string | null> {
  const response = await fetch(url).catch(() => null);
  // `vite preview` answers a missing file with index.html and 200: only accept non-HTML bodies.
  if (!response || !response.ok || (response.headers.get('content-type') ?? '').includes('text/html')) return null;
  return response.text();
}

async function loadSet(file: string, forSet: string | null): Promise<PresetHeldOut | null> {
  const text = await fetchText(PROMPTS_BASE_URL + file);
  if (text === null || forSet === null) return null;
  // `forSource`: the editor's source label of the set this file is the test split of (default-prompts.ts).
  return { prompts: parsePromptFile(file, text), source: `held-out: ${file}`, imported: false, origin: 'preset', forSource: `defaults: ${forSet}` };
}

/** The held-out (test) files of the preset's A and B sets, used while A and B are the preset's sets. */
export async function loadHeldOutDefaults(presetId: string): Promise<void> {
  try {
    index ??= JSON.parse((await fetchText(`${PROMPTS_BASE_URL}index.json`)) ?? '{}') as PromptIndex;
    const contrast = index.contrasts?.find((entry) => entry.id === presetId) ?? index.contrasts?.find((entry) => entry.default && entry.a && entry.b);
    if (!contrast?.a || !contrast.b) return;
    const files = (id: string) => index!.sets?.find((set) => set.id === id)?.files ?? {};
    const load = (id: string) => {
      const { test, train, all } = files(id);
      return test ? loadSet(test, train ?? all ?? null) : null;
    };
    const [harmful, harmless] = await Promise.all([load(contrast.a), load(contrast.b)]);
    // Kept aside: they are the evaluation sets only while A (B) is the preset's set, which the sync decides.
    chatStore.setState({ presetHeldOut: { harmful, harmless } });
    syncEvaluationSets();
  } catch (error) {
    reportError(error);
  }
}

/** Drops an imported evaluation file: the side follows its prompt set again (the preset's test file or the split). */
export function followPromptSet(set: 'harmful' | 'harmless'): void {
  chatStore.setState((state) => ({ heldOut: { ...state.heldOut, [set]: { prompts: [], source: '', imported: false, origin: 'split' } } }));
  syncEvaluationSets();
}

export async function importHeldOut(set: 'harmful' | 'harmless', file: File): Promise<void> {
  try {
    const prompts: PromptInput[] = parsePromptFile(file.name, await file.text());
    if (prompts.length === 0) throw new InvalidInputError(`${file.name}: holds no prompts.`);
    chatStore.setState((state) => ({ heldOut: { ...state.heldOut, [set]: { prompts, source: file.name, imported: true, origin: 'file' } } }));
  } catch (error) {
    reportError(error);
  }
}

/** A marker file as `abliterate eval --markers` reads it: a .json array of strings, or one marker per line. */
export async function importMarkers(file: File | null): Promise<void> {
  if (!file) {
    chatStore.setState({ markers: null });
    return;
  }
  try {
    const text = await file.text();
    let list: string[];
    if (file.name.toLowerCase().endsWith('.json')) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        throw new InvalidFileError(file.name, `is not valid JSON (${(error as Error).message})`);
      }
      if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string')) throw new InvalidFileError(file.name, 'must be a JSON array of strings');
      list = value;
    } else {
      list = text.split(/\r?\n/).filter((line) => line.trim().length > 0);
    }
    if (list.length === 0) throw new InvalidFileError(file.name, 'holds no markers');
    chatStore.setState({ markers: { list, source: file.name } });
  } catch (error) {
    reportError(error);
  }
}

function progressInto(key: 'evaluation' | 'sweep', signal: AbortSignal) {
  return (event: Progress) => {
    if (signal.aborted || event.status !== 'progress') return;
    // Progress arrives on its own message port and may trail the result: only a running task takes it.
    chatStore.setState((state) => state[key].phase !== 'running' ? {} : ({ [key]: { ...state[key], fraction: Math.max(state[key].fraction, event.fraction), detail: event.detail ?? state[key].detail } }) as Partial<ChatState>);
  };
}

/** The labels of the sets a run used, kept with its result ("held-out split of A: 12 of 48 prompts …"). */
function promptSources(): { harmful: string; harmless: string } {
  const { harmful, harmless } = chatStore.getState().heldOut;
  return { harmful: harmful.source, harmless: harmless.source };
}

const controllers: { evaluation: AbortController | null; sweep: AbortController | null } = { evaluation: null, sweep: null };

function heldOutPrompts(): { harmful: PromptInput[]; harmless: PromptInput[] } {
  syncEvaluationSets();
  const { harmful, harmless } = chatStore.getState().heldOut;
  if (harmful.prompts.length === 0) throw new InvalidInputError(`No refusal prompts to evaluate (${harmful.source || 'A is empty'}): fix set A or import a file for the evaluation.`);
  if (harmless.prompts.length === 0) throw new InvalidInputError(`No compliance prompts to evaluate (${harmless.source || 'B is empty'}): fix set B or import a file (needed for the first-token KL).`);
  return { harmful: harmful.prompts, harmless: harmless.prompts };
}

async function runTask<T>(key: 'evaluation' | 'sweep', start: (signal: AbortSignal, onProgress: (event: Progress) => void) => Promise<T>, done: (result: T) => Partial<ChatState>): Promise<void> {
  if (controllers[key]) return; // one at a time; the button is disabled meanwhile
  const controller = new AbortController();
  controllers[key] = controller;
  chatStore.setState({ [key]: { ...chatStore.getState()[key], phase: 'running', fraction: 0, detail: 'loading models…' } } as Partial<ChatState>);
  try {
    const result = await start(controller.signal, progressInto(key, controller.signal));
    chatStore.setState(done(result));
  } catch (error) {
    const cancelled = error instanceof CancelledError || controller.signal.aborted;
    chatStore.setState((state) => ({ [key]: { ...state[key], phase: cancelled ? 'cancelled' : 'failed', detail: cancelled ? 'Cancelled' : (error as Error).message } }) as Partial<ChatState>);
    if (!cancelled) reportError(error);
  } finally {
    controllers[key] = null;
  }
}

export function runEvaluation(): Promise<void> {
  return runTask(
    'evaluation',
    (signal, onProgress) => {
      const models = currentModels();
      const ablation = currentAblation();
      if (!models.ablated) throw new InvalidInputError(ablation.why);
      const { harmful, harmless } = heldOutPrompts();
      const { evalMaxNewTokens, markers } = chatStore.getState();
      const agent = agentEvaluationInputs();
      return chatClient().evaluate(
        { models: { ...models, ablated: models.ablated }, harmful, harmless, maxNewTokens: evalMaxNewTokens, ...(markers ? { markers: markers.list } : {}), ...(agent ?? {}) },
        { signal, onProgress },
      );
    },
    (result) => ({ evaluation: { phase: 'done', fraction: 1, detail: `${result.seconds.toFixed(1)} s on ${result.backend}`, result: { ...result, promptSources: promptSources() } } }),
  );
}

/** Layer indices to sweep: every layer with a direction when few, else the best by held-out AUC (as `abliterate run` does). */
export function sweepCandidates(): number[] {
  const result = workbenchStore.getState().result;
  if (!result) return [];
  // A degenerate layer (no mean gap, hence no direction — index 0 when every prompt ends on the same token) cannot be removed.
  const layers = result.report.layers.filter((layer) => layer.degenerate !== true);
  if (layers.length <= MAX_SWEEP_LAYERS) return layers.map((layer) => layer.index);
  return [...layers]
    .sort((a, b) => b.auc - a.auc || a.index - b.index)
    .slice(0, SWEEP_TOP_LAYERS)
    .map((layer) => layer.index)
    .sort((a, b) => a - b);
}

export function runSweep(): Promise<void> {
  return runTask(
    'sweep',
    (signal, onProgress) => {
      const result = workbenchStore.getState().result;
      if (!result) throw new InvalidInputError('The sweep needs a direction per layer: run the capture (step 3) first.');
      const { ablated: _ablated, ...models } = currentModels();
      const chat = chatStore.getState();
      const { harmful, harmless } = heldOutPrompts();
      return chatClient().sweep(
        {
          models,
          directions: result.directions,
          candidateLayers: sweepCandidates(),
          harmful,
          harmless,
          maxNewTokens: chat.evalMaxNewTokens,
          scale: chat.scale,
          targets: chat.targets,
          ...(chat.markers ? { markers: chat.markers.list } : {}),
        },
        { signal, onProgress },
      );
    },
    (result) => {
      const kept = { ...result, promptSources: promptSources() };
      // A cancelled sweep returns the layers that finished: they stay on the plot and in the table.
      if (result.cancelled) {
        const total = result.rows.length + result.cancelled.notSwept.length;
        return { sweep: { phase: 'cancelled', fraction: result.rows.length / total, detail: `Cancelled: ${result.rows.length} of ${total} layers finished and kept`, result: kept } };
      }
      return { sweep: { phase: 'done', fraction: 1, detail: `${result.rows.length} layers in ${result.seconds.toFixed(1)} s on ${result.backend}`, result: kept } };
    },
  );
}

export function cancelEvaluation(): void {
  controllers.evaluation?.abort();
}

export function cancelSweep(): void {
  controllers.sweep?.abort();
}
