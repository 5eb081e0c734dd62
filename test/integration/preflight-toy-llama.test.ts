/**
 * Preflight on toy-llama (word-level vocabulary of 471 words): with its own prompts the model reads every token
 * and acts the contrast out (no warning); with the workbench's default prompts most tokens are unknown and the
 * preflight says so before any capture. Unknown-token counts are checked against transformers.js' own
 * tokenizer (AutoTokenizer), not the code under test.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvaluationSession } from '../../src/engine/evaluate';
import { runPreflight, unknownTokenOf } from '../../src/engine/preflight';
import { parsePromptFile } from '../../src/formats/prompts';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { TOY_LLAMA, toyLlamaTokenIds } from '../helpers/toy-llama-session';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string, count: number) => parsePromptFile(file, readFileSync(file, 'utf8')).slice(0, count).map((record) => record.messages);

let session: EvaluationSession;
beforeAll(async () => {
  session = await EvaluationSession.open(await openNodeModelFolder(TOY_LLAMA));
}, 60_000);
afterAll(async () => {
  await session?.dispose();
});

describe('preflight on toy-llama', () => {
  it('finds no problem with its own shell prompts: every token known, A refused, B answered with actions', async () => {
    const harmful = read(path.join(TOY_LLAMA, 'prompts/shell_nosys_test.jsonl'), 12);
    const harmless = read(path.join(TOY_LLAMA, 'prompts/shell_agent_test.jsonl'), 12);
    const report = await runPreflight(session, { harmful, harmless });
    expect(report.unknownToken).toBe('[UNK]');
    expect(report.figures.unknownTokenRate).toBe(0);
    expect(report.figures).toMatchObject({ truncationRate: 0, refusalRateA: 1, refusalRateB: 0, actionRateB: 1 });
    expect(report.warnings).toEqual([]);
    // The captured token is the last of the templated prompt: the generation prompt's last piece.
    const ids = (await toyLlamaTokenIds([harmful[0] as { role: string; content: string }[]]))[0]!;
    expect(report.template.tokens).toHaveLength(ids.length);
    expect(report.template.capturedIndex).toBe(ids.length - 1);
  }, 120_000);

  it('warns on the workbench defaults, whose words toy-llama mostly does not know', async () => {
    const harmful = read(path.join(ROOT, 'public/prompts/shell_nosys.train.jsonl'), 16);
    const harmless = read(path.join(ROOT, 'public/prompts/shell_agent.train.jsonl'), 16);
    const report = await runPreflight(session, { harmful, harmless });
    const unk = unknownTokenOf(JSON.parse(readFileSync(path.join(TOY_LLAMA, 'tokenizer.json'), 'utf8')))!;
    const ids = await toyLlamaTokenIds([...harmful, ...harmless] as { role: string; content: string }[][]);
    const all = ids.flat();
    const expected = all.filter((id) => id === unk.id).length / all.length;
    expect(report.figures.unknownTokenRate).toBeCloseTo(expected, 12);
    expect(report.counts.tokens).toBe(all.length);
    console.info(`toy-llama preflight on the workbench defaults: ${(expected * 100).toFixed(1)}% unknown tokens, refusal A ${report.figures.refusalRateA}, B ${report.figures.refusalRateB}; warnings: ${report.warnings.map((warning) => warning.kind).join(', ')}`);
    expect(report.warnings.map((warning) => warning.kind)).toContain('unknown-tokens');
    expect(report.template.unknownIndices.length).toBeGreaterThan(0);
  }, 120_000);
});
