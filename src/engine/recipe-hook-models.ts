/**
 * Ablated models for a recipe, as hook graphs built per trial: for every (component, block) the recipe gives a
 * non-zero weight, one projection hook x ← x − w·r(r·x) with that target's own unit direction r (fractional,
 * per-layer and projected directions resolved by resolveRecipeDirections) and weight w (constant or kernel).
 * Each hook is the seed hook graph (buildHookGraph) restricted to one target and one block, applied in turn;
 * the residual finder sees through hooks already inserted, so the composition hooks every target once.
 *
 * Only the "standard" method is expressible this way (norm-preserving rescales the out-projection's input,
 * which these hooks do not do): such a recipe is refused with a message that says so.
 */
import { externalDataFiles } from './external-data';
import type { ExternalDataFile } from '../ports/onnx-session';
import { componentWeight, resolveRecipeDirections, type AblationComponent, type Recipe } from '../core/recipe';
import type { ModelProto } from '../formats/onnx';
import { decodeOnnxModel } from '../formats/onnx';
import { buildHookGraph } from '../model/hook-graph';
import { findResidualPoints } from '../model/residual-finder';
import type { ModelFolder } from '../ports/folder';
import { InvalidInputError, throwIfAborted } from '../base/errors';
import type { LongCallOptions } from '../base/progress';
import { findOnnxGraphFiles } from '../formats/onnx-files';
import { LanguageModel, type GenerationTokenizer } from './generate';
import type { AblatedModelSource } from './recipe-evaluator';
import { readWholeFile } from './transformers-files';

/** The methods a per-trial hook graph can express. */
export const HOOK_GRAPH_METHODS = ['standard'] as const;

/** Builds the hooked graph for a recipe (exported for the equivalence tests). */
export function buildRecipeHookGraph(
  graph: ModelProto,
  recipe: Recipe,
  directions: readonly Float32Array[], // [L + 1] × [dModel]
  harmlessMeans: readonly Float32Array[] | undefined, // [L + 1] × [dModel]
  tiedEmbeddings: boolean,
): ModelProto {
  if (!(HOOK_GRAPH_METHODS as readonly string[]).includes(recipe.method)) {
    throw new InvalidInputError(`the per-trial hook graph implements the "standard" method only, not "${recipe.method}"; pin the method to standard`);
  }
  const resolved = resolveRecipeDirections(recipe, directions, harmlessMeans);
  const numLayers = directions.length - 1;
  let model = graph;
  const hook = (component: AblationComponent, block: number, weight: number) => {
    const direction = Float32Array.from(resolved.forTarget(component, block));
    model = buildHookGraph(model, {
      direction,
      scale: weight,
      targets: [component],
      ...(component === 'embed' ? { tiedEmbeddings } : { layers: [block, block] as [number, number] }),
    }).model;
  };
  const embed = componentWeight(recipe, 'embed', -1);
  if (embed !== 0) hook('embed', -1, embed);
  for (let block = 0; block < numLayers; block++) {
    for (const component of ['attn', 'mlp'] as const) {
      const weight = componentWeight(recipe, component, block);
      if (weight !== 0) hook(component, block, weight);
    }
  }
  return model;
}

export class RecipeHookModelSource implements AblatedModelSource {
  private constructor(
    private readonly folder: ModelFolder,
    private readonly tokenizer: GenerationTokenizer,
    private readonly graph: ModelProto,
    private readonly onnxFile: string,
    private readonly externalData: ExternalDataFile[],
    private readonly tiedEmbeddings: boolean,
    private readonly directions: readonly Float32Array[],
    private readonly harmlessMeans: readonly Float32Array[] | undefined,
    private readonly device: string | undefined,
  ) {}

  static async open(
    folder: ModelFolder,
    tokenizer: GenerationTokenizer,
    directions: readonly Float32Array[],
    options: { harmlessMeans?: readonly Float32Array[]; onnxFile?: string; device?: string } = {},
  ): Promise<RecipeHookModelSource> {
    const onnxFile = options.onnxFile ?? findOnnxGraphFiles(folder.list())?.decoder;
    if (!onnxFile) throw new InvalidInputError(`${folder.name}: has no ONNX graph in onnx/; the search needs the transformers.js export.`);
    const graph = decodeOnnxModel(`${folder.name}/${onnxFile}`, await readWholeFile(folder, onnxFile));
    const residual = findResidualPoints(graph);
    if (directions.length !== residual.points.length) {
      throw new InvalidInputError(`the directions have ${directions.length} rows but the model has ${residual.points.length} hidden-state indices (0..${residual.points.length - 1})`);
    }
    const config = JSON.parse(await folder.readText('config.json')) as Record<string, unknown>;
    const textConfig = (config.text_config as Record<string, unknown> | undefined) ?? config;
    const tied = Boolean(textConfig.tie_word_embeddings ?? config.tie_word_embeddings ?? false);
    const externalData = await externalDataFiles(folder, onnxFile, graph);
    return new RecipeHookModelSource(folder, tokenizer, graph, onnxFile, externalData, tied, directions, options.harmlessMeans, options.device);
  }

  async modelFor(recipe: Recipe, options: LongCallOptions): Promise<{ model: LanguageModel; release(): Promise<void> }> {
    throwIfAborted(options.signal);
    const graph = buildRecipeHookGraph(this.graph, recipe, this.directions, this.harmlessMeans, this.tiedEmbeddings);
    const model = await LanguageModel.load(this.folder, this.tokenizer, {
      graph,
      onnxFile: this.onnxFile,
      externalData: this.externalData,
      ...(this.device ? { device: this.device } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { model, release: () => model.dispose() };
  }
}
