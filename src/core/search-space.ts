/**
 * The space the recipe search samples from: one named parameter per recipe number or choice, each a float
 * range, a set of choices, or pinned to one value. A point of the space (a parameter assignment) maps to a
 * Recipe with recipeFromParameters; the sampler (tpe.ts) only ever sees the parameters.
 *
 * Parameters: direction mode ('index' | 'per-layer'), direction (fractional hidden-state index), method,
 * projection, embed weight, and heretic's kernel {max, peak, min, distance} for attn and for mlp. Defaults
 * follow heretic's ranges (max 0.8–1.5, min 0–1, distance 1 to L−1) except the direction range, which is
 * data-driven (defaultDirectionRange): heretic's fixed 40–90 % of depth misses models whose refusal is carried
 * by the last layers.
 */
import { RECIPE_METHODS, RECIPE_PROJECTIONS, type Recipe, type RecipeMethod, type RecipeProjection } from './recipe';

export type FloatParameter = { kind: 'float'; low: number; high: number };
export type CategoricalParameter = { kind: 'categorical'; choices: readonly string[] };
export type PinnedParameter = { kind: 'pinned'; value: number | string };
export type ParameterSpec = FloatParameter | CategoricalParameter | PinnedParameter;

export const DIRECTION_MODES = ['index', 'per-layer'] as const;

/** Every parameter of the space, in sampling order. */
export const PARAMETER_NAMES = [
  'directionMode',
  'direction',
  'method',
  'projection',
  'embed',
  'attn.max',
  'attn.peak',
  'attn.min',
  'attn.distance',
  'mlp.max',
  'mlp.peak',
  'mlp.min',
  'mlp.distance',
] as const;
export type ParameterName = (typeof PARAMETER_NAMES)[number];

const CATEGORICAL: Partial<Record<ParameterName, readonly string[]>> = {
  directionMode: DIRECTION_MODES,
  method: RECIPE_METHODS,
  projection: RECIPE_PROJECTIONS,
};

export type SearchSpace = Record<ParameterName, ParameterSpec>;
export type ParameterValues = Record<ParameterName, number | string>;

/** A bad search space: `parameter` names the offending entry. */
export class SearchSpaceError extends Error {
  override name = 'SearchSpaceError';
  constructor(
    readonly parameter: string,
    detail: string,
  ) {
    super(`search parameter "${parameter}": ${detail}`);
  }
}

/** AUC within this of the best layer's counts as "as good" for the default direction range. */
export const DIRECTION_AUC_MARGIN = 0.05;

/**
 * The default direction range [A, B]: the hull of the hidden-state indices whose held-out AUC is within
 * DIRECTION_AUC_MARGIN of the best, widened to include `recommended` (the layer a behavioural sweep chose)
 * when given. Layers with a non-finite AUC (no direction) are ignored.
 */
export function defaultDirectionRange(layers: readonly { index: number; auc: number | null }[], recommended?: number): [number, number] {
  const scored = layers.filter((layer): layer is { index: number; auc: number } => layer.auc !== null && Number.isFinite(layer.auc));
  if (scored.length === 0) throw new SearchSpaceError('direction', 'no layer has a finite AUC to derive the range from; give the range explicitly');
  const best = Math.max(...scored.map((layer) => layer.auc));
  const near = scored.filter((layer) => layer.auc >= best - DIRECTION_AUC_MARGIN).map((layer) => layer.index);
  if (recommended !== undefined) near.push(recommended);
  return [Math.min(...near), Math.max(...near)];
}

/** heretic's default ranges for a model with `numLayers` blocks and the given direction range. */
export function defaultSearchSpace(numLayers: number, directionRange: readonly [number, number]): SearchSpace {
  const lastBlock = Math.max(0, numLayers - 1);
  const kernel = {
    max: { kind: 'float', low: 0.8, high: 1.5 },
    peak: { kind: 'float', low: 0, high: lastBlock },
    min: { kind: 'float', low: 0, high: 1 },
    distance: { kind: 'float', low: Math.min(1, lastBlock), high: lastBlock },
  } as const;
  return {
    directionMode: { kind: 'categorical', choices: DIRECTION_MODES },
    direction: { kind: 'float', low: directionRange[0], high: directionRange[1] },
    method: { kind: 'categorical', choices: RECIPE_METHODS },
    projection: { kind: 'categorical', choices: RECIPE_PROJECTIONS },
    embed: { kind: 'float', low: 0, high: 1 },
    'attn.max': kernel.max,
    'attn.peak': kernel.peak,
    'attn.min': kernel.min,
    'attn.distance': kernel.distance,
    'mlp.max': kernel.max,
    'mlp.peak': kernel.peak,
    'mlp.min': kernel.min,
    'mlp.distance': kernel.distance,
  };
}

/**
 * The default space for an analysed model: the direction range from held-out AUC (or `directionRange`), the
 * methods the evaluator can run, projections only when harmless means exist, and per-layer directions only
 * when every hidden-state index has one (a zero row means the prompt sets share their mean there). Returns
 * notes that say what was left out and why.
 */
