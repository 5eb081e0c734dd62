import { describe, expect, it } from 'vitest';
import type { Recipe } from '../../src/core/recipe';
import { defaultSearchSpace } from '../../src/core/search-space';
import { chooseTrial, isDominatedBy, paretoTrials, runRecipeSearch, type EvaluateTrialOptions, type RecipeEvaluator, type TrialEvaluation, type TrialRecord } from '../../src/engine/recipe-search';
import { CancelledError, InvalidInputError } from '../../src/base/errors';

const space = defaultSearchSpace(6, [1, 5]);
const PROMPTS = 20;

/**
 * A model-free evaluator with known answers: KL grows with the embed weight, and prompt i is refused unless
 * the direction is within i/20 of 3 — so refusals are counted prompt by prompt like the real evaluator does,
 * and it honours isDominated after every prompt.
 */
class SyntheticEvaluator implements RecipeEvaluator {
  generated = 0;
  calls = 0;
  constructor(private readonly cancelAfter = Infinity) {}
  async evaluate(recipe: Recipe, options: EvaluateTrialOptions): Promise<TrialEvaluation> {
    if (this.calls++ >= this.cancelAfter) throw new CancelledError();
    const kl = (recipe.components.embed ?? 0) ** 2;
    const distance = Math.abs((recipe.direction as number) - 3);
    let refused = 0;
    for (let prompt = 0; prompt < PROMPTS; prompt++) {
      this.generated++;
      if (distance > prompt / PROMPTS) refused++;
      if (prompt < PROMPTS - 1 && options.isDominated?.(kl, refused / PROMPTS)) return { refusalRate: refused / PROMPTS, klFirstToken: kl, falseRefusalRate: null, pruned: true };
    }
    return { refusalRate: refused / PROMPTS, klFirstToken: kl, falseRefusalRate: 0, pruned: false };
  }
}

/** The exact objectives of the synthetic evaluator, computed in full (no early stop). */
function exact(recipe: Record<string, unknown>): [number, number] {
  const distance = Math.abs((recipe.direction as number) - 3);
  let refused = 0;
  for (let prompt = 0; prompt < PROMPTS; prompt++) if (distance > prompt / PROMPTS) refused++;
  const embed = (recipe.components as { embed: number }).embed;
  return [refused / PROMPTS, embed * embed];
}

const record = (trial: number, refusalRate: number, klFirstToken: number): TrialRecord => ({
  trial, refusalRate, klFirstToken, recipe: {}, falseRefusalRate: 0, pruned: false, sampler: 'startup', parameters: {} as TrialRecord['parameters'], seconds: 0,
});

describe('Pareto bookkeeping of trials', () => {
  it('sorts the front by refusal, and the chosen trial is the lowest refusal within the KL bound', () => {
    const trials = [record(0, 0.5, 0.1), record(1, 0.2, 0.3), record(2, 0.0, 0.9), record(3, 0.6, 0.2)];
    expect(paretoTrials(trials).map((t) => t.trial)).toEqual([2, 1, 0]);
    expect(chooseTrial(trials, 0.5)?.trial).toBe(1);
    expect(chooseTrial(trials, 0.05)?.trial).toBe(0); // none within: lowest KL
    expect(isDominatedBy(paretoTrials(trials), 0.35, 0.25)).toBe(true); // trial 1: KL 0.3 ≤ 0.35, refusal 0.2 < 0.25
    expect(isDominatedBy(paretoTrials(trials), 0.25, 0.25)).toBe(false); // trial 0: refusal 0.5 is not below 0.25
  });
});

describe('runRecipeSearch', () => {
  it('records every trial; stopped trials hold a lower bound and are dominated by a finished Pareto trial', async () => {
    const evaluator = new SyntheticEvaluator();
    const result = await runRecipeSearch(evaluator, { space, trials: 30, seed: 3 });
    expect(result.trials).toHaveLength(30);
    expect(result.cancelled).toBe(false);
    const pruned = result.trials.filter((t) => t.pruned);
    expect(pruned.length).toBeGreaterThan(0);
    for (const trial of result.trials) {
      const [refusal, kl] = exact(trial.recipe);
      expect(trial.klFirstToken).toBeCloseTo(kl, 12);
      if (!trial.pruned) expect(trial.refusalRate).toBeCloseTo(refusal, 12);
      else {
        expect(trial.refusalRate).toBeLessThanOrEqual(refusal);
        // Dominated by a trial that finished before it: early stop never drops a Pareto trial.
        expect(result.trials.slice(0, trial.trial).some((t) => !t.pruned && t.klFirstToken <= kl && t.refusalRate < refusal)).toBe(true);
      }
    }
    // The front of the recorded trials equals the front of the exact objectives.
    const exactFront = paretoTrials(result.trials.map((t) => ({ ...t, refusalRate: exact(t.recipe)[0] }))).map((t) => t.trial);
    expect(result.pareto.map((t) => t.trial)).toEqual(exactFront);
    // Early stop saved generation.
    expect(evaluator.generated).toBeLessThan(30 * PROMPTS);
  });

  it('resumes: previous trials are kept and the continuation equals an uninterrupted search', async () => {
    const whole = await runRecipeSearch(new SyntheticEvaluator(), { space, trials: 24, seed: 5 });
    const first = await runRecipeSearch(new SyntheticEvaluator(), { space, trials: 15, seed: 5 });
    const appended: number[] = [];
    const resumed = await runRecipeSearch(new SyntheticEvaluator(), { space, trials: 24, seed: 5, previous: first.trials, onTrial: (t) => void appended.push(t.trial) });
    expect(appended).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23]);
    const strip = (trials: TrialRecord[]) => trials.map(({ seconds: _seconds, ...rest }) => rest);
    expect(strip(resumed.trials)).toEqual(strip(whole.trials));
  });

  it('cancel keeps the finished trials', async () => {
    const result = await runRecipeSearch(new SyntheticEvaluator(7), { space, trials: 20, seed: 1 });
    expect(result.cancelled).toBe(true);
    expect(result.trials.map((t) => t.trial)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const controller = new AbortController();
    controller.abort();
    expect((await runRecipeSearch(new SyntheticEvaluator(), { space, trials: 5, signal: controller.signal })).trials).toHaveLength(0);
  });

  it('refuses a trial count below 1', async () => {
    await expect(runRecipeSearch(new SyntheticEvaluator(), { space, trials: 0 })).rejects.toThrow(InvalidInputError);
  });
});
