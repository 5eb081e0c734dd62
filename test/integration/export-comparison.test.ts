/**
 * The chat worker's export comparison (ChatService.compareExport, engine/export-comparison.ts) in Node on the demo
 * model: an `ablate --onnx` folder on the ablated side against the hook preview of the same direction gives a
 * largest first-token logit difference at float32 noise, equal to the one computed independently here (test
 * helper: separate sessions, element by element); against a preview of another scale the difference is as large
 * as the scales' logits differ.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ablateModel } from '../../src/engine/ablate';
import { parsePromptFile } from '../../src/formats/prompts';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { createNodeOutputFolder } from '../../src/platform/node-output';
import type { ChatModelsSpec, ExportComparisonRequest } from '../../src/protocol/chat-api';
import type { FolderDescriptor } from '../../src/ports/folder-descriptor';
import { ChatService } from '../../workers/chat-service';
import { compareExportWithHookPreview } from '../helpers/onnx-export-check';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO = path.join(ROOT, 'public/models/demo');
const PROMPTS = path.join(ROOT, 'public/prompts');
/** float32 graphs computing the same function in a different operation order (hooks vs edited weights). */
const LOGIT_TOLERANCE = 1e-4;
/** The worker's figure and the independent one come from the same graphs on the same backend: equal to this. */
const SAME_COMPUTATION = 1e-6;
/** The ablation must move some first-token logit by more than this, or a small difference proves nothing. */
const MIN_EFFECT = 1e-2;

const folderOf = (dir: string): FolderDescriptor => ({ kind: 'url', name: path.basename(dir), baseUrl: dir, files: [] });
const runtime = { openFolder: (descriptor: FolderDescriptor) => openNodeModelFolder(descriptor.kind === 'url' ? descriptor.baseUrl : ''), device: () => undefined };

let work: string;
let service: ChatService;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'export-comparison-'));
  service = new ChatService(runtime);
});
afterAll(async () => {
  await service.release();
  await rm(work, { recursive: true, force: true });
});

describe('export comparison: hook preview vs exported folder', () => {
  it('an ablate --onnx folder matches its preview to float noise; a preview of another scale does not', async () => {
    const planted = Float32Array.from((JSON.parse(await readFile(path.join(DEMO, 'planted_direction.json'), 'utf8')) as { direction: number[] }).direction);
    const targets: ('embed' | 'attn' | 'mlp')[] = ['embed', 'attn', 'mlp'];
    const exported = path.join(work, 'exported');
    await ablateModel(await openNodeModelFolder(DEMO), await createNodeOutputFolder(exported), { direction: planted, scale: 1, targets, onnx: true });
    const read = async (file: string) => parsePromptFile(file, await readFile(path.join(PROMPTS, file), 'utf8')).slice(0, 3);
    const prompts = [...(await read('shell_nosys.test.jsonl')), ...(await read('shell_agent.test.jsonl'))];
    const models: ExportComparisonRequest['models'] = { base: folderOf(DEMO), baseKey: 'demo', backend: 'wasm', ablated: { kind: 'folder', folder: folderOf(exported), key: 'exported' } };
    const preview = (scale: number): ExportComparisonRequest['preview'] => ({ kind: 'hooks', direction: { kind: 'analysis', layer: 2, values: planted }, scale, targets });

    const result = await service.compareExport({ models, preview: preview(1), prompts });
    const independent = await compareExportWithHookPreview(DEMO, exported, { direction: planted, scale: 1, targets }, prompts.map((prompt) => prompt.messages), 1);
    expect(result.prompts).toBe(prompts.length);
    expect(result.perPrompt).toHaveLength(prompts.length);
    expect(result.effect).toBeGreaterThan(MIN_EFFECT);
    expect(result.maxLogitDifference).toBeLessThan(LOGIT_TOLERANCE);
    expect(Math.abs(result.maxLogitDifference - independent.maxLogitDifference)).toBeLessThan(SAME_COMPUTATION);
    expect(Math.abs(result.effect - independent.effect)).toBeLessThan(SAME_COMPUTATION);
    expect(Math.max(...result.perPrompt)).toBe(result.maxLogitDifference);
    expect(result.sameArgmax).toBe(prompts.length);

    // A preview at half the scale is another model: the readout shows a difference of the ablation's own size.
    const other = await service.compareExport({ models, preview: preview(0.5), prompts });
    const halfScale = await compareExportWithHookPreview(DEMO, exported, { direction: planted, scale: 0.5, targets }, prompts.map((prompt) => prompt.messages), 1);
    expect(other.maxLogitDifference).toBeGreaterThan(MIN_EFFECT);
    expect(Math.abs(other.maxLogitDifference - halfScale.maxLogitDifference)).toBeLessThan(SAME_COMPUTATION);
  }, 180_000);

  it('refuses a request without prompts, naming what is missing', async () => {
    const models: ChatModelsSpec & { ablated: { kind: 'folder'; folder: FolderDescriptor; key: string } } = { base: folderOf(DEMO), baseKey: 'demo', backend: 'wasm', ablated: { kind: 'folder', folder: folderOf(path.join(work, 'exported')), key: 'exported' } };
    const planted = new Float32Array(JSON.parse(await readFile(path.join(DEMO, 'planted_direction.json'), 'utf8')).direction as number[]);
    await expect(service.compareExport({ models, preview: { kind: 'hooks', direction: { kind: 'analysis', layer: 2, values: planted }, scale: 1, targets: ['embed'] }, prompts: [] })).rejects.toThrow(/needs at least one prompt/);
  }, 60_000);
});
