/**
 * The search space of `abliterate optimize` from the analysis and the user's --direction-range, --range and
 * --pin options.
 */
import {
  parseRange,
  searchSpaceForAnalysis,
  PARAMETER_NAMES,
  SearchSpaceError,
  validateSearchSpace,
  type ParameterName,
  type ParameterSpec,
  type SearchSpace,
} from '../core/search-space';
import type { RecipeMethod } from '../core/recipe';
import { InvalidInputError } from '../base/errors';

export interface SpaceOverrides {
  directionRange?: [number, number];
  specs: Map<ParameterName, ParameterSpec>;
}

const CATEGORICAL_NAMES: readonly ParameterName[] = ['directionMode', 'method', 'projection'];

function parameterName(text: string, option: string): ParameterName {
  if (!(PARAMETER_NAMES as readonly string[]).includes(text)) throw new InvalidInputError(`${option} ${text}: unknown search parameter (one of ${PARAMETER_NAMES.join(', ')})`);
  return text as ParameterName;
}

function assignment(entry: string, option: string): [ParameterName, string] {
  const at = entry.indexOf('=');
  if (at < 0) throw new InvalidInputError(`${option} ${entry}: expected NAME=VALUE`);
  return [parameterName(entry.slice(0, at).trim(), option), entry.slice(at + 1).trim()];
}

/** Parses --direction-range A-B, --range NAME=A-B (or NAME=a,b for a choice) and --pin NAME=VALUE. */
export function parseSpaceOverrides(directionRange: string | undefined, ranges: readonly string[] = [], pins: readonly string[] = []): SpaceOverrides {
  const specs = new Map<ParameterName, ParameterSpec>();
  try {
    for (const entry of ranges) {
      const [name, text] = assignment(entry, '--range');
      specs.set(name, CATEGORICAL_NAMES.includes(name) ? { kind: 'categorical', choices: text.split(',').map((choice) => choice.trim()) } : { kind: 'float', ...toLowHigh(parseRange(text, name)) });
    }
    for (const entry of pins) {
      const [name, text] = assignment(entry, '--pin');
      const value = CATEGORICAL_NAMES.includes(name) ? text : Number(text);
      if (typeof value === 'number' && (text === '' || !Number.isFinite(value))) throw new InvalidInputError(`--pin ${entry}: ${name} takes a number`);
      specs.set(name, { kind: 'pinned', value });
    }
    return { ...(directionRange !== undefined ? { directionRange: parseRange(directionRange, 'direction') } : {}), specs };
  } catch (error) {
    if (error instanceof SearchSpaceError) throw new InvalidInputError(error.message);
    throw error;
  }
}

const toLowHigh = ([low, high]: [number, number]) => ({ low, high });

/** The default space for the analysis (core's searchSpaceForAnalysis) with the overrides applied, checked. */
export function buildSpace(
  numLayers: number,
  layers: readonly { index: number; auc: number | null; degenerate?: boolean }[],
  directions: readonly Float32Array[], // [L + 1] × [dModel]
  overrides: SpaceOverrides,
  /** The methods the evaluator's hook session can run (RecipeHookModelSource.methods). */
  methods: readonly RecipeMethod[] = ['standard'],
): { space: SearchSpace; notes: string[] } {
  try {
    const { space, notes } = searchSpaceForAnalysis(numLayers, layers, directions, {
      methods,
      harmlessMeans: true,
      ...(overrides.directionRange ? { directionRange: overrides.directionRange } : {}),
    });
    if (!methods.includes('norm-preserving')) notes.push('the norm-preserving method is left out of the search: it needs the safetensors weights and out-projections that take an input scaling');
    for (const [name, spec] of overrides.specs) space[name] = spec;
    const method = space.method;
    const asked = method.kind === 'categorical' ? method.choices : method.kind === 'pinned' ? [method.value] : [];
    const unavailable = asked.filter((value) => !(methods as readonly unknown[]).includes(value));
    if (unavailable.length > 0) throw new InvalidInputError(`search parameter "method": ${unavailable.join(', ')} cannot be evaluated on this model (it offers ${methods.join(', ')})`);
    return { space: validateSearchSpace(space, numLayers), notes };
  } catch (error) {
    if (error instanceof SearchSpaceError) throw new InvalidInputError(error.message);
    throw error;
  }
}
