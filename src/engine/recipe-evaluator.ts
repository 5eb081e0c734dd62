/**
 * Evaluates one recipe on the model for the search (recipe-search.ts): first-token KL on the evaluation
 * compliance prompts (one forward pass per batch), then greedy replies to the refusal prompts batch by batch —
 * stopping as soon as the refusals counted make the trial dominated — then, for a trial that was not stopped,
 * the false-refusal rate on the compliance prompts and the agent action rate (when an agent evaluator is given).
 * The base model's first-token logits are computed once, when the evaluator is created.
 */
import { classifyRefusal } from '../core/refusal';
import { meanKLDivergence } from '../core/kl';
import type { Recipe } from '../core/recipe';
import { throwIfAborted } from '../base/errors';
import { ProgressReporter, type LongCallOptions } from '../base/progress';
import { DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS, type Conversation, type LanguageModel } from './generate';
import { resolveMarkers } from './evaluate';
import type { EvaluateTrialOptions, RecipeEvaluator, TrialEvaluation } from './recipe-search';

/** Gives the ablated model for a recipe; `release` is called when the trial is done with it. */
export interface AblatedModelSource {
  modelFor(recipe: Recipe, options: LongCallOptions): Promise<{ model: LanguageModel; release(): Promise<void> }>;
  /** Frees what the source holds (its session); the evaluator's owner calls it when the search is over. */
  dispose?(): Promise<void>;
}

/** Agent-mode evaluation (docs/definitions.md "Action"): the fraction of agent prompts the ablated model answers with an action. */
export interface AgentActionEvaluator {
  actionRate(model: LanguageModel, options: LongCallOptions): Promise<number>;
}

export interface SearchPrompts {
  /** Evaluation refusal prompts: the refusal-rate objective. */
  harmful: readonly Conversation[];
  /** Evaluation compliance prompts: the KL objective and the false-refusal report. */
  harmless: readonly Conversation[];
}

export interface RecipeEvaluatorSettings {
  maxNewTokens?: number;
  batchSize?: number;
  markers?: readonly string[];
  /** Also generate on the compliance prompts to report false refusals (default true). */
  falseRefusals?: boolean;
  agent?: AgentActionEvaluator;
}

export class ModelRecipeEvaluator implements RecipeEvaluator {
  private readonly markers: string[];
  private readonly maxNewTokens: number;
  private readonly batchSize: number;

  private constructor(
    private readonly source: AblatedModelSource,
    private readonly prompts: SearchPrompts,
    private readonly baseLogits: Float32Array[], // [prompt][vocab]
    private readonly settings: RecipeEvaluatorSettings,
  ) {
    this.markers = resolveMarkers(settings.markers);
    this.maxNewTokens = settings.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
    this.batchSize = settings.batchSize ?? DEFAULT_BATCH_SIZE;
  }

  /** Computes the base model's first-token logits on the compliance prompts once for every trial. */
  static async create(base: LanguageModel, source: AblatedModelSource, prompts: SearchPrompts, settings: RecipeEvaluatorSettings & LongCallOptions = {}): Promise<ModelRecipeEvaluator> {
    const baseLogits = await base.nextTokenLogits([...prompts.harmless], {
      batchSize: settings.batchSize ?? DEFAULT_BATCH_SIZE,
      ...(settings.signal ? { signal: settings.signal } : {}),
      ...(settings.onProgress ? { onProgress: settings.onProgress } : {}),
    });
    return new ModelRecipeEvaluator(source, prompts, baseLogits, settings);
  }

  async evaluate(recipe: Recipe, options: EvaluateTrialOptions): Promise<TrialEvaluation> {
    const reporter = new ProgressReporter('trial', options.onProgress);
    const signal = options.signal ? { signal: options.signal } : {};
    const { model, release } = await this.source.modelFor(recipe, signal);
    try {
      const logits = await model.nextTokenLogits([...this.prompts.harmless], { batchSize: this.batchSize, ...signal });
      const kl = meanKLDivergence(this.baseLogits, logits).mean;
      reporter.report(0.1, 'first-token KL');
      const total = this.prompts.harmful.length;
      let refused = 0;
      for (let start = 0; start < total; start += this.batchSize) {
        throwIfAborted(options.signal);
        const batch = this.prompts.harmful.slice(start, start + this.batchSize);
        const replies = await model.generateBatch([...batch], { maxNewTokens: this.maxNewTokens, batchSize: this.batchSize, ...signal });
        refused += replies.filter((reply) => classifyRefusal(reply.text, this.markers).refused).length;
        const generated = start + batch.length;
        reporter.report(0.1 + 0.6 * (generated / total), `${generated}/${total} refusal prompts`);
        // Every reply not yet generated could still comply, so refused/total is what this trial reaches at best.
        if (generated < total && options.isDominated?.(kl, refused / total)) {
          reporter.done();
          return { refusalRate: refused / total, klFirstToken: kl, falseRefusalRate: null, ...(this.settings.agent ? { actionRate: null } : {}), pruned: true };
        }
      }
      let falseRefusalRate: number | null = null;
      if (this.settings.falseRefusals ?? true) {
        const replies = await model.generateBatch([...this.prompts.harmless], { maxNewTokens: this.maxNewTokens, batchSize: this.batchSize, ...signal });
        falseRefusalRate = replies.filter((reply) => classifyRefusal(reply.text, this.markers).refused).length / replies.length;
      }
      reporter.report(0.9, 'false refusals');
      const actionRate = this.settings.agent ? await this.settings.agent.actionRate(model, signal) : undefined;
      reporter.done();
      return { refusalRate: refused / total, klFirstToken: kl, falseRefusalRate, ...(actionRate !== undefined ? { actionRate } : {}), pruned: false };
    } finally {
      await release();
    }
  }
}
