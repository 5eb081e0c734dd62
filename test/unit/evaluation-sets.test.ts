/**
 * Which prompts the evaluation runs on: an imported file wins; a preset's A/B keeps the preset's test file;
 * an imported or typed A/B is evaluated on its own held-out split (the capture's split once captured), or on
 * all of it — labelled so — when nothing is held out. The split is checked against the engine's seededSplit,
 * the function `abliterate analyze` splits with.
 */
import { describe, expect, it } from 'vitest';
import { seededSplit } from '../../src/core/statistics';
import type { AnalysisResult } from '../../src/protocol/analysis-api';
import { chatStore, initialChatState, type HeldOutSet, type PresetHeldOut } from '../../src/state/chat-store';
import { resolveEvaluationSet, syncEvaluationSets } from '../../src/state/evaluation-sets';
import { initialState, workbenchStore, type WorkbenchState } from '../../src/state/store';

const lines = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix} ${index}`);
const user = (content: string) => ({ messages: [{ role: 'user' as const, content }] });

function state(update: Partial<WorkbenchState>): WorkbenchState {
  return { ...initialState, ...update };
}

const typedA = { text: lines('a', 12).join('\n'), system: '', source: 'mine.txt' };
const typedB = { text: lines('b', 8).join('\n'), system: '', source: 'edited' };
const presetSet: HeldOutSet = { prompts: [user('test 1'), user('test 2')], source: 'held-out: shell_nosys.test.jsonl', imported: false, origin: 'preset' };
const presetTest: PresetHeldOut = { ...presetSet, forSource: 'defaults: shell_nosys.train.jsonl' };

/** Any set that follows a split, as the resolver's `current` input. */
const typedSplit = (): HeldOutSet => ({ prompts: [], source: 'A is empty', imported: false, origin: 'split' });

describe('evaluation sets follow the prompt sets', () => {
  it('evaluates an imported A on its held-out split, as the capture will split it', () => {
    const current = state({ prompts: { ...initialState.prompts, harmful: typedA, harmless: typedB }, heldOutFraction: 0.25, seed: 3 });
    const set = resolveEvaluationSet(current, presetSet, 'harmful', presetTest);
    const expected = seededSplit(12, 0.25, 3, 0).heldOut.map((index) => `a ${index}`);
    expect(set.prompts.map((prompt) => prompt.messages.at(-1)!.content)).toEqual(expected);
    expect(set.origin).toBe('split');
    expect(set.source).toBe(`held-out split of A: ${expected.length} of 12 prompts (25 %, seed 3) · mine.txt`);
    // B uses the second stream of the split, as analyze does.
    const b = resolveEvaluationSet(current, presetSet, 'harmless', null);
    expect(b.prompts.map((prompt) => prompt.messages.at(-1)!.content)).toEqual(seededSplit(8, 0.25, 3, 1).heldOut.map((index) => `b ${index}`));
    expect(b.source).toMatch(/typed in the editor$/);
  });

  it('uses the captured split and prompts once there is a result', () => {
    const captured = { harmful: lines('captured', 6).map(user), harmless: lines('c', 6).map(user), referenceA: [], referenceB: [] };
    const result = { report: { split: { heldOutFraction: 0.5, seed: 0 } }, split: { harmful: { train: [0, 2, 4], heldOut: [1, 3, 5] }, harmless: { train: [0, 1, 2], heldOut: [3, 4, 5] } } } as unknown as AnalysisResult;
    const current = state({ prompts: { ...initialState.prompts, harmful: typedA, harmless: typedB }, result, resultPrompts: captured, heldOutFraction: 0.25 });
    const set = resolveEvaluationSet(current, presetSet, 'harmful', presetTest);
    expect(set.prompts.map((prompt) => prompt.messages[0]!.content)).toEqual(['captured 1', 'captured 3', 'captured 5']);
    expect(set.source).toBe('held-out split of the captured A: 3 of 6 prompts (50 %, seed 0) · mine.txt');
  });

  it('says so when nothing is held out, and evaluates on the whole set', () => {
    const current = state({ prompts: { ...initialState.prompts, harmful: typedA, harmless: typedB }, heldOutFraction: 0 });
    const set = resolveEvaluationSet(current, presetSet, 'harmful', presetTest);
    expect(set.prompts).toHaveLength(12);
    expect(set.source).toMatch(/^all 12 prompts of A \(nothing held out: the prompts the direction was found on\)/);
  });

  it('keeps an imported evaluation file, and uses the preset test file only while A is that preset set', () => {
    const imported: HeldOutSet = { prompts: [user('x')], source: 'x.jsonl', imported: true, origin: 'file' };
    const withTyped = state({ prompts: { ...initialState.prompts, harmful: typedA } });
    expect(resolveEvaluationSet(withTyped, imported, 'harmful', presetTest)).toBe(imported);
    const withPreset = state({ prompts: { ...initialState.prompts, harmful: { text: 'p', system: '', source: 'defaults: shell_nosys.train.jsonl' } } });
    expect(resolveEvaluationSet(withPreset, imported, 'harmful', presetTest)).toBe(imported);
    expect(resolveEvaluationSet(withPreset, typedSplit(), 'harmful', presetTest)).toEqual(presetSet);
    // Another preset's A (its test file not fetched yet): its own split, never the other preset's test file.
    const otherPreset = state({ prompts: { ...initialState.prompts, harmful: { text: 'p\nq', system: '', source: 'defaults: harmful.train.jsonl' } } });
    expect(resolveEvaluationSet(otherPreset, presetSet, 'harmful', presetTest).origin).toBe('split');
    // A restored session's preset set stays until the preset's file arrives.
    expect(resolveEvaluationSet(withPreset, presetSet, 'harmful', null)).toBe(presetSet);
    // Once A is edited away from the preset, the preset's test file no longer describes it.
    expect(resolveEvaluationSet(withTyped, presetSet, 'harmful', presetTest).origin).toBe('split');
  });

  it('names the first broken line instead of evaluating a set with errors', () => {
    const broken = state({ prompts: { ...initialState.prompts, harmful: { text: 'fine\n{"prompt": ', system: '', source: 'edited' } } });
    const set = resolveEvaluationSet(broken, presetSet, 'harmful', presetTest);
    expect(set.prompts).toEqual([]);
    expect(set.source).toMatch(/A has errors \(line 2\)/);
  });

  it('syncs the chat store and writes nothing when nothing changed', () => {
    workbenchStore.setState(state({ prompts: { ...initialState.prompts, harmful: typedA, harmless: typedB } }));
    chatStore.setState(initialChatState);
    syncEvaluationSets();
    const first = chatStore.getState().heldOut;
    expect(first.harmful.prompts).toHaveLength(seededSplit(12, initialState.heldOutFraction, initialState.seed, 0).heldOut.length);
    let writes = 0;
    const unsubscribe = chatStore.subscribe(() => writes++);
    syncEvaluationSets();
    unsubscribe();
    expect(writes).toBe(0);
    expect(chatStore.getState().heldOut).toBe(first);
  });
});
