/**
 * The analysis worker's service, run in Node on onnxruntime-node: it opens a folder handed over as File objects
 * (as the browser's folder input does), validates it, captures and analyses — and when the WebGPU backend fails
 * mid-run it retries on wasm, says so, and still returns the CLI's numbers.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNodeSessionFactory } from '../../src/platform/ort-node';
import type { OnnxSessionFactory, ResolvedBackend } from '../../src/ports/onnx-session';
import type { AnalysisRequest } from '../../src/protocol/analysis-api';
import type { Progress } from '../../src/base/progress';
import { BackendError, CancelledError, InvalidFileError } from '../../src/base/errors';
import { parsePromptFile } from '../../src/formats/prompts';
import { AnalysisService } from '../../workers/analysis-service';
import { type FolderDescriptor } from '../../src/ports/folder-descriptor';

const ROOT = join(import.meta.dirname, '..', '..');
const DEMO = join(ROOT, 'public', 'models', 'demo');
const PROMPTS = join(ROOT, 'public', 'prompts');

function filesDescriptor(directory: string, name: string, replace: Record<string, Uint8Array> = {}, skip: string[] = []): FolderDescriptor {
  const files: { path: string; file: File }[] = [];
  const walk = (current: string) => {
    for (const entry of readdirSync(current)) {
      const full = join(current, entry);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const path = relative(directory, full).split(sep).join('/');
        if (skip.includes(path)) continue;
        files.push({ path, file: new File([(replace[path] ?? readFileSync(full)) as Uint8Array<ArrayBuffer>], entry) });
      }
    }
  };
  walk(directory);
  return { kind: 'files', name, files };
}

function request(backend: AnalysisRequest['backend']): AnalysisRequest {
  const read = (file: string) => parsePromptFile(file, readFileSync(join(PROMPTS, file), 'utf8'));
  return {
    prompts: { harmful: read('harmful.test.jsonl'), harmless: read('harmless.test.jsonl'), referenceA: [], referenceB: [] },
    referenceDirection: null,
    position: -1,
    heldOutFraction: 0.25,
    seed: 0,
    backend,
    // Small batches, so a capture takes several forward passes and a failure can come midway.
    batchSize: 2,
  };
}

/** A "WebGPU" that runs its first forward pass and then fails the way a lost device does. */
const failingWebGpu: OnnxSessionFactory = {
  name: 'fake webgpu',
  async create(model) {
    const session = await createNodeSessionFactory({ threads: 1 }).create(model);
    let runs = 0;
    return {
      inputs: session.inputs,
      outputs: session.outputs,
      run: async (feeds, outputs) => {
        if (runs++ === 0) return session.run(feeds, outputs);
        throw new BackendError('The WebGPU device was lost (simulated).', { backend: 'webgpu' });
      },
      release: () => session.release(),
    };
  },
};

function service(webgpu: OnnxSessionFactory | null) {
  return new AnalysisService({
    sessionFactory: (backend: ResolvedBackend) => (backend === 'webgpu' && webgpu ? webgpu : createNodeSessionFactory({ threads: 1 })),
    probeWebGpu: async () => ({ available: webgpu !== null, fallback: false, detail: webgpu ? 'fake adapter' : 'none' }),
  });
}

