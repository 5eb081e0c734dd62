/**
 * The ablation recipe: the ONE object that says what an ablation does, shared by chat, evaluation, search,
 * the hook graph and the weight export (docs/definitions.md "Ablation recipe"). Pure data and math here;
 * reading `recipe.json` from a file lives in the formats layer, which rewraps RecipeError with the file name.
 *
 * A recipe = a direction choice (a fractional hidden-state index, or one row per block), an optional
 * projection of it against the harmless means, a method, and a weight per component and block. The seed
 * recipe (direction N, weight 1 on embed/attn/mlp, standard, no projection) is the plain weight
 * orthogonalization; weight 0 leaves a tensor byte-identical.
 */

/** The three groups of tensors that write into the residual stream. */
export type AblationComponent = 'embed' | 'attn' | 'mlp';
export const ABLATION_COMPONENTS: readonly AblationComponent[] = ['embed', 'attn', 'mlp'];

export type RecipeMethod = 'standard' | 'norm-preserving';
export const RECIPE_METHODS: readonly RecipeMethod[] = ['standard', 'norm-preserving'];

export type RecipeProjection = 'none' | 'harmless-mean' | 'biprojected';
export const RECIPE_PROJECTIONS: readonly RecipeProjection[] = ['none', 'harmless-mean', 'biprojected'];

/** 'reference': the ablation direction is made orthogonal to the reference (agent-style) direction, so the edit cannot touch it. */
export type RecipeProtect = 'none' | 'reference';
export const RECIPE_PROTECTS: readonly RecipeProtect[] = ['none', 'reference'];

/**
 * heretic's per-block weight kernel: δ = |block − peak|; δ > distance → 0 (untouched);
 * else max + (δ / distance)(min − max). With distance 0 only a block exactly at the peak gets `max`.
 */
export interface WeightKernel {
  max: number;
  peak: number;
  min: number;
  distance: number;
}

export type ComponentWeight = number | WeightKernel;

export interface Recipe {
  method: RecipeMethod;
  /** A hidden-state index in [0, L] (fractional interpolates two rows), or 'per-layer' (block b uses row b + 1). */
  direction: number | 'per-layer';
  projection: RecipeProjection;
  /** Omitted component = weight 0 (untouched). `embed` is a constant: it has no block. */
  components: { embed?: number; attn?: ComponentWeight; mlp?: ComponentWeight };
  /** Optional; absent = 'none'. 'reference' needs the reference direction(s) when the recipe is resolved. */
  protect?: RecipeProtect;
}

/** Every recipe field with its default and meaning: the one place `--help`, the README and the UI read. */
export const RECIPE_FIELDS = {
  method: {
    default: 'standard' as RecipeMethod,
    values: RECIPE_METHODS,
    description:
      'standard: v ← v − w·r(r·v) for every vector v a target writes into the residual (a weight column, an embedding row, a bias); ' +
      'norm-preserving: the same, then rescaled to the norm v had, so only the direction of each written vector changes.',
  },
  direction: {
    default: null,
    description:
      'A hidden-state index 0..L (0 = embedding output); a fraction interpolates the two neighbouring rows before normalizing. ' +
      "'per-layer': a target in block b uses row b + 1 of the directions file, the embedding row 0.",
  },
  projection: {
    default: 'none' as RecipeProjection,
    values: RECIPE_PROJECTIONS,
    description:
      'none: the direction as found; harmless-mean: every row made orthogonal to that layer’s harmless mean before choosing (heretic); ' +
      'biprojected: choose first, then for each target make it orthogonal to the harmless mean of the layer it writes to (grimjim). ' +
      'Both need harmless_mean in the directions file.',
  },
  components: {
    default: {},
    description:
      'Weight per component: embed (a number), attn and mlp (a number, or a kernel {max, peak, min, distance} over blocks). ' +
      'An omitted component is untouched.',
  },
  protect: {
    default: 'none' as RecipeProtect,
    values: RECIPE_PROTECTS,
    description:
      'none: the direction as chosen; reference: after the projection, each target’s direction is made orthogonal to the reference ' +
      '(agent-style) direction of the layer it writes to (or the one imported reference direction) and renormalized, so the edit ' +
      'leaves every written vector’s component along the reference unchanged. Needs a reference contrast or direction.',
  },
} as const;

