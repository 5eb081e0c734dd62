/**
 * Ablated models for any recipe from ONE onnxruntime session: the recipe hook graph (src/model/recipe-hook-graph.ts)
 * takes the recipe's numbers as graph inputs, so the graph is built and loaded once and each recipe only
 * changes the feeds (recipe-hook-feeds.ts computes them: the resolved directions, weights, and for the
 * norm-preserving method the input scales and bias corrections from the model's own weights). The search
 * evaluates every trial on this one session; the chat previews a recipe with it.
 *
 * The norm-preserving method is offered (`methods`) when the folder has safetensors weights to compute its
 * factors from and every out-projection of the graph can take the input scaling (not MoE expert ops);
 * projections need the harmless means.
 */
import type { Recipe, RecipeMethod } from '../core/recipe';
import { decodeOnnxModel } from '../formats/onnx';
import { findOnnxGraphFiles } from '../formats/onnx-files';
import { readModelConfig } from '../formats/hf-folder';
import { buildRecipeHookGraph, type RecipeHookGraph } from '../model/recipe-hook-graph';
import type { ModelFolder } from '../ports/folder';
import type { OnnxTensor } from '../ports/onnx-session';
import { InvalidInputError, throwIfAborted } from '../base/errors';
import type { LongCallOptions } from '../base/progress';
import { resolveAblation } from './ablation-selection';
import { LanguageModel, type GenerationTokenizer } from './generate';
import { externalDataFiles } from './external-data';
import type { AblatedModelSource } from './recipe-evaluator';
import { recipeHookFeeds, recipeHookValues, safetensorsHookWeights, type HookWeightSource, type SiteWeights } from './recipe-hook-feeds';
import { folderTiedEmbeddings } from './tied-embeddings';
import { readWholeFile } from './transformers-files';

/** Out-projection weights kept in memory between recipes up to this many bytes (float32); beyond, read per recipe. */
const SITE_WEIGHT_CACHE_BYTES = 64 * 1024 * 1024;

export class RecipeHookModelSource implements AblatedModelSource {
  private feeds: Readonly<Record<string, OnnxTensor>>;
  private leased = false;

  private constructor(
    private readonly hook: RecipeHookGraph,
    private readonly model: LanguageModel,
    private readonly directions: readonly Float32Array[],
    private readonly harmlessMeans: readonly Float32Array[] | undefined,
    private readonly weights: HookWeightSource | null,
    private readonly vocabSize: number,
    /** The methods this source can run: "standard", and "norm-preserving" where the weights allow it. */
    readonly methods: readonly RecipeMethod[],
    initialFeeds: Record<string, OnnxTensor>,
  ) {
    this.feeds = initialFeeds;
  }

  static async open(
    folder: ModelFolder,
    tokenizer: GenerationTokenizer,
    directions: readonly Float32Array[], // [L + 1] × [dModel]
    options: { harmlessMeans?: readonly Float32Array[]; onnxFile?: string; device?: string } & LongCallOptions = {},
  ): Promise<RecipeHookModelSource> {
    const onnxFile = options.onnxFile ?? findOnnxGraphFiles(folder.list())?.decoder;
    if (!onnxFile) throw new InvalidInputError(`${folder.name}: has no ONNX graph in onnx/; recipe hooks need the transformers.js export.`);
    const graph = decodeOnnxModel(`${folder.name}/${onnxFile}`, await readWholeFile(folder, onnxFile));
    const tiedEmbeddings = await folderTiedEmbeddings(folder);
    const hook = buildRecipeHookGraph(graph, { tiedEmbeddings });
    if (directions.length !== hook.numLayers + 1) {
      throw new InvalidInputError(`the directions have ${directions.length} rows but the model has ${hook.numLayers + 1} hidden-state indices (0..${hook.numLayers})`);
    }
    const config = await readModelConfig(folder);
    const hasSafetensors = folder.list().some((path) => !path.includes('/') && (path.endsWith('.safetensors') || path.endsWith('.safetensors.index.json')));
    const scalable = hook.sites.every((site) => site.component === 'embed' || site.component === 'lm_head' || site.inputScale !== null);
    const weights = hasSafetensors && scalable ? cachedSiteWeights(await safetensorsHookWeights(folder)) : null;
    const methods: RecipeMethod[] = weights ? ['standard', 'norm-preserving'] : ['standard'];
    // Before the first recipe the session runs with every weight 0: the base model.
    const zero = {
      directions: new Float32Array(hook.siteCount * hook.dModel),
      weights: new Float32Array(hook.siteCount),
      biasCorrections: new Float32Array(hook.siteCount * hook.dModel),
      embedNormPreserving: 0,
      logitScale: null,
      inputScales: new Map<string, Float32Array>(),
    };
    const initialFeeds = recipeHookFeeds(hook, zero, config.vocabSize);
    let source: RecipeHookModelSource | null = null;
    const externalData = await externalDataFiles(folder, onnxFile, graph);
    const model = await LanguageModel.load(folder, tokenizer, {
      graph: hook.model,
      onnxFile,
      externalData,
      graphInputs: { names: hook.inputs, current: () => source?.feeds ?? initialFeeds },
      ...(options.device ? { device: options.device } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    source = new RecipeHookModelSource(hook, model, directions, options.harmlessMeans, weights, config.vocabSize, methods, initialFeeds);
    return source;
  }

  /** Points the one session at `recipe`'s numbers. One recipe at a time: release before the next. */
  async modelFor(recipe: Recipe, options: LongCallOptions): Promise<{ model: LanguageModel; release(): Promise<void> }> {
    throwIfAborted(options.signal);
    if (this.leased) throw new InvalidInputError('the recipe session is still in use by the previous recipe');
    if (!this.methods.includes(recipe.method)) {
      throw new InvalidInputError(`the recipe method "${recipe.method}" needs the model's safetensors weights and out-projections that take an input scaling; this model offers ${this.methods.join(', ')}`);
    }
    const ablation = resolveAblation({ recipe, directions: this.directions, ...(this.harmlessMeans ? { harmlessMeans: this.harmlessMeans } : {}) }, this.hook.numLayers);
    const values = await recipeHookValues(this.hook, ablation, recipe.method === 'norm-preserving' ? (this.weights ?? undefined) : undefined);
    this.feeds = recipeHookFeeds(this.hook, values, this.vocabSize);
    this.leased = true;
    return {
      model: this.model,
      release: async () => {
        this.leased = false;
      },
    };
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}

/** `source` with its out-projections kept in memory after the first read, while they fit SITE_WEIGHT_CACHE_BYTES. */
function cachedSiteWeights(source: HookWeightSource): HookWeightSource {
  const cache = new Map<string, SiteWeights | null>();
  let bytes = 0;
  return {
    async site(component, block) {
      const key = `${component}.${block}`;
      const hit = cache.get(key);
      if (hit !== undefined) return hit;
      const site = await source.site(component, block);
      const size = site ? site.weight.byteLength + (site.bias?.byteLength ?? 0) : 0;
      if (bytes + size <= SITE_WEIGHT_CACHE_BYTES) {
        cache.set(key, site);
        bytes += size;
      }
      return site;
    },
    embeddingRows: (visit) => source.embeddingRows(visit),
  };
}