describe('analysis service', () => {
  it('opens the demo from File objects and says what each step can do', async () => {
    const inspection = await service(null).openModel(filesDescriptor(DEMO, 'demo'));
    expect(inspection.capabilities).toMatchObject({ capture: true, chat: true, export: true });
    expect(inspection.checks.map((check) => [check.item, check.present])).toEqual([
      ['config', true],
      ['tokenizer', true],
      ['onnx', true],
      ['safetensors', true],
    ]);
    const config = JSON.parse(readFileSync(join(DEMO, 'config.json'), 'utf8')) as { num_hidden_layers: number; hidden_size: number };
    expect(inspection.numLayers).toBe(config.num_hidden_layers);
    expect(inspection.hiddenSize).toBe(config.hidden_size);
    expect(inspection.onnxFile).toBe('onnx/model.onnx');
  });

  it('falls back from a failing WebGPU to wasm with a note, with the same numbers as a wasm run', async () => {
    const falling = service(failingWebGpu);
    await falling.openModel(filesDescriptor(DEMO, 'demo'));
    const events: Progress[] = [];
    const fallback = await falling.analyze(request('auto'), { onProgress: (event) => events.push(event) });
    expect(fallback.backend).toBe('wasm');
    expect(fallback.notes.join(' ')).toMatch(/WebGPU device was lost.*Retried on wasm/);
    // The progress invariants hold across the retry: one start, fractions in [0, 1] that never go back,
    // one done at the very end; the retry is announced, and the WebGPU attempt got somewhere before failing.
    expect(events[0]).toEqual({ status: 'start', task: 'capture' });
    expect(events.filter((event) => event.status === 'start')).toHaveLength(1);
    expect(events.filter((event) => event.status === 'done')).toHaveLength(1);
    expect(events[events.length - 1]).toEqual({ status: 'done', task: 'capture' });
    const fractions = events.flatMap((event) => (event.status === 'progress' ? [event.fraction] : []));
    fractions.forEach((fraction, index) => {
      expect(fraction).toBeGreaterThanOrEqual(index === 0 ? 0 : fractions[index - 1]);
      expect(fraction).toBeLessThanOrEqual(1);
    });
    const retryAt = events.findIndex((event) => event.status === 'message' && /Retried on wasm/.test(event.text));
    expect(retryAt).toBeGreaterThan(0);
    const before = events.slice(0, retryAt).flatMap((event) => (event.status === 'progress' ? [event.fraction] : []));
    expect(Math.max(...before)).toBeGreaterThan(0);
    expect(events.slice(retryAt).some((event) => event.status === 'progress' && /on wasm/.test(event.detail ?? ''))).toBe(true);

    const plain = service(null);
    await plain.openModel(filesDescriptor(DEMO, 'demo'));
    const direct = await plain.analyze(request('wasm'));
    expect(fallback.report.layers).toEqual(direct.report.layers);
    expect(fallback.report.bestLayer).toBe(direct.report.bestLayer);
    expect(fallback.projections).toHaveLength(direct.report.numLayers + 1);
    expect(fallback.crossLayerCosine).toHaveLength(direct.report.numLayers + 1);
    // After a failure `auto` stays on wasm instead of failing again.
    expect((await falling.analyze(request('auto'))).notes).toEqual([]);
  });

  it('stops capturing at the next batch when cancelled: no forward pass starts after the abort', async () => {
    const controller = new AbortController();
    let runs = 0;
    const counting: OnnxSessionFactory = {
      name: 'counting wasm',
      async create(model) {
        const session = await createNodeSessionFactory({ threads: 1 }).create(model);
        return {
          inputs: session.inputs,
          outputs: session.outputs,
          run: async (feeds, outputs) => {
            runs++;
            if (runs === 2) controller.abort(); // cancel while the second batch is in flight
            return session.run(feeds, outputs);
          },
          release: () => session.release(),
        };
      },
    };
    const cancelling = new AnalysisService({ sessionFactory: () => counting, probeWebGpu: async () => ({ available: false, fallback: false, detail: 'none' }) });
    await cancelling.openModel(filesDescriptor(DEMO, 'demo'));
    const error = await cancelling.analyze(request('wasm'), { signal: controller.signal }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CancelledError);
    // The in-flight batch finishes; nothing after it runs (a capture that ignored the signal would run them all).
    expect(runs).toBe(2);
  });

  it('refuses a folder without config.json and a corrupt ONNX with errors naming the file', async () => {
    await expect(service(null).openModel(filesDescriptor(DEMO, 'no-config', {}, ['config.json']))).rejects.toThrow(/no-config.*config\.json/);
    const corrupt = filesDescriptor(DEMO, 'corrupt', { 'onnx/model.onnx': new Uint8Array(2048).fill(0xff) });
    const error = await service(null).openModel(corrupt).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidFileError);
    expect((error as Error).message).toMatch(/corrupt\/onnx\/model\.onnx/);
  });

  it('refuses a folder with only config.json, naming what is missing, and keeps the working model', async () => {
    const analysis = service(null);
    await analysis.openModel(filesDescriptor(DEMO, 'demo'));
    const onlyConfig: FolderDescriptor = { kind: 'files', name: 'only-config', files: [{ path: 'config.json', file: new File([readFileSync(join(DEMO, 'config.json'))], 'config.json') }] };
    const error = await analysis.openModel(onlyConfig).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidFileError);
    expect((error as Error).message).toMatch(/^only-config: has config\.json but nothing to work with: .*tokenizer\.json and tokenizer_config\.json and an ONNX graph .*\*\.safetensors/);
    // The demo stays open: its chat template still renders.
    const rendered = await analysis.renderTemplate([{ role: 'user', content: 'list the files' }], -1);
    expect(rendered.text).toContain('list the files');
  });

  it("renders a prompt through the model's chat template, with the token the capture reads", async () => {
    const analysis = service(null);
    await expect(analysis.renderTemplate([{ role: 'user', content: 'x' }], -1)).rejects.toThrow(/No model is open/);
    await analysis.openModel(filesDescriptor(DEMO, 'demo'));
    const messages = [
      { role: 'system' as const, content: 'You are a terminal agent.' },
      { role: 'user' as const, content: 'delete the logs' },
    ];
    const last = await analysis.renderTemplate(messages, -1);
    // The template's text holds both messages in order and ends with the generation prompt after the user turn.
    expect(last.text.indexOf('You are a terminal agent.')).toBeGreaterThanOrEqual(0);
    expect(last.text.indexOf('delete the logs')).toBeGreaterThan(last.text.indexOf('You are a terminal agent.'));
    expect(last.capturedIndex).toBe(last.tokens.length - 1);
    // Tokens are pieces of the rendered text, in order (special tokens decode to their own text); the demo's
    // small vocabulary maps words it lacks to its unknown token, which is not in the text.
    const unknown = (JSON.parse(readFileSync(join(DEMO, 'tokenizer.json'), 'utf8')) as { model: { unk_token?: string } }).model.unk_token;
    let at = 0;
    for (const token of last.tokens.filter((piece) => piece !== unknown)) {
      const found = last.text.indexOf(token.trim(), at);
      expect(found, token).toBeGreaterThanOrEqual(0);
      at = found;
    }
    const first = await analysis.renderTemplate(messages, 0);
    expect(first.capturedIndex).toBe(0);
    expect(first.tokens).toEqual(last.tokens);
  });
});