/** A malformed recipe: `field` is the JSON path of the offending field ("components.attn.distance"). */
export class RecipeError extends Error {
  override name = 'RecipeError';
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`recipe field "${field}": ${detail}`);
  }
}

const TOP_LEVEL_FIELDS = new Set(['method', 'direction', 'projection', 'components', 'protect']);
const KERNEL_FIELDS = ['max', 'peak', 'min', 'distance'] as const;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function finiteNumber(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new RecipeError(field, `must be a finite number, got ${describe(value)}`);
  return value;
}

function describe(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value) ?? value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new RecipeError(field, `unknown value ${describe(value)} (expected ${allowed.map((a) => `"${a}"`).join(', ')})`);
  }
  return value as T;
}

function parseWeight(value: unknown, field: string, kernelAllowed: boolean): ComponentWeight {
  if (typeof value === 'number') return finiteNumber(value, field);
  if (!kernelAllowed) throw new RecipeError(field, `must be a number, got ${describe(value)}`);
  if (!isPlainObject(value)) throw new RecipeError(field, `must be a number or a kernel {max, peak, min, distance}, got ${describe(value)}`);
  for (const key of Object.keys(value)) {
    if (!(KERNEL_FIELDS as readonly string[]).includes(key)) throw new RecipeError(`${field}.${key}`, 'unknown field');
  }
  const kernel = {} as WeightKernel;
  for (const key of KERNEL_FIELDS) {
    if (!(key in value)) throw new RecipeError(`${field}.${key}`, 'missing');
    kernel[key] = finiteNumber(value[key], `${field}.${key}`);
  }
  if (kernel.distance < 0) throw new RecipeError(`${field}.distance`, `must be ≥ 0, got ${kernel.distance}`);
  return kernel;
}

/**
 * Validates a parsed recipe.json value, filling defaults. `numLayers` (L, when known) bounds the direction
 * index to [0, L]. Throws RecipeError naming the first bad field.
 */
export function parseRecipe(value: unknown, numLayers?: number): Recipe {
  if (!isPlainObject(value)) throw new RecipeError('(recipe)', `must be a JSON object, got ${describe(value)}`);
  for (const key of Object.keys(value)) if (!TOP_LEVEL_FIELDS.has(key)) throw new RecipeError(key, 'unknown field');
  const method = value.method === undefined ? RECIPE_FIELDS.method.default : oneOf(value.method, RECIPE_METHODS, 'method');
  const projection = value.projection === undefined ? RECIPE_FIELDS.projection.default : oneOf(value.projection, RECIPE_PROJECTIONS, 'projection');
  if (value.direction === undefined) throw new RecipeError('direction', "missing (a hidden-state index or 'per-layer')");
  let direction: number | 'per-layer';
  if (value.direction === 'per-layer') direction = 'per-layer';
  else if (typeof value.direction === 'number') {
    direction = finiteNumber(value.direction, 'direction');
    if (direction < 0 || (numLayers !== undefined && direction > numLayers)) {
      throw new RecipeError('direction', `${direction} is out of range (0..${numLayers ?? 'L'})`);
    }
  } else throw new RecipeError('direction', `must be a number or "per-layer", got ${describe(value.direction)}`);
  const components: Recipe['components'] = {};
  if (value.components !== undefined) {
    if (!isPlainObject(value.components)) throw new RecipeError('components', `must be an object, got ${describe(value.components)}`);
    for (const [key, weight] of Object.entries(value.components)) {
      if (!(ABLATION_COMPONENTS as readonly string[]).includes(key)) throw new RecipeError(`components.${key}`, 'unknown component (expected embed, attn, mlp)');
      if (key === 'embed') components.embed = parseWeight(weight, 'components.embed', false) as number;
      else components[key as 'attn' | 'mlp'] = parseWeight(weight, `components.${key}`, true);
    }
  }
  const recipe: Recipe = { method, direction, projection, components };
  if (value.protect !== undefined) recipe.protect = oneOf(value.protect, RECIPE_PROTECTS, 'protect');
  return recipe;
}

