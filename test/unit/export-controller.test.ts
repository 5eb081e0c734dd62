/**
 * The export panel's controller without a page: the request it builds from the form and the workbench, its
 * progress bar (monotone, writing 0–90 %, verifying 90–100 %), the status line, cancel, and bad input.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CancelledError } from '../../src/base/errors';
import type { LongCallOptions } from '../../src/base/progress';
import type { ExportApi, ExportRequest, ExportResult } from '../../src/protocol/export-api';
import { exportStore, initialExportState, parseBlockRange, runExport, cancelExport, effectiveSource, setExportComponent, setExportOptions, exportStatusText, type ExportBrowser } from '../../src/state/export-controller';
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
  workbenchStore.setState(initialState);
});

describe('export controller', () => {
  it('parses block ranges as the CLI does and refuses reversed ones', () => {
    expect(parseBlockRange('')).toBeNull();
    expect(parseBlockRange(' 3 ')).toEqual([3, 3]);
    expect(parseBlockRange('2-5')).toEqual([2, 5]);
    expect(() => parseBlockRange('5-2')).toThrow(/not a range/);
    expect(() => parseBlockRange('two')).toThrow(/not a range/);
  });

  it('falls back to whichever direction exists', () => {
    const file = { file: 'd.npy', bytes: new Uint8Array(8) };
    const analysis = { directions } as unknown as NonNullable<typeof initialState.result>;
    expect(effectiveSource('file', { result: null, importedDirection: null })).toBeNull();
    expect(effectiveSource('file', { result: analysis, importedDirection: null })).toBe('analysis');
    expect(effectiveSource('analysis', { result: null, importedDirection: file })).toBe('file');
    expect(effectiveSource('file', { result: analysis, importedDirection: file })).toBe('file');
  });

  it('sends the form as one request and shows monotone progress, writing then verifying', async () => {
    readyWorkbench({ result: { directions } as unknown as NonNullable<typeof initialState.result>, selectedLayer: 2 });
    setExportOptions({ scale: '0.5', blockRange: '1-2', destination: 'zip' });
    setExportComponent('embed', false);
    const api = new RecordingApi();
    await runExport(browser, api);
    expect(api.requests).toHaveLength(1);
    const request = api.requests[0];
    expect(request.direction).toEqual({ kind: 'analysis', directions, layer: 2 });
    expect([request.scale, request.targets, request.layers, request.destination, request.backend]).toEqual([0.5, ['attn', 'mlp'], [1, 2], { kind: 'zip' }, 'auto']);
    // Writing fills 0.9 of the bar, verifying the rest; the write's final event does not pull it back.
    const expected = [0.45, 0.9, 0.95, 1, 1];
    api.fractions.forEach((fraction, index) => expect(fraction).toBeCloseTo(expected[index], 12));
    expect(api.fractions).toHaveLength(expected.length);
    // A progress event that trails the result (another message port) leaves "done" at 100 %.
    api.lateProgress?.({ status: 'progress', task: 'ablate', fraction: 0.5 });
    const state = exportStore.getState();
    expect(state.phase).toBe('done');
    expect(state.fraction).toBe(1);
    expect(exportStatusText(state, true, 'analysis')).toBe('done: toy-abliterated — 2 files, 2.0 MB, 5 tensors edited, verified (2 SHA-256, 1 headers), cpu, 1.5 s');
  });

  it('reports a bad scale without calling the worker', async () => {
    readyWorkbench({ importedDirection: { file: 'd.npy', bytes: new Uint8Array(8) } });
    setExportOptions({ scale: 'abc' });
    const api = new RecordingApi();
    await runExport(browser, api);
    expect(api.requests).toHaveLength(0);
    expect(exportStore.getState().phase).toBe('failed');
    expect(workbenchStore.getState().error).toEqual({ name: 'InvalidInputError', message: 'Scale "abc" is not a number.' });
  });

  it('cancel ends in the cancelled phase with no error banner', async () => {
    readyWorkbench({ importedDirection: { file: 'd.npy', bytes: new Uint8Array(8) } });
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
