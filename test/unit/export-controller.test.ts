/**
 * The export panel's controller without a page: the request it builds from the ONE current ablation (the value
 * chat and evaluation read too), its progress bar (monotone, writing 0–90 %, verifying 90–100 %), the status
 * line, cancel, and bad input.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CancelledError } from '../../src/base/errors';
import type { LongCallOptions } from '../../src/base/progress';
import type { ExportApi, ExportRequest, ExportResult } from '../../src/protocol/export-api';
import { encodeDirectionsSafetensors } from '../../src/formats/direction-file';
import { ablationStore, currentAblation, initialAblationState, makeRecipeCurrent, parseBlockRange, setAblation, toggleTarget } from '../../src/state/ablation';
import { ablatedSideSpec } from '../../src/state/chat-actions';
import { exportStore, initialExportState, runExport, cancelExport, setExportOptions, exportStatusText, type ExportBrowser } from '../../src/state/export-controller';
import { initialState, workbenchStore } from '../../src/state/store';

vi.mock('virtual:demo-model-manifest', () => ({ default: [] }));

const folder = { kind: 'url' as const, name: 'toy', baseUrl: '/toy/', files: [] };
const directions = [new Float32Array([1, 0]), new Float32Array([0, 1]), new Float32Array([0.6, 0.8])]; // [L+1][dModel]

function result(): ExportResult {
  return { outputName: 'toy-abliterated', destination: 'downloads', deliver: [], files: [{ path: 'model.safetensors', bytes: 2_000_000, sha256: 'ab', file: null }], editedTensors: 5, backend: 'cpu', seconds: 1.5, verification: { filesChecked: 2, bytesChecked: 2_000_000, headersChecked: 1 }, notes: [] };
}

class RecordingApi implements ExportApi {
  requests: ExportRequest[] = [];
  fractions: number[] = [];
  /** The last call's progress callback, for events that arrive after the result. */
  lateProgress: LongCallOptions['onProgress'] = undefined;
  constructor(private readonly behaviour: 'finish' | 'wait-for-abort' = 'finish') {}
  async capabilities() {
    return { webgpu: false, defaultBackend: 'cpu' as const, reason: 'test' };
  }
  async exportModel(request: ExportRequest, options: LongCallOptions = {}): Promise<ExportResult> {
    this.requests.push(request);
    const step = (task: string, fraction: number) => {
      options.onProgress?.({ status: 'progress', task, fraction });
      this.fractions.push(exportStore.getState().fraction);
    };
    options.onProgress?.({ status: 'start', task: 'ablate' });
    step('ablate', 0.5);
    step('ablate', 1);
    if (this.behaviour === 'wait-for-abort') {
      await new Promise<void>((resolve) => options.signal?.addEventListener('abort', () => resolve()));
      throw new CancelledError();
    }
    options.onProgress?.({ status: 'start', task: 'verify' });
    step('verify', 0.5);
    step('verify', 1);
    // The write's own end comes after the verification inside its commit: 100 % of writing, then done.
    step('ablate', 1);
    options.onProgress?.({ status: 'done', task: 'ablate' });
    this.lateProgress = options.onProgress;
    return result();
  }
}

const browser: ExportBrowser = { canPickDirectory: false, pickDirectory: () => Promise.reject(new Error('no picker here')), deliver: () => () => undefined };

function readyWorkbench(extra: Partial<typeof initialState> = {}) {
  workbenchStore.setState({ ...initialState, model: { phase: 'ready', label: 'toy', inspection: null, message: '' }, modelFolder: folder, ...extra });
}

afterEach(() => {
  exportStore.setState(initialExportState);
  ablationStore.setState(initialAblationState);
  workbenchStore.setState(initialState);
});

const analysis = { directions, report: { numLayers: 2 } } as unknown as NonNullable<typeof initialState.result>;
/** A per-layer file the user imported: rows [1, 0], [0, 1], [0.6, 0.8] as directions.safetensors. */
const importedFile = { file: 'imported.safetensors', bytes: encodeDirectionsSafetensors(directions) };