/** The canonical recipe.json value: every field present (protect only when on), components in a fixed order. */
export function recipeToJson(recipe: Recipe): Record<string, unknown> {
  const components: Record<string, ComponentWeight> = {};
  for (const component of ABLATION_COMPONENTS) {
    const weight = recipe.components[component];
    if (weight !== undefined) components[component] = typeof weight === 'number' ? weight : { ...weight };
  }
  const json: Record<string, unknown> = { method: recipe.method, direction: recipe.direction, projection: recipe.projection, components };
  // Written only when on, so an unprotected recipe's JSON stays what it was before the field existed.
  if (recipe.protect && recipe.protect !== 'none') json.protect = recipe.protect;
  return json;
}

/** The seed recipe the old flags describe: `--layer N --scale α --targets T --layers A-B`. */
export function recipeFromShorthand(options: {
  layer: number;
  scale?: number;
  targets?: readonly AblationComponent[];
  /** Inclusive block range for attn/mlp (all blocks when absent): a flat kernel of weight α over exactly A..B. */
  layers?: readonly [number, number];
}): Recipe {
  const scale = options.scale ?? 1;
  const targets = options.targets ?? ABLATION_COMPONENTS;
  const blockWeight: ComponentWeight = options.layers
    ? { max: scale, min: scale, peak: (options.layers[0] + options.layers[1]) / 2, distance: (options.layers[1] - options.layers[0]) / 2 }
    : scale;
  const components: Recipe['components'] = {};
  if (targets.includes('embed')) components.embed = scale;
  if (targets.includes('attn')) components.attn = blockWeight;
  if (targets.includes('mlp')) components.mlp = blockWeight;
  return { method: 'standard', direction: options.layer, projection: 'none', components };
}

/** heretic's kernel at one block (see WeightKernel). */
export function kernelWeight(kernel: WeightKernel, block: number): number {
  const delta = Math.abs(block - kernel.peak);
  if (delta > kernel.distance) return 0;
  if (kernel.distance === 0) return kernel.max; // δ = 0 here: the limit of the formula at its peak
  return kernel.max + (delta / kernel.distance) * (kernel.min - kernel.max);
}

/** The weight w of a component in a block (block ignored for embed). 0 = the tensor stays byte-identical. */
export function componentWeight(recipe: Recipe, component: AblationComponent, block: number): number {
  const weight = recipe.components[component];
  if (weight === undefined) return 0;
  return typeof weight === 'number' ? weight : kernelWeight(weight, block);
}

/** Thrown when the recipe cannot be resolved against the directions it is given (missing means, bad row). */
export class RecipeDirectionError extends Error {
  override name = 'RecipeDirectionError';
}

function normalizeInPlace(vector: Float64Array, what: string): Float64Array {
  let sumOfSquares = 0;
  for (let i = 0; i < vector.length; i++) sumOfSquares += vector[i] * vector[i];
  const norm = Math.sqrt(sumOfSquares);
  if (!(norm > 0) || !Number.isFinite(norm)) throw new RecipeDirectionError(`${what} has zero or non-finite length`);
  for (let i = 0; i < vector.length; i++) vector[i] /= norm;
  return vector;
}

