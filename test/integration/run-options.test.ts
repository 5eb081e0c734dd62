/**
 * What `abliterate run` and `analyze` accept beside the basics: run's reference contrast (`--reference-a/-b`,
 * giving report.json the same cosines `analyze` gives) and separate evaluation files (`--eval-harmful/-harmless`,
 * evaluated instead of the held-out split); and `analyze` refusing a folder without config.json as the
 * workbench does. On the demo model, with small prompt files.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO = path.join(ROOT, 'public/models/demo');
const PROMPTS = path.join(ROOT, 'public/prompts');
/** Two runs of the same capture code on the same prompts: only thread scheduling could differ. */
const SAME_COSINE_TOLERANCE = 1e-6;

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/abliterate.mjs'), ...args], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

let work: string;
const files: Record<string, string> = {};
/** The first `count` rows of a default prompt file, as a file of their own. */
async function head(name: string, source: string, count: number): Promise<string> {
  const lines = (await readFile(path.join(PROMPTS, source), 'utf8')).trim().split('\n').slice(0, count);
  const target = path.join(work, name);
  await writeFile(target, `${lines.join('\n')}\n`);
  return target;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'abliterate-run-options-'));
  files.harmful = await head('harmful.jsonl', 'harmful.train.jsonl', 12);
  files.harmless = await head('harmless.jsonl', 'harmless.train.jsonl', 12);
  files.refA = await head('ref-a.jsonl', 'shell_nosys.train.jsonl', 8);
  files.refB = await head('ref-b.jsonl', 'shell_agent.train.jsonl', 8);
  files.evalA = await head('eval-a.jsonl', 'harmful.test.jsonl', 5);
  files.evalB = await head('eval-b.jsonl', 'harmless.test.jsonl', 7);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('abliterate run and analyze options', () => {
  it('run takes --reference-a/-b (cosines as analyze gives them) and evaluates on --eval-harmful/-harmless', async () => {
    const out = path.join(work, 'run');
    const common = ['--model', DEMO, '--harmful', files.harmful!, '--harmless', files.harmless!, '--reference-a', files.refA!, '--reference-b', files.refB!];
    const run = await runCli(['run', ...common, '--layer', '2', '--max-new-tokens', '8', '--eval-harmful', files.evalA!, '--eval-harmless', files.evalB!, '--out', out]);
    expect(run.stderr).not.toMatch(/^abliterate run:/m);
    expect(run.code).toBe(0);
    const analyzed = path.join(work, 'analyze');
    const analyze = await runCli(['analyze', ...common, '--out', analyzed]);
    expect(analyze.code).toBe(0);

    const runReport = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as { layers: { cosineReference: number | null }[] };
    const analyzeReport = JSON.parse(await readFile(path.join(analyzed, 'report.json'), 'utf8')) as { layers: { cosineReference: number | null }[] };
    expect(runReport.layers.some((layer) => layer.cosineReference !== null)).toBe(true);
    runReport.layers.forEach((layer, index) => {
      const expected = analyzeReport.layers[index]!.cosineReference;
      if (expected === null) expect(layer.cosineReference).toBeNull();
      else expect(Math.abs(layer.cosineReference! - expected)).toBeLessThanOrEqual(SAME_COSINE_TOLERANCE);
    });

    // The evaluation ran on the given files, not on the held-out split of --harmful/--harmless.
    const evaluation = JSON.parse(await readFile(path.join(out, 'eval.json'), 'utf8')) as { counts: { harmful: number; harmless: number } };
    expect(evaluation.counts).toMatchObject({ harmful: 5, harmless: 7 });
  });

  it('analyze refuses a folder without config.json in one line naming it', async () => {
    const folder = path.join(work, 'no-config');
    await mkdir(path.join(folder, 'onnx'), { recursive: true });
    for (const file of ['tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx']) await copyFile(path.join(DEMO, file), path.join(folder, file));
    const result = await runCli(['analyze', '--model', folder, '--harmful', files.harmful!, '--harmless', files.harmless!, '--out', path.join(work, 'never')]);
    expect(result.code).not.toBe(0);
    const lines = result.stderr.trim().split('\n').filter((line) => line.startsWith('abliterate'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/no-config\/config\.json: is missing/);
  });
});
