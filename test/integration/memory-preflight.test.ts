/**
 * The memory preflight's figures and wiring: on toy-llama (fp32, its embedding moved to external data, and the q4
 * variant) the estimate equals sizes and a KV formula worked out here; a generated 5 GiB external-data model (a
 * sparse file: no disk used) is refused on wasm before anything loads, by the chat worker's service, with one
 * line naming the graph and the precision that would fit (fp16: (2.5 GiB + KV) / 0.75 < 4 GiB); missing and truncated external data name the file.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateMemoryNeeds, preflightModelMemory } from '../../src/engine/memory-estimate';
import { DEFAULT_BATCH_SIZE } from '../../src/engine/generate';
import { decodeOnnxModel, encodeOnnxModel, onnx, OnnxDataType, tensorValueInfo } from '../../src/formats/onnx';
import { readModelConfig } from '../../src/formats/hf-folder';
import { openNodeModelFolder } from '../../src/platform/node-files';
import type { FolderDescriptor } from '../../src/ports/folder-descriptor';
import { ChatService } from '../../workers/chat-service';
import { TOY_LLAMA_DIR } from '../helpers/fixtures';
import { moveInitializersToExternalData } from '../helpers/onnx-export-check';
import { convertGraphPrecision } from '../helpers/onnx-precision';

const GiB = 1024 ** 3;
let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'memory-preflight-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function copyWithoutWeights(name: string): string {
  const dir = join(workDir, name);
  cpSync(TOY_LLAMA_DIR, dir, { recursive: true, filter: (source) => !source.endsWith('.safetensors') });
  return dir;
}

/** toy-llama's config with a graph holding one `[rows, 1280]` float32 table in a sparse external-data file. */
function oversizedModel(name: string, rows: number): string {
  const dir = copyWithoutWeights(name);
  const bytes = rows * 1280 * 4;
  const entry = (key: string, value: string) => onnx.StringStringEntryProto.create({ key, value });
  const table = onnx.TensorProto.create({
    name: 'model.embed_tokens.weight',
    dims: [rows, 1280],
    dataType: OnnxDataType.FLOAT,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [entry('location', 'model.onnx_data'), entry('offset', '0'), entry('length', String(bytes))],
  });
  const lookup = onnx.NodeProto.create({ opType: 'Gather', name: '/model/embed_tokens/Gather', input: ['model.embed_tokens.weight', 'input_ids'], output: ['inputs_embeds'] });
  const graph = onnx.GraphProto.create({
    name: 'oversized',
    initializer: [table],
    node: [lookup],
    input: [tensorValueInfo('input_ids', OnnxDataType.INT64, ['batch', 'sequence'])],
    output: [tensorValueInfo('inputs_embeds', OnnxDataType.FLOAT, ['batch', 'sequence', 1280])],
  });
  writeFileSync(join(dir, 'onnx/model.onnx'), encodeOnnxModel(onnx.ModelProto.create({ irVersion: 8, opsetImport: [onnx.OperatorSetIdProto.create({ version: 17 })], graph })));
  writeFileSync(join(dir, 'onnx/model.onnx_data'), '');
  truncateSync(join(dir, 'onnx/model.onnx_data'), bytes); // sparse: the size is there, the disk blocks are not
  return dir;
}

describe('memory estimate', () => {
  it('toy-llama with external data: weights = graph + data file, KV = 2 · 4 layers · 2 heads · 16 · tokens · batch · 4 bytes', async () => {
    const dir = copyWithoutWeights('external');
    moveInitializersToExternalData(join(dir, 'onnx/model.onnx'));
    const folder = await openNodeModelFolder(dir);
    const model = decodeOnnxModel('model.onnx', readFileSync(join(dir, 'onnx/model.onnx')));
    const needs = await estimateMemoryNeeds(folder, 'onnx/model.onnx', model, await readModelConfig(folder), { batch: 3, tokens: 100 });
    expect(needs.weightBytes).toBe(statSync(join(dir, 'onnx/model.onnx')).size + statSync(join(dir, 'onnx/model.onnx_data')).size);
    expect(needs.kvCacheBytes).toBe(2 * 4 * 2 * 16 * 100 * 3 * 4);
    expect(needs.precision).toBe('fp32');
    // The largest weight is the 471 × 64 embedding (or the head, the same size): 471 · 64 · 4 bytes.
    expect(needs.largestTensorBytes).toBe(471 * 64 * 4);
  });

  it('the precision is the matmul weights\' (toy-llama keeps its float32 embedding in every variant)', async () => {
    for (const [precision, expected] of [['q4', 'q4'], ['q8', 'q8'], ['fp16', 'fp16']] as const) {
      const dir = copyWithoutWeights(precision);
      convertGraphPrecision(join(dir, 'onnx/model.onnx'), precision);
      const folder = await openNodeModelFolder(dir);
      const model = decodeOnnxModel('model.onnx', readFileSync(join(dir, 'onnx/model.onnx')));
      const needs = await estimateMemoryNeeds(folder, 'onnx/model.onnx', model, await readModelConfig(folder), { batch: 1, tokens: 1 });
      expect(needs.precision).toBe(expected);
    }
  });
});

