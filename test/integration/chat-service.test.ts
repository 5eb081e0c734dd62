/**
 * The chat worker's service, run in Node (onnxruntime-node under transformers.js) on the demo model: base vs
 * hook-ablated replies, streamed tokens, stop, model switching under a running generation, an exported folder
 * as the ablated side, and evaluation numbers equal to the CLI engine's (EvaluationSession.evaluate).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRefusal } from '../../src/core/refusal';
import { ablateModel } from '../../src/engine/ablate';
import { EvaluationSession } from '../../src/engine/evaluate';
import { encodeOnnxModel } from '../../src/formats/onnx';
import { parsePromptFile } from '../../src/formats/prompts';
import { readSafetensorsHeader, readTensorBytes } from '../../src/formats/safetensors';
import { buildDemoOnnx } from '../../scripts/demo/demo-model';
import { openFileSource, openNodeModelFolder } from '../../src/platform/node-files';
import { createNodeOutputFolder } from '../../src/platform/node-output';
import { DEFAULT_CHAT_SETTINGS, type ChatModelsSpec } from '../../src/protocol/chat-api';
import { CancelledError, InvalidInputError } from '../../src/base/errors';
import { ChatService } from '../../workers/chat-service';
import { type FolderDescriptor } from '../../src/ports/folder-descriptor';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO = path.join(ROOT, 'public/models/demo');
const PROMPTS = path.join(ROOT, 'public/prompts');

const folderOf = (dir: string): FolderDescriptor => ({ kind: 'url', name: path.basename(dir), baseUrl: dir, files: [] });
const runtime = { openFolder: (descriptor: FolderDescriptor) => openNodeModelFolder(descriptor.kind === 'url' ? descriptor.baseUrl : ''), device: () => undefined };

let work: string;
let planted: Float32Array;
let service: ChatService;
let models: ChatModelsSpec;

const readPrompts = async (file: string) => parsePromptFile(file, await readFile(path.join(PROMPTS, file), 'utf8'));

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'chat-service-'));
  planted = Float32Array.from((JSON.parse(await readFile(path.join(DEMO, 'planted_direction.json'), 'utf8')) as { direction: number[] }).direction);
  service = new ChatService(runtime);
  models = {
    base: folderOf(DEMO),
    baseKey: 'demo',
    backend: 'wasm',
    ablated: { kind: 'hooks', direction: { kind: 'analysis', layer: 2, values: planted }, scale: 1, targets: ['embed', 'attn', 'mlp'] },
  };
});
afterAll(async () => {
  await service.release();
  await rm(work, { recursive: true, force: true });
});

describe('chat service on the demo model', () => {
  it('base refuses a refusal prompt, the hook-ablated side does not; tokens stream and add up to the reply', async () => {
    const [prompt] = await readPrompts('shell_nosys.test.jsonl');
    const streamed = { base: '', ablated: '' };
    const [base, ablated] = await Promise.all(
      (['base', 'ablated'] as const).map((side) =>
        service.generate({ models, side, messages: prompt!.messages, settings: DEFAULT_CHAT_SETTINGS }, { onToken: (event) => (streamed[side] += event.text) }),
      ),
    );
    expect(isRefusal(base!.text)).toBe(true);
    expect(base!.refusal.refused).toBe(true);
    expect(base!.refusal.spans.length).toBeGreaterThan(0);
    const [start, end] = base!.refusal.spans[0]!;
    expect(base!.refusal.matchedMarkers).toContain(base!.text.slice(start, end).toLowerCase());
    expect(isRefusal(ablated!.text)).toBe(false);
    expect(ablated!.refusal).toEqual({ refused: false, matchedMarkers: [], spans: [] });
    expect(streamed.base).toBe(base!.text);
    expect(streamed.ablated).toBe(ablated!.text);
    expect(base!.finishReason).toBe('eos');
  });

  it('stops a long generation within one token of the abort, and a model switch waits for the running reply', async () => {
    const [prompt] = await readPrompts('harmless.test.jsonl');
    const controller = new AbortController();
    let tokens = 0;
    let tokensAtAbort = 0;
    const running = service.generate(
      { models, side: 'ablated', messages: prompt!.messages, settings: { ...DEFAULT_CHAT_SETTINGS, maxNewTokens: 400, minNewTokens: 400 } },
      {
        signal: controller.signal,
        onToken: () => {
          if (++tokens === 20) {
            tokensAtAbort = tokens;
            controller.abort();
          }
        },
      },
    );
    await expect(running).rejects.toBeInstanceOf(CancelledError);
    // The abort is honoured before the next forward pass: at most the token already being decoded follows it.
    expect(tokens - tokensAtAbort).toBeLessThanOrEqual(1);

    // Switch the ablation (scale 0 = no-op hooks) while a forced-length reply of the old one is running.
    const long = service.generate({ models, side: 'ablated', messages: prompt!.messages, settings: { ...DEFAULT_CHAT_SETTINGS, maxNewTokens: 60, minNewTokens: 60 } });
    const noop = { ...models, ablated: { ...models.ablated!, scale: 0 } } as ChatModelsSpec;
    const [refusal] = await readPrompts('shell_nosys.test.jsonl');
    const switched = service.generate({ models: noop, side: 'ablated', messages: refusal!.messages, settings: DEFAULT_CHAT_SETTINGS });
    expect((await long).tokenCount).toBe(60);
    expect(isRefusal((await switched).text)).toBe(true);
  });

  it('asks for an ablation when there is none, and refuses a turn that does not end with the user', async () => {
    const [prompt] = await readPrompts('shell_nosys.test.jsonl');
    await expect(service.generate({ models: { ...models, ablated: null }, side: 'ablated', messages: prompt!.messages, settings: DEFAULT_CHAT_SETTINGS })).rejects.toThrow(/no ablated model/);
    await expect(service.generate({ models, side: 'base', messages: [], settings: DEFAULT_CHAT_SETTINGS })).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('evaluates with the numbers of the CLI engine, and an exported folder as the ablated side gives the same replies', async () => {
    const harmful = await readPrompts('shell_nosys.test.jsonl');
    const harmless = await readPrompts('shell_agent.test.jsonl');
    const result = await service.evaluate({ models: models as EvaluationRequestModels, harmful, harmless, maxNewTokens: 48 });
    const session = await EvaluationSession.open(await openNodeModelFolder(DEMO));
    try {
      const cli = await session.evaluate(
        { direction: planted, scale: 1, targets: ['embed', 'attn', 'mlp'] },
        { harmful: harmful.map((record) => record.messages), harmless: harmless.map((record) => record.messages) },
      );
      expect(result.base.refusalRate).toBe(1);
      expect(result.ablated.refusalRate).toBe(0);
      expect(result.base.refusalRate).toBe(cli.base.refusalRate);
      expect(result.ablated.refusalRate).toBe(cli.ablated.refusalRate);
      expect(result.klFirstToken).toBe(cli.klFirstToken);
      expect(result.samples.map((sample) => sample.ablated.response)).toEqual(cli.samples.map((sample) => sample.ablated.response));
      expect(result.samples.every((sample) => sample.base.spans.length > 0)).toBe(true);
    } finally {
      await session.dispose();
    }

    // An exported folder: abliterate's weights, with the demo graph rebuilt from them (the export edits
    // safetensors only; a folder whose ONNX is still the base graph is refused with a clear message).
    const exported = path.join(work, 'exported');
    const output = await createNodeOutputFolder(exported);
    await ablateModel(await openNodeModelFolder(DEMO), output, { direction: planted, scale: 1, targets: ['embed', 'attn', 'mlp'] });
    const [prompt] = await readPrompts('shell_nosys.test.jsonl');
    const unchangedGraph: ChatModelsSpec = { ...models, ablated: { kind: 'folder', folder: folderOf(exported), key: 'exported-original-graph' } };
    await expect(service.generate({ models: unchangedGraph, side: 'ablated', messages: prompt!.messages, settings: DEFAULT_CHAT_SETTINGS })).rejects.toThrow(/same ONNX graph as the base model/);

    const source = await openFileSource(path.join(exported, 'model.safetensors'));
    const header = await readSafetensorsHeader(source);
    const weights = new Map<string, Float32Array>();
    for (const tensor of header.tensors) weights.set(tensor.name, new Float32Array((await readTensorBytes(source, header, tensor.name)).slice().buffer));
    await source.close();
    const config = JSON.parse(await readFile(path.join(exported, 'config.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(exported, 'onnx', 'model.onnx'), encodeOnnxModel(buildDemoOnnx(config, weights)));
    const folderModels: ChatModelsSpec = { ...models, ablated: { kind: 'folder', folder: folderOf(exported), key: 'exported-rebuilt-graph' } };
    const harmfulPrompts = harmful.slice(0, 4);
    for (const record of harmfulPrompts) {
      const fromFolder = await service.generate({ models: folderModels, side: 'ablated', messages: record.messages, settings: DEFAULT_CHAT_SETTINGS });
      const fromHooks = result.samples[harmful.indexOf(record)]!.ablated.response;
      expect(fromFolder.text).toBe(fromHooks);
      expect(fromFolder.refusal.refused).toBe(false);
    }
  });
});

type EvaluationRequestModels = ChatModelsSpec & { ablated: NonNullable<ChatModelsSpec['ablated']> };
