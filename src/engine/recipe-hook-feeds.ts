/**
 * Recipe + resolved directions → the recipe hook graph's numbers (src/model/recipe-hook-graph.ts): as session
 * feeds (`recipeHookFeeds`) or as the values a baked graph holds (`recipeHookValues`). Directions and weights
 * come from the resolved recipe — the very float32 vectors the weight edit uses. The norm-preserving numbers
 * come from the weights themselves (`HookWeightSource`, e.g. `safetensorsHookWeights` over the model folder):
 *   out-projection input scale s_j = ‖W[:, j]‖ / ‖W[:, j] − w r p_j‖, p = rᵀW  (the weight edit's own factors),
 *   bias correction c = (‖b‖/‖b′‖ − 1) b′, b′ = b − w r (r·b),
 *   tied lm_head logit scale ‖e_t‖/‖e′_t‖ per embedding row.
 */
import { decodeToFloat64, isFloatDType } from '../core/dtypes';
import { normPreservingFactor, normPreservingFactors, projectColumnsWithNorms, squaredLength } from '../core/norm-preserving';
import { readModelConfig, readShardMap } from '../formats/hf-folder';
import { readExactly, readSafetensorsHeader, type SafetensorsTensorInfo } from '../formats/safetensors';
import { inputScaleName, RECIPE_HOOK_INPUT, recipeSiteRow, type RecipeHookGraph, type RecipeHookValues } from '../model/recipe-hook-graph';
import { scanAblationTargets } from '../model/tensor-roles';
import type { ByteSource } from '../ports/bytes';
import type { ModelFolder } from '../ports/folder';
import type { OnnxTensor } from '../ports/onnx-session';
import { InvalidInputError, UnsupportedModelError } from '../base/errors';
import type { ResolvedAblation } from './ablation-selection';

/** The stored weights one site's numbers need, decoded exactly (float32 holds every BF16/F16/F32 value). */
export interface SiteWeights {
  weight: Float32Array; // [dModel, in] (HF layout: rows = residual dimension)
  inFeatures: number;
  bias: Float32Array | null; // [dModel]
}

export interface HookWeightSource {
  /** The single dense out-projection of a block's attention or MLP; null when there is none or several (MoE). */
  site(component: 'attn' | 'mlp', block: number): Promise<SiteWeights | null>;
  /** Calls `visit` with row chunks of the embedding [rows, dModel], in order. */
  embeddingRows(visit: (rows: Float32Array, count: number) => void): Promise<void>;
}

/** The shape of the graph the values are for (a RecipeHookGraph, or what a baked graph will be). */
export type RecipeHookLayout = Pick<RecipeHookGraph, 'numLayers' | 'dModel' | 'siteCount' | 'tiedEmbeddings'>;

