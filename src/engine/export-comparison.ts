/**
 * Closing the loop on an ONNX export: the hook preview (the base graph with the recipe's hooks) and the exported
 * model (the edited or baked graph) must give the same next-token logits, since the hooks are the weight edit in
 * activation space. This compares them on the first generated token of each prompt and reports the largest
 * absolute difference, with the prompt and vocabulary entry where it occurs, and the ablation's own effect on the
 * logits (the largest |preview − base|), without which a small difference would prove nothing.
 */
import { ProgressReporter, type LongCallOptions } from '../base/progress';
import { InvalidInputError } from '../base/errors';
import { progressSlice } from './evaluate';
import type { Conversation, LanguageModel } from './generate';

export interface ExportLogitComparison {
  /** max over prompts p and tokens k of |logit_preview[p][k] − logit_exported[p][k]|. */
  maxLogitDifference: number;
  /** Where the maximum is: prompt index and token id. */
  at: { prompt: number; token: number };
  /** Per prompt: max over k of |logit_preview[p][k] − logit_exported[p][k]|. */
  perPrompt: number[];
  /** max over p, k of |logit_preview[p][k] − logit_base[p][k]|: how much the ablation moves the logits at all. */
  effect: number;
  /** The two models' greedy first tokens agree on this many prompts. */
  sameArgmax: number;
  prompts: number;
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let k = 1; k < values.length; k++) if (values[k] > values[best]) best = k;
  return best;
}

/**
 * First-token logits of `preview`, `exported` and `base` on `prompts` (one batch pass each), compared. The three
 * models must share the vocabulary: a folder exported from another model is refused with both sizes.
 */
export async function compareFirstTokenLogits(
  models: { base: LanguageModel; preview: LanguageModel; exported: LanguageModel },
  prompts: readonly Conversation[],
  options: LongCallOptions & { batchSize?: number } = {},
): Promise<ExportLogitComparison> {
  if (prompts.length === 0) throw new InvalidInputError('The export comparison needs at least one prompt: the held-out sets are empty.');
  const reporter = new ProgressReporter('compare export', options.onProgress);
  const run = (model: LanguageModel, from: number, to: number, label: string) =>
    model.nextTokenLogits([...prompts], { ...(options.batchSize ? { batchSize: options.batchSize } : {}), ...(options.signal ? { signal: options.signal } : {}), onProgress: progressSlice(reporter, from, to, label) });
  const preview = await run(models.preview, 0, 0.4, 'hook preview');
  const exported = await run(models.exported, 0.4, 0.8, 'exported model');
  const base = await run(models.base, 0.8, 1, 'base model');
  const vocabulary = preview[0]!.length;
  if (exported[0]!.length !== vocabulary) {
    throw new InvalidInputError(`The exported model has ${exported[0]!.length} logits per token and the base model ${vocabulary}: it was not exported from this model.`);
  }
  let maxLogitDifference = 0;
  let at = { prompt: 0, token: 0 };
  let effect = 0;
  let sameArgmax = 0;
  const perPrompt = preview.map((row, prompt) => {
    const other = exported[prompt]!; // [vocab]
    const baseRow = base[prompt]!; // [vocab]
    let largest = 0;
    for (let k = 0; k < vocabulary; k++) {
      const difference = Math.abs(row[k]! - other[k]!);
      if (difference > largest) largest = difference;
      if (difference > maxLogitDifference) {
        maxLogitDifference = difference;
        at = { prompt, token: k };
      }
      effect = Math.max(effect, Math.abs(row[k]! - baseRow[k]!));
    }
    if (argmax(row) === argmax(other)) sameArgmax++;
    return largest;
  });
  reporter.done();
  return { maxLogitDifference, at, perPrompt, effect, sameArgmax, prompts: prompts.length };
}
