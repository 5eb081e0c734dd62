/**
 * Which prompts the evaluation and the sweep run on, per side (A: refusal rate, B: first-token KL), and a label
 * that names them. In order of precedence:
 * 1. a file imported into the evaluation panel (set explicitly);
 * 2. while A (B) is a preset's set from public/prompts, that preset's held-out `.test` file (fetched into the
 *    chat store's `presetHeldOut`);
 * 3. otherwise — A (B) imported or typed — the held-out split of A (B): the prompts the direction was not found
 *    on, exactly as the capture splits them (the captured split once there is a result, else the split the
 *    current text will get), or all of them, labelled as such, when nothing is held out.
 * `syncEvaluationSets` keeps the chat store's `heldOut` equal to this, so the panel, the run card and the
 * session all see the prompts the numbers come from.
 */
import { seededSplit } from '../core/statistics';
import type { PromptInput } from '../protocol/analysis-api';
import { chatStore, type HeldOutSet, type PresetHeldOut } from './chat-store';
import { parsePromptSet } from './prompt-sets';
import { workbenchStore, type WorkbenchState } from './store';

export type EvaluationSide = 'harmful' | 'harmless';

const SIDE = {
  harmful: { set: 'A', stream: 0 },
  harmless: { set: 'B', stream: 1 },
} as const;

/** A prompt set the editor filled from a preset (default-prompts.ts marks it so). */
export function isPresetSet(source: string): boolean {
  return source.startsWith('defaults: ');
}

/** Where a set's prompts came from, for labels: "my.jsonl", "typed", "defaults: x.jsonl". */
function origin(source: string): string {
  if (source === 'edited' || source === '') return 'typed in the editor';
  return source;
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 100)} %`;
}

/** Rule 3: the held-out split of A or B, from the captured result when there is one, else from the editor. */
export function splitEvaluationSet(state: WorkbenchState, side: EvaluationSide): HeldOutSet {
  const { set, stream } = SIDE[side];
  const from = origin(state.prompts[side].source);
  const split = state.result?.split?.[side];
  const captured = state.resultPrompts?.[side];
  let all: PromptInput[];
  let heldOut: number[];
  let where: string;
  if (split && captured && captured.length > 0) {
    all = captured;
    heldOut = split.heldOut;
    where = `the captured ${set}`;
  } else {
    const parsed = parsePromptSet(state.prompts[side], set);
    if (parsed.problems.length > 0) return { prompts: [], source: `${set} has errors (line ${parsed.problems[0]!.line}): fix them to evaluate on its held-out split`, imported: false, origin: 'split' };
    all = parsed.rows.map((row) => ({ messages: row.messages }));
    if (all.length === 0) return { prompts: [], source: `${set} is empty`, imported: false, origin: 'split' };
    heldOut = seededSplit(all.length, state.heldOutFraction, state.seed, stream).heldOut;
    where = set;
  }
  if (heldOut.length === 0) {
    return {
      prompts: all,
      source: `all ${all.length} prompts of ${where} (nothing held out: the prompts the direction was found on) · ${from}`,
      imported: false,
      origin: 'split',
    };
  }
  // The captured split's own settings (report.json's `split`), which the controls may have left since.
  const recorded = (split && captured ? state.result?.report.split ?? {} : { heldOutFraction: state.heldOutFraction, seed: state.seed }) as { heldOutFraction?: number | null; seed?: number | null };
  const settings = typeof recorded.heldOutFraction === 'number' ? `${percent(recorded.heldOutFraction)}, seed ${recorded.seed ?? '–'}` : 'a given split';
  return {
    prompts: heldOut.map((index) => all[index]!),
    source: `held-out split of ${where}: ${heldOut.length} of ${all.length} prompts (${settings}) · ${from}`,
    imported: false,
    origin: 'split',
  };
}

/**
 * The set the evaluation should use now for one side: `current` when imported; `preset` (the preset's test file)
 * while A (B) is the preset's set; else the split.
 */
export function resolveEvaluationSet(state: WorkbenchState, current: HeldOutSet, side: EvaluationSide, preset: PresetHeldOut | null): HeldOutSet {
  if (current.imported) return current;
  const source = state.prompts[side].source;
  if (isPresetSet(source)) {
    if (preset && preset.forSource === source && preset.prompts.length > 0) {
      const { forSource: _forSource, ...set } = preset;
      return set;
    }
    // Until the preset's test file is fetched, a preset set restored with a session stays (sessions saved before
    // `origin` existed labelled it "held-out: <file>").
    const fromPreset = current.origin === 'preset' || (current.origin === undefined && current.source.startsWith('held-out: '));
    if (preset === null && fromPreset && current.prompts.length > 0) return current;
  }
  return splitEvaluationSet(state, side);
}

/** Same label, origin and prompts (by content: a re-parse makes new objects for the same prompts). */
const same = (a: HeldOutSet, b: HeldOutSet) =>
  a === b || (a.source === b.source && a.origin === b.origin && a.imported === b.imported && a.prompts.length === b.prompts.length && JSON.stringify(a.prompts) === JSON.stringify(b.prompts));

/** Brings the chat store's evaluation sets in line with the prompt sets (no write when nothing changed). */
export function syncEvaluationSets(): void {
  const state = workbenchStore.getState();
  const { heldOut, presetHeldOut } = chatStore.getState();
  const harmful = resolveEvaluationSet(state, heldOut.harmful, 'harmful', presetHeldOut.harmful);
  const harmless = resolveEvaluationSet(state, heldOut.harmless, 'harmless', presetHeldOut.harmless);
  if (same(harmful, heldOut.harmful) && same(harmless, heldOut.harmless)) return;
  chatStore.setState({ heldOut: { harmful: same(harmful, heldOut.harmful) ? heldOut.harmful : harmful, harmless: same(harmless, heldOut.harmless) ? heldOut.harmless : harmless } });
}

/**
 * Keeps the evaluation sets following the prompt sets while mounted: re-resolves when the prompts, the split
 * settings, the result or the evaluation sets themselves change. Returns the unsubscribe function.
 */
export function followPromptSets(): () => void {
  let last: unknown[] = [];
  const onChange = () => {
    const state = workbenchStore.getState();
    const inputs = () => [state.prompts.harmful, state.prompts.harmless, state.heldOutFraction, state.seed, state.result, state.resultPrompts, chatStore.getState().heldOut, chatStore.getState().presetHeldOut];
    const now = inputs();
    if (now.length === last.length && now.every((value, index) => value === last[index])) return;
    syncEvaluationSets();
    last = inputs();
  };
  const unsubscribers = [workbenchStore.subscribe(onChange), chatStore.subscribe(onChange)];
  onChange();
  return () => unsubscribers.forEach((unsubscribe) => unsubscribe());
}