export async function recipeHookValues(layout: RecipeHookLayout, ablation: ResolvedAblation, weights?: HookWeightSource): Promise<RecipeHookValues> {
  const { numLayers, dModel, siteCount } = layout;
  if (ablation.dModel !== dModel) throw new InvalidInputError(`the recipe's directions have ${ablation.dModel} values but the graph's hidden size is ${dModel}`);
  const directions = new Float32Array(siteCount * dModel); // [sites, dModel]
  const siteWeights = new Float32Array(siteCount); // [sites]
  const biasCorrections = new Float32Array(siteCount * dModel); // [sites, dModel]
  const inputScales = new Map<string, Float32Array>();
  const normPreserving = ablation.recipe.method === 'norm-preserving';
  const targets: ['embed' | 'attn' | 'mlp', number][] = [['embed', -1]];
  for (let block = 0; block < numLayers; block++) targets.push(['attn', block], ['mlp', block]);
  for (const [component, block] of targets) {
    const row = recipeSiteRow(component, block);
    const w = ablation.weightFor(component, block);
    siteWeights[row] = w;
    if (w === 0) continue; // direction unused: zeros, like the untouched tensor
    const r = ablation.directionFor(component, block); // [dModel], float32
    directions.set(r, row * dModel);
    if (!normPreserving || component === 'embed') continue;
    if (!weights) throw new InvalidInputError('a norm-preserving recipe needs the model weights to compute its hook inputs');
    const site = await weights.site(component, block);
    if (!site) throw new UnsupportedModelError(`block ${block} ${component}: no single dense out-projection, so a norm-preserving edit cannot be expressed as hooks`);
    const bytes = new Uint8Array(site.weight.buffer, site.weight.byteOffset, site.weight.byteLength);
    const { projection, squaredNorms } = projectColumnsWithNorms(bytes, 'F32', 0, dModel, site.inFeatures, r);
    inputScales.set(inputScaleName(component, block), Float32Array.from(normPreservingFactors(projection, squaredNorms, squaredLength(r), w)));
    if (site.bias) biasCorrections.set(biasCorrection(site.bias, r, w), row * dModel);
  }
  let logitScale: Float32Array | null = null;
  const embedWeight = siteWeights[0];
  if (layout.tiedEmbeddings && normPreserving && embedWeight !== 0) {
    if (!weights) throw new InvalidInputError('a norm-preserving recipe needs the model weights to compute its hook inputs');
    logitScale = await embeddingLogitScale(weights, ablation.directionFor('embed', -1), embedWeight, dModel);
  }
  return { directions, weights: siteWeights, biasCorrections, embedNormPreserving: normPreserving ? 1 : 0, logitScale, inputScales };
}

/** c = (‖b‖/‖b′‖ − 1) b′, b′ = b − w r (r·b), float64. */
function biasCorrection(bias: Float32Array, r: Float32Array, w: number): Float64Array {
  let along = 0;
  let before = 0;
  for (let i = 0; i < bias.length; i++) {
    along += r[i] * bias[i];
    before += bias[i] * bias[i];
  }
  const edited = Float64Array.from(bias, (value, i) => value - w * r[i] * along);
  let after = 0;
  for (const value of edited) after += value * value;
  const factor = normPreservingFactor(before, after);
  return edited.map((value) => (factor - 1) * value);
}

async function embeddingLogitScale(weights: HookWeightSource, r: Float32Array, w: number, dModel: number): Promise<Float32Array> {
  const scales: number[] = [];
  await weights.embeddingRows((rows, count) => {
    for (let t = 0; t < count; t++) {
      let along = 0;
      let before = 0;
      for (let i = 0; i < dModel; i++) {
        const value = rows[t * dModel + i];
        along += r[i] * value;
        before += value * value;
      }
      let after = 0;
      for (let i = 0; i < dModel; i++) {
        const edited = rows[t * dModel + i] - w * r[i] * along;
        after += edited * edited;
      }
      scales.push(normPreservingFactor(before, after));
    }
  });
  return Float32Array.from(scales);
}

/** The values as feeds for a session of `graph` (every input it declared). */
export function recipeHookFeeds(graph: Pick<RecipeHookGraph, 'inputs' | 'siteCount' | 'dModel' | 'sites'>, values: RecipeHookValues, vocabSize?: number): Record<string, OnnxTensor> {
  const feeds: Record<string, OnnxTensor> = {};
  const inFeatures = new Map(graph.sites.filter((site) => site.inputScale).map((site) => [site.inputScale as string, site.inFeatures]));
  for (const name of graph.inputs) {
    if (name === RECIPE_HOOK_INPUT.directions) feeds[name] = { type: 'float32', dims: [graph.siteCount, graph.dModel], data: values.directions };
    else if (name === RECIPE_HOOK_INPUT.weights) feeds[name] = { type: 'float32', dims: [graph.siteCount], data: values.weights };
    else if (name === RECIPE_HOOK_INPUT.biasCorrections) feeds[name] = { type: 'float32', dims: [graph.siteCount, graph.dModel], data: values.biasCorrections };
    else if (name === RECIPE_HOOK_INPUT.embedNormPreserving) feeds[name] = { type: 'float32', dims: [1], data: Float32Array.of(values.embedNormPreserving) };
    else if (name === RECIPE_HOOK_INPUT.logitScale) {
      const scale = values.logitScale ?? (vocabSize !== undefined ? new Float32Array(vocabSize).fill(1) : null);
      if (!scale) throw new InvalidInputError('the tied lm_head logit scale needs the vocabulary size when the recipe does not set it');
      feeds[name] = { type: 'float32', dims: [scale.length], data: scale };
    } else {
      // A site the recipe does not rescale (standard method, weight 0) gets ones.
      const width = inFeatures.get(name);
      const scale = values.inputScales.get(name) ?? (typeof width === 'number' ? new Float32Array(width).fill(1) : null);
      if (!scale) throw new InvalidInputError(`the hook input ${name} has no value and the graph does not say its width`);
      feeds[name] = { type: 'float32', dims: [scale.length], data: scale };
    }
  }
  return feeds;
}

