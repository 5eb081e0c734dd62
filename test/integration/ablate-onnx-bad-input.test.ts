/**
 * `ablate --onnx` on broken input: one clear error naming the file and the problem, before any output exists —
 * external data missing or truncated, a branch no hook can express, --onnx on a folder without ONNX, and an
 * ONNX-only folder without --onnx.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ablateModel } from '../../src/engine/ablate';
import { decodeOnnxModel, encodeOnnxModel, onnx } from '../../src/formats/onnx';
import type { HookTarget } from '../../src/model/hook-graph';
import { createNodeOutputFolder, openNodeModelFolder } from '../../src/platform/node-files';
import { TOY_LLAMA_DIR } from '../helpers/fixtures';
import { moveInitializersToExternalData } from '../helpers/onnx-export-check';
import { convertGraphPrecision } from '../helpers/onnx-precision';
import { runCli } from './ablate-helpers';

let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'ablate-onnx-bad-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const direction = (() => {
  const values = Float32Array.from({ length: 64 }, (_, k) => Math.sin(0.5 * k + 0.1));
  const norm = Math.hypot(...values);
  return values.map((value) => value / norm);
})();
const spec = { direction, scale: 1, targets: ['embed', 'attn', 'mlp'] as HookTarget[] };

/** An ONNX-only copy of toy-llama, optionally changed by `mutate`. */
function onnxOnlyCopy(name: string, mutate?: (dir: string) => void): string {
  const dir = join(workDir, name);
  cpSync(TOY_LLAMA_DIR, dir, { recursive: true, filter: (source) => !source.endsWith('.safetensors') });
  mutate?.(dir);
  return dir;
}

async function ablateError(input: string, name: string): Promise<Error> {
  const out = join(workDir, `${name}-out`);
  const error = await ablateModel(await openNodeModelFolder(input), await createNodeOutputFolder(out), { ...spec, onnx: true }).then(
    () => new Error('the ablation succeeded'),
    (caught: Error) => caught,
  );
  expect(existsSync(out)).toBe(false);
  return error;
}

describe('ablate --onnx on bad input', () => {
  it('external data missing: names the graph and the missing file', async () => {
    const input = onnxOnlyCopy('missing', (dir) => {
      moveInitializersToExternalData(join(dir, 'onnx/model.onnx'));
      rmSync(join(dir, 'onnx/model.onnx_data'));
    });
    const error = await ablateError(input, 'missing');
    expect(error.name).toBe('InvalidFileError');
    expect(error.message).toMatch(/onnx\/model\.onnx: stores initializer `.+` in model\.onnx_data, which is missing from the folder/);
  });

  it('external data truncated: names the data file and the bytes the graph needs', async () => {
    const input = onnxOnlyCopy('truncated', (dir) => {
      moveInitializersToExternalData(join(dir, 'onnx/model.onnx'));
      const data = join(dir, 'onnx/model.onnx_data');
      truncateSync(data, statSync(data).size - 100);
    });
    const error = await ablateError(input, 'truncated');
    expect(error.name).toBe('InvalidFileError');
    expect(error.message).toMatch(/onnx\/model\.onnx_data: is truncated: model\.onnx reads initializer `.+` at bytes \d+\.\.\d+ but the file has \d+ bytes/);
  });

  it('a quantized out-projection followed by an op no hook can commute with: names the graph, block and branch', async () => {
    const input = onnxOnlyCopy('unhookable', (dir) => {
      const path = join(dir, 'onnx/model.onnx');
      convertGraphPrecision(path, 'q8');
      const model = decodeOnnxModel(path, readFileSync(path));
      const nodes = model.graph?.node ?? [];
      const projection = nodes.find((node) => node.name === '/m/layers.1/mlp/down_proj/MatMul')!;
      const output = (projection.output ?? [])[0];
      projection.output = [`${output}_before_tanh`];
      nodes.splice(nodes.indexOf(projection) + 1, 0, onnx.NodeProto.create({ opType: 'Tanh', name: '/m/layers.1/mlp/Tanh', input: [`${output}_before_tanh`], output: [output] }));
      writeFileSync(path, encodeOnnxModel(model));
    });
    const error = await ablateError(input, 'unhookable');
    expect(error.name).toBe('UnsupportedModelError');
    expect(error.message).toMatch(/onnx\/model\.onnx: Block 1 MLP: the branch `.+` added at `.+` does not come from a linear out-projection/);
  });

  it('CLI: --onnx on a folder without ONNX, and an ONNX-only folder without --onnx, each fail with one line naming the folder', async () => {
    const noOnnx = join(workDir, 'no-onnx');
    cpSync(TOY_LLAMA_DIR, noOnnx, { recursive: true, filter: (source) => !source.startsWith(join(TOY_LLAMA_DIR, 'onnx')) });
    const directionFile = join(workDir, 'direction.json');
    writeFileSync(directionFile, JSON.stringify(Array.from(direction)));
    const first = await runCli(['ablate', '--model', noOnnx, '--direction', directionFile, '--onnx', '--out', join(workDir, 'cli-out-1')]);
    expect(first.code).not.toBe(0);
    const firstLines = first.stderr.trim().split('\n').filter((line) => !/^ablate: /.test(line));
    expect(firstLines).toHaveLength(1);
    expect(firstLines[0]).toContain(`${noOnnx}: has no ONNX decoder graph in onnx/`);
    const onnxOnly = onnxOnlyCopy('cli-onnx-only');
    const second = await runCli(['ablate', '--model', onnxOnly, '--direction', directionFile, '--out', join(workDir, 'cli-out-2')]);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain('has no safetensors weights, only ONNX graphs: ablate them with --onnx');
    expect(existsSync(join(workDir, 'cli-out-1')) || existsSync(join(workDir, 'cli-out-2'))).toBe(false);
  }, 60_000);
});