export function searchSpaceForAnalysis(
  numLayers: number,
  layers: readonly { index: number; auc: number | null; degenerate?: boolean }[],
  directions: readonly ArrayLike<number>[], // [L + 1] × [dModel]
  options: { methods: readonly RecipeMethod[]; harmlessMeans: boolean; directionRange?: [number, number] },
): { space: SearchSpace; notes: string[] } {
  const notes: string[] = [];
  const range = options.directionRange ?? defaultDirectionRange(layers.filter((layer) => !layer.degenerate));
  if (!options.directionRange) notes.push(`direction range ${range[0]}–${range[1]}: the indices whose held-out AUC is within ${DIRECTION_AUC_MARGIN} of the best`);
  const space = defaultSearchSpace(numLayers, range);
  space.method = options.methods.length === 1 ? { kind: 'pinned', value: options.methods[0]! } : { kind: 'categorical', choices: options.methods };
  if (!options.harmlessMeans) {
    space.projection = { kind: 'pinned', value: 'none' };
    notes.push('projections left out of the search: no harmless means');
  }
  const zeroRows = directions.flatMap((row, index) => (Array.prototype.every.call(row, (value: number) => value === 0) ? [index] : []));
  if (zeroRows.length > 0) {
    space.directionMode = { kind: 'pinned', value: 'index' };
    notes.push(`per-layer directions left out of the search: index ${zeroRows.join(', ')} has no direction (the two prompt sets have the same mean there)`);
  }
  return { space, notes };
}

/**
 * Checks a space against the model: ranges with low ≤ high and finite ends, choices among the allowed values,
 * direction within 0..L, peaks within the blocks, weights and distances ≥ 0. Throws SearchSpaceError.
 */
export function validateSearchSpace(space: SearchSpace, numLayers: number): SearchSpace {
  for (const name of PARAMETER_NAMES) {
    const spec = space[name];
    if (!spec) throw new SearchSpaceError(name, 'missing');
    const allowed = CATEGORICAL[name];
    if (allowed) {
      const values = spec.kind === 'categorical' ? spec.choices : spec.kind === 'pinned' ? [spec.value] : null;
      if (!values) throw new SearchSpaceError(name, `takes one of ${allowed.join(', ')}, not a range`);
      if (values.length === 0) throw new SearchSpaceError(name, 'needs at least one choice');
      for (const value of values) {
        if (typeof value !== 'string' || !allowed.includes(value)) throw new SearchSpaceError(name, `unknown value ${JSON.stringify(value)} (expected ${allowed.join(', ')})`);
      }
      continue;
    }
    const [low, high] = spec.kind === 'float' ? [spec.low, spec.high] : spec.kind === 'pinned' ? [spec.value, spec.value] : [NaN, NaN];
    if (spec.kind === 'categorical') throw new SearchSpaceError(name, 'is a number: give a range or a pinned value');
    if (typeof low !== 'number' || typeof high !== 'number' || !Number.isFinite(low) || !Number.isFinite(high)) {
      throw new SearchSpaceError(name, `needs finite numbers, got ${JSON.stringify(low)}..${JSON.stringify(high)}`);
    }
    if (low > high) throw new SearchSpaceError(name, `range minimum ${low} is greater than its maximum ${high}`);
    const [minimum, maximum] = name === 'direction' ? [0, numLayers] : name.endsWith('.peak') ? [0, Math.max(0, numLayers - 1)] : [0, Infinity];
    if (low < minimum || high > maximum) {
      throw new SearchSpaceError(name, `range ${low}..${high} is outside ${minimum}..${maximum === Infinity ? '∞' : maximum}${name === 'direction' ? ` (the model has ${numLayers} blocks)` : ''}`);
    }
  }
  return space;
}

/** The recipe a parameter assignment describes (direction unused when the mode is 'per-layer'). */
export function recipeFromParameters(values: ParameterValues): Recipe {
  const kernel = (component: 'attn' | 'mlp') => ({
    max: values[`${component}.max`] as number,
    peak: values[`${component}.peak`] as number,
    min: values[`${component}.min`] as number,
    distance: values[`${component}.distance`] as number,
  });
  return {
    method: values.method as RecipeMethod,
    direction: values.directionMode === 'per-layer' ? 'per-layer' : (values.direction as number),
    projection: values.projection as RecipeProjection,
    components: { embed: values.embed as number, attn: kernel('attn'), mlp: kernel('mlp') },
  };
}

/** A uniformly random point of the space (pinned parameters keep their value). */
export function sampleUniform(space: SearchSpace, random: () => number): ParameterValues {
  const values = {} as ParameterValues;
  for (const name of PARAMETER_NAMES) {
    const spec = space[name];
    values[name] = spec.kind === 'pinned' ? spec.value : spec.kind === 'categorical' ? spec.choices[Math.floor(random() * spec.choices.length)]! : spec.low + random() * (spec.high - spec.low);
  }
  return values;
}

/**
 * Parses a range "A-B" or "A:B" (e.g. the CLI's --direction-range 1.5-3) into [A, B]; A > B is an error.
 * Negative numbers are not meaningful for any parameter, so '-' is an unambiguous separator.
 */
export function parseRange(text: string, parameter: string): [number, number] {
  const match = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*[-:]\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*$/i.exec(text);
  if (!match) throw new SearchSpaceError(parameter, `range ${JSON.stringify(text)} is not of the form A-B (two non-negative numbers)`);
  const low = Number(match[1]);
  const high = Number(match[2]);
  if (low > high) throw new SearchSpaceError(parameter, `range minimum ${low} is greater than its maximum ${high}`);
  return [low, high];
}