/** Rows of the embedding decoded per visit: bounded memory whatever the vocabulary. */
const EMBEDDING_ROWS_PER_CHUNK = 4096;

/**
 * The hook numbers' weights read from a safetensors model folder (the same tensors `ablate` edits, found by
 * the same roles), decoded on demand: nothing is kept between calls.
 */
export async function safetensorsHookWeights(folder: ModelFolder): Promise<HookWeightSource> {
  const config = await readModelConfig(folder);
  const shardMap = await readShardMap(folder);
  const located = new Map<string, { source: ByteSource; dataStart: number; tensor: SafetensorsTensorInfo }>();
  for (const path of shardMap.shards) {
    const source = await folder.open(path);
    const header = await readSafetensorsHeader(source);
    for (const tensor of header.tensors) located.set(tensor.name, { source, dataStart: header.dataStart, tensor });
  }
  const scan = scanAblationTargets([...located.keys()], config);
  const read = async (name: string, begin = 0, count?: number): Promise<Float32Array> => {
    const { source, dataStart, tensor } = located.get(name)!;
    if (!isFloatDType(tensor.dtype)) throw new UnsupportedModelError(`${name} is ${tensor.dtype}; only F32, F16 and BF16 weights can be read for hooks`);
    const elementBytes = tensor.dtype === 'F32' ? 4 : 2;
    const total = (tensor.dataOffsets[1] - tensor.dataOffsets[0]) / elementBytes;
    const length = count ?? total - begin;
    const bytes = await readExactly(source, dataStart + tensor.dataOffsets[0] + begin * elementBytes, length * elementBytes);
    return Float32Array.from(decodeToFloat64(bytes, tensor.dtype));
  };
  const dModel = config.hiddenSize;
  return {
    async site(component, block) {
      const matches = scan.matches.filter((match) => match.target === component && match.layer === block);
      const weights = matches.filter((match) => !match.isBias);
      const biases = matches.filter((match) => match.isBias);
      if (weights.length !== 1 || biases.length > 1 || weights[0].fusedExperts) return null;
      const shape = located.get(weights[0].name)!.tensor.shape;
      if (shape.length !== 2 || shape[0] !== dModel) return null;
      return { weight: await read(weights[0].name), inFeatures: shape[1], bias: biases.length === 1 ? await read(biases[0].name) : null };
    },
    async embeddingRows(visit) {
      if (!scan.embeddingName) throw new UnsupportedModelError(`${folder.name}: no embedding tensor found`);
      const vocab = located.get(scan.embeddingName)!.tensor.shape[0];
      for (let row = 0; row < vocab; row += EMBEDDING_ROWS_PER_CHUNK) {
        const count = Math.min(EMBEDDING_ROWS_PER_CHUNK, vocab - row);
        visit(await read(scan.embeddingName, row * dModel, count * dModel), count); // [count, dModel]
      }
    },
  };
}