/** v − (v·û)û for unit û, normalized. */
function orthogonalizedUnit(vector: ArrayLike<number>, unit: Float64Array, what: string): Float64Array {
  let dot = 0;
  for (let i = 0; i < unit.length; i++) dot += vector[i] * unit[i];
  const out = new Float64Array(unit.length);
  for (let i = 0; i < unit.length; i++) out[i] = vector[i] - dot * unit[i];
  return normalizeInPlace(out, what);
}

/**
 * The unit direction every target uses, in float64: `forTarget('embed', -1)`, `forTarget('attn', b)`.
 * `directions` [L+1][d] are the per-layer refusal directions (any length; normalized here), `harmlessMeans`
 * [L+1][d] the train-split harmless means (required unless projection is 'none'), `reference` the reference
 * (agent-style) directions, [L+1][d] per layer or [1][d] one for every layer (required when protect is
 * 'reference'). Protection comes last, after the projection: r ← normalize(r − (r·ĉ)ĉ) with ĉ the reference of
 * the hidden-state index the target writes into, so r·ĉ = 0 to rounding whatever the projection did.
 */
export interface ResolvedDirections {
  forTarget(component: AblationComponent, block: number): Float64Array; // [d], unit
}

export function resolveRecipeDirections(
  recipe: Recipe,
  directions: readonly ArrayLike<number>[], // [L+1][dModel]
  harmlessMeans?: readonly ArrayLike<number>[], // [L+1][dModel]
  reference?: readonly ArrayLike<number>[], // [L+1][dModel] or [1][dModel]
): ResolvedDirections {
  const numIndices = directions.length;
  if (numIndices === 0) throw new RecipeDirectionError('no direction rows');
  const dModel = directions[0].length;
  const referenceUnits = recipe.protect === 'reference' ? referenceRows(reference, numIndices, dModel) : null;
  if (recipe.projection !== 'none') {
    if (!harmlessMeans) throw new RecipeDirectionError(`projection "${recipe.projection}" needs harmless_mean (re-run analyze to write it)`);
    if (harmlessMeans.length !== numIndices) {
      throw new RecipeDirectionError(`harmless_mean has ${harmlessMeans.length} rows but the directions have ${numIndices}`);
    }
  }
  const meanUnits = harmlessMeans && recipe.projection !== 'none'
    ? harmlessMeans.map((row, i) => normalizeInPlace(Float64Array.from(row), `harmless_mean row ${i}`))
    : null;
  directions.forEach((row, i) => {
    if (row.length !== dModel) throw new RecipeDirectionError(`direction row ${i} has ${row.length} entries, expected ${dModel}`);
  });
  // Rows are normalized when first used: a row the recipe never reads (e.g. a zero embedding row) is no error.
  // harmless-mean: every row made orthogonal to its own layer's harmless mean before the choice.
  const rows = new Map<number, Float64Array>();
  const rowFor = (index: number): Float64Array => {
    if (index < 0 || index >= numIndices) throw new RecipeDirectionError(`direction row ${index} is outside 0..${numIndices - 1}`);
    let row = rows.get(index);
    if (!row) {
      row = recipe.projection === 'harmless-mean' && meanUnits
        ? orthogonalizedUnit(directions[index], meanUnits[index], `direction row ${index} after removing the harmless mean`)
        : normalizeInPlace(Float64Array.from(directions[index]), `direction row ${index}`);
      rows.set(index, row);
    }
    return row;
  };
  let single: Float64Array | null = null;
  if (recipe.direction !== 'per-layer') {
    const x = recipe.direction;
    if (x < 0 || x > numIndices - 1) throw new RecipeDirectionError(`direction ${x} is outside 0..${numIndices - 1}`);
    const low = Math.floor(x);
    const fraction = x - low;
    const a = rowFor(low);
    if (fraction === 0) single = a;
    else {
      const b = rowFor(low + 1);
      const mixed = new Float64Array(dModel);
      for (let i = 0; i < dModel; i++) mixed[i] = a[i] + fraction * (b[i] - a[i]);
      single = normalizeInPlace(mixed, `direction ${x} (interpolated)`);
    }
  }
  const cache = new Map<number, Float64Array>();
  return {
    forTarget(component, block) {
      // The hidden-state index the target writes into: embedding → 0, block b → b + 1.
      const index = component === 'embed' ? 0 : block + 1;
      const cached = cache.get(index);
      if (cached) return cached;
      let r = single ?? rowFor(index);
      if (recipe.projection === 'biprojected' && meanUnits) {
        if (index >= meanUnits.length) throw new RecipeDirectionError(`no harmless_mean row ${index} for block ${block}`);
        r = orthogonalizedUnit(r, meanUnits[index], `direction for block ${block} after biprojection`);
      }
      if (referenceUnits) {
        const unit = referenceUnits.length === 1 ? referenceUnits[0] : referenceUnits[index];
        const what = component === 'embed' ? 'the embedding' : `block ${block}`;
        let along = 0;
        for (let i = 0; i < dModel; i++) along += r[i] * unit[i];
        // r is unit: what is left after removing ĉ has length √(1 − (r·ĉ)²); too little of it is only rounding noise.
        if (1 - along * along < PROTECT_MIN_REMAINDER ** 2) throw new RecipeDirectionError(`the direction for ${what} is parallel to the reference; protecting it would leave nothing to ablate`);
        r = orthogonalizedUnit(r, unit, `direction for ${what} after protecting the reference`);
      }
      cache.set(index, r);
      return r;
    },
  };
}