describe('memory preflight refuses an over-large model', () => {
  it('5 GiB of fp32 weights on wasm: one line naming the graph, suggesting fp16; fits a large-buffer GPU as it is', async () => {
    const rows = Math.ceil((5 * GiB) / (1280 * 4));
    const dir = oversizedModel('oversized', rows);
    const folder = await openNodeModelFolder(dir);
    const gpu = { backend: 'webgpu' as const, maxBufferSize: 8 * GiB, maxStorageBufferBindingSize: 8 * GiB };
    const error = await preflightModelMemory(folder, { backend: 'wasm' }, { otherBackend: gpu, batch: DEFAULT_BATCH_SIZE }).then(() => null, (caught: Error) => caught);
    expect(error?.name).toBe('InvalidInputError');
    expect(error?.message.split('\n')).toHaveLength(1);
    expect(error?.message).toMatch(/oversized\/onnx\/model\.onnx: needs about 6\.\d\d GiB of wasm memory \(5\.00 GiB of fp32 weights \+ .* but wasm has at most 4\.00 GiB: the same model exported in fp16 \(about 2\.50 GiB of weights\) would fit wasm; this model as it is would fit webgpu\./);
    // The 5 GiB table is one buffer: a GPU whose binding limit is 2 GiB cannot hold it either.
    await expect(preflightModelMemory(folder, { ...gpu, maxStorageBufferBindingSize: 2 * GiB }, { batch: 1 })).rejects.toThrow(/has a weight `model\.embed_tokens\.weight` of 5\.00 GiB, more than this GPU's maxStorageBufferBindingSize of 2\.00 GiB/);
  });

  it('the chat worker refuses it before loading, where the platform has limits', async () => {
    const dir = oversizedModel('oversized-chat', Math.ceil((5 * GiB) / (1280 * 4)));
    const service = new ChatService({
      openFolder: (descriptor: FolderDescriptor) => openNodeModelFolder(descriptor.kind === 'url' ? descriptor.baseUrl : ''),
      device: () => undefined,
      memoryLimits: async (backend) => (backend === 'wasm' ? { backend } : { backend, maxBufferSize: 0, maxStorageBufferBindingSize: 0 }),
    });
    const base: FolderDescriptor = { kind: 'url', name: 'oversized-chat', baseUrl: dir, files: [] };
    await expect(service.prepare({ base, baseKey: 'oversized', backend: 'wasm', ablated: null })).rejects.toThrow(/oversized-chat\/onnx\/model\.onnx: needs about .* exported in fp16 .* would fit wasm\.$/);
    await service.release();
  });

  it('external data missing or truncated: the preflight names the file first', async () => {
    const missing = copyWithoutWeights('missing');
    moveInitializersToExternalData(join(missing, 'onnx/model.onnx'));
    rmSync(join(missing, 'onnx/model.onnx_data'));
    await expect(preflightModelMemory(await openNodeModelFolder(missing), { backend: 'wasm' }, { batch: 1 })).rejects.toThrow(/missing\/onnx\/model\.onnx: stores weights in "model\.onnx_data", which is missing from the model folder/);
    const truncated = copyWithoutWeights('truncated');
    moveInitializersToExternalData(join(truncated, 'onnx/model.onnx'));
    truncateSync(join(truncated, 'onnx/model.onnx_data'), 1000);
    await expect(preflightModelMemory(await openNodeModelFolder(truncated), { backend: 'wasm' }, { batch: 1 })).rejects.toThrow(/truncated\/onnx\/model\.onnx_data: is truncated: model\.onnx reads initializer `.+` at bytes \d+\.\.\d+ but the file has 1000 bytes/);
  });
});
