/**
 * The in-thread implementation of SearchApi (the search worker exposes it through comlink; Node tests call it
 * directly): the recipe search of `abliterate optimize` (src/engine/recipe-search.ts) on the open model, with
 * the analysis' directions and the held-out prompts the UI sends. Each trial is reported as it ends; a cancel
 * ends the search with every finished trial kept.
 */
import { SearchSpaceError, validateSearchSpace, type SearchSpace } from '../src/core/search-space';
import { EvaluationSession } from '../src/engine/evaluate';
import { ModelRecipeEvaluator } from '../src/engine/recipe-evaluator';
import { RecipeHookModelSource } from '../src/engine/recipe-hook-models';
import { runRecipeSearch } from '../src/engine/recipe-search';
import type { ModelFolder } from '../src/ports/folder';
import type { FolderDescriptor, ResolvedBackend } from '../src/protocol/analysis-api';
import { InvalidInputError } from '../src/base/errors';
import type { SearchApi, SearchCallOptions, SearchRequest, SearchResult } from '../src/protocol/search-api';

export interface SearchRuntime {
  openFolder(descriptor: FolderDescriptor): Promise<ModelFolder>;
  /** transformers.js device for a backend (undefined = its default, cpu in Node). */
  device(backend: ResolvedBackend): string | undefined;
}

export class SearchService implements SearchApi {
  constructor(private readonly runtime: SearchRuntime) {}

  async search(request: SearchRequest, options: SearchCallOptions = {}): Promise<SearchResult> {
    const started = performance.now();
    if (request.harmful.length === 0) throw new InvalidInputError('The search has no held-out refusal prompts to score trials on: import a file for A.');
    if (request.harmless.length === 0) throw new InvalidInputError('The search has no held-out compliance prompts (needed for the first-token KL): import a file for B.');
    let space: SearchSpace;
    try {
      space = validateSearchSpace(request.space as SearchSpace, request.directions.length - 1);
    } catch (error) {
      if (error instanceof SearchSpaceError) throw new InvalidInputError(error.message);
      throw error;
    }
    const signal = options.signal ? { signal: options.signal } : {};
    const folder = await this.runtime.openFolder(request.base);
    const device = this.runtime.device(request.backend);
    const session = await EvaluationSession.open(folder, { ...(device ? { device } : {}), ...signal });
    let source: RecipeHookModelSource | null = null;
    try {
      source = await RecipeHookModelSource.open(folder, session.tokenizer, request.directions, {
        ...(request.harmlessMeans ? { harmlessMeans: request.harmlessMeans } : {}),
        ...(device ? { device } : {}),
      });
      const evaluator = await ModelRecipeEvaluator.create(
        session.base,
        source,
        { harmful: request.harmful.map((prompt) => prompt.messages), harmless: request.harmless.map((prompt) => prompt.messages) },
        { maxNewTokens: request.maxNewTokens, ...(request.markers ? { markers: request.markers } : {}), ...signal },
      );
      const result = await runRecipeSearch(evaluator, {
        space,
        trials: request.trials,
        seed: request.seed,
        ...(request.previous ? { previous: request.previous } : {}),
        ...signal,
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        onTrial: (record) => options.onTrial?.(record),
      });
      return { trials: result.trials, pareto: result.pareto.map((trial) => trial.trial), cancelled: result.cancelled, seconds: (performance.now() - started) / 1000 };
    } finally {
      await source?.dispose();
      await session.dispose();
    }
  }
}