/** Smallest length r − (r·ĉ)ĉ may keep (r unit) for protection to leave a meaningful direction. */
const PROTECT_MIN_REMAINDER = 1e-6;

function referenceRows(reference: readonly ArrayLike<number>[] | undefined, numIndices: number, dModel: number): Float64Array[] {
  if (!reference || reference.length === 0) {
    throw new RecipeDirectionError('protect "reference" needs a reference direction (a reference contrast C/D, or a reference direction file)');
  }
  if (reference.length !== 1 && reference.length !== numIndices) {
    throw new RecipeDirectionError(`the reference has ${reference.length} rows; expected 1 or ${numIndices} (one per hidden-state index)`);
  }
  return reference.map((row, i) => {
    if (row.length !== dModel) throw new RecipeDirectionError(`reference row ${i} has ${row.length} entries, expected ${dModel}`);
    return normalizeInPlace(Float64Array.from(row), `reference row ${i}`);
  });
}

/** Cosine of two vectors in float64 (0 when either is zero). */
function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? dot / Math.sqrt(aa * bb) : 0;
}

export interface ReferenceOverlap {
  /** Hidden-state index the targets write into (0 = embedding, b + 1 = block b). */
  index: number;
  /** cos(target direction, reference) without protection, and with it (≈ 0). */
  before: number;
  after: number;
}

/**
 * How much each target's ablation direction overlaps the reference, before and after protection: what the
 * cosine plot shows when protection is on. The recipe's own protect field is ignored (both are computed).
 */
export function referenceOverlap(
  recipe: Recipe,
  directions: readonly ArrayLike<number>[], // [L+1][dModel]
  harmlessMeans: readonly ArrayLike<number>[] | undefined,
  reference: readonly ArrayLike<number>[], // [L+1][dModel] or [1][dModel]
): ReferenceOverlap[] {
  const unprotected = resolveRecipeDirections({ ...recipe, protect: 'none' }, directions, harmlessMeans);
  const protectedDirections = resolveRecipeDirections({ ...recipe, protect: 'reference' }, directions, harmlessMeans, reference);
  return directions.map((_, index) => {
    const [component, block] = index === 0 ? (['embed', -1] as const) : (['attn', index - 1] as const);
    const unit = reference.length === 1 ? reference[0] : reference[index];
    return {
      index,
      before: cosine(unprotected.forTarget(component, block), unit),
      after: cosine(protectedDirections.forTarget(component, block), unit),
    };
  });
}