describe('the current ablation', () => {
  it('parses block ranges as the CLI does and refuses reversed ones', () => {
    expect(parseBlockRange('')).toBeNull();
    expect(parseBlockRange(' 3 ')).toEqual([3, 3]);
    expect(parseBlockRange('2-5')).toEqual([2, 5]);
    expect(() => parseBlockRange('5-2')).toThrow(/not a range/);
    expect(() => parseBlockRange('two')).toThrow(/not a range/);
  });

  it('uses the chosen rows when both exist, else whichever exists, else says why', () => {
    expect(currentAblation({ ...initialState, selectedLayer: 1 }).why).toMatch(/No direction yet/);
    readyWorkbench({ result: analysis, selectedLayer: 1, importedDirection: importedFile });
    setAblation({ directionChoice: 'analysis' });
    expect(currentAblation().current!.spec.directions.kind).toBe('analysis');
    setAblation({ directionChoice: 'file' });
    expect(currentAblation().current!.spec.directions).toEqual({ kind: 'file', ...importedFile });
    readyWorkbench({ result: null, selectedLayer: 1, importedDirection: importedFile });
    setAblation({ directionChoice: 'analysis' });
    expect(currentAblation().current!.spec.directions.kind).toBe('file');
  });

  it('a per-layer source needs a selected layer: no silent row 0', () => {
    readyWorkbench({ result: analysis, selectedLayer: null });
    expect(currentAblation().current).toBeNull();
    expect(currentAblation().why).toMatch(/Select a layer/);
  });

  it('chat and export read the same recipe: the shorthand, then a whole recipe made current', async () => {
    readyWorkbench({ result: analysis, selectedLayer: 2 });
    setAblation({ scale: 0.5, blockRange: '1-2' });
    toggleTarget('embed', false);
    // recipeFromShorthand's flat kernel over blocks 1..2: peak at the middle, half the range as distance.
    const shorthandRecipe = { method: 'standard', direction: 2, projection: 'none', components: { attn: { max: 0.5, peak: 1.5, min: 0.5, distance: 0.5 }, mlp: { max: 0.5, peak: 1.5, min: 0.5, distance: 0.5 } } };
    expect(currentAblation().current!.spec.recipe).toEqual(shorthandRecipe);
    expect(ablatedSideSpec().spec).toEqual({ kind: 'hooks', direction: { kind: 'analysis', layer: 2, values: directions[2] }, scale: 0.5, targets: ['attn', 'mlp'], layers: [1, 2] });
    const api = new RecordingApi();
    await runExport(browser, api);
    expect(api.requests[0]!.ablation).toEqual({ recipe: shorthandRecipe, label: 'layer 2 · α 0.5 · attn+mlp · blocks 1–2', directions: { kind: 'analysis', rows: directions }, shorthand: { row: 2, scale: 0.5, targets: ['attn', 'mlp'], layers: [1, 2] } });

    const trial = { method: 'norm-preserving', direction: 1.5, projection: 'none', components: { embed: 0.25, attn: { max: 1, peak: 1, min: 0.5, distance: 1 } } };
    makeRecipeCurrent(trial, 'search trial 7', 'search');
    expect(ablatedSideSpec().spec).toEqual({ kind: 'recipe', recipe: trial, label: 'search trial 7', directions });
    exportStore.setState(initialExportState);
    await runExport(browser, api);
    expect(api.requests[1]!.ablation).toEqual({ recipe: trial, label: 'search trial 7', directions: { kind: 'analysis', rows: directions }, shorthand: null });
  });

  it('a recipe the rows cannot serve is refused before the worker is called', async () => {
    readyWorkbench({ importedDirection: { file: 'one.json', bytes: new TextEncoder().encode('[0.6, 0.8]') } });
    makeRecipeCurrent({ direction: 'per-layer', components: { attn: 1 } }, 'recipe.json', 'file');
    const api = new RecordingApi();
    await runExport(browser, api);
    expect(api.requests).toHaveLength(0);
    expect(workbenchStore.getState().error?.message).toMatch(/direction "per-layer" needs one direction per hidden state, but one\.json holds one direction/);
  });
});

describe('export controller', () => {
  it('sends the current ablation as one request and shows monotone progress, writing then verifying', async () => {
    readyWorkbench({ result: analysis, selectedLayer: 2 });
    setExportOptions({ destination: 'zip' });
    const api = new RecordingApi();
    await runExport(browser, api);
    expect(api.requests).toHaveLength(1);
    const request = api.requests[0];
    expect([request.destination, request.backend]).toEqual([{ kind: 'zip' }, 'auto']);
    // Writing fills 0.9 of the bar, verifying the rest; the write's final event does not pull it back.
    const expected = [0.45, 0.9, 0.95, 1, 1];
    api.fractions.forEach((fraction, index) => expect(fraction).toBeCloseTo(expected[index], 12));
    expect(api.fractions).toHaveLength(expected.length);
    // A progress event that trails the result (another message port) leaves "done" at 100 %.
    api.lateProgress?.({ status: 'progress', task: 'ablate', fraction: 0.5 });
    const state = exportStore.getState();
    expect(state.phase).toBe('done');
    expect(state.fraction).toBe(1);
    expect(exportStatusText(state, true, '')).toBe('done: toy-abliterated — 2 files, 2.0 MB, 5 tensors edited, verified (2 SHA-256, 1 headers), cpu, 1.5 s');
  });

  it('reports a bad block range without calling the worker', async () => {
    readyWorkbench({ importedDirection: { file: 'd.json', bytes: new TextEncoder().encode('[0.6, 0.8]') } });
    setAblation({ blockRange: '5-2' });
    const api = new RecordingApi();
    await runExport(browser, api);
    expect(api.requests).toHaveLength(0);
    expect(exportStore.getState().phase).toBe('failed');
    expect(workbenchStore.getState().error).toEqual({ name: 'InvalidInputError', message: 'Blocks "5-2" is not a range A-B with A ≤ B (e.g. 4-20).' });
  });

  it('cancel ends in the cancelled phase with no error banner', async () => {
    readyWorkbench({ importedDirection: { file: 'd.json', bytes: new TextEncoder().encode('[0.6, 0.8]') } });
    const api = new RecordingApi('wait-for-abort');
    const run = runExport(browser, api);
    await vi.waitFor(() => expect(api.fractions).toHaveLength(2));
    expect(exportStore.getState().phase).toBe('running');
    cancelExport();
    await run;
    expect(exportStore.getState().phase).toBe('cancelled');
    expect(workbenchStore.getState().error).toBeNull();
  });
});
