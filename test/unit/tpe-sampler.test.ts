import { describe, expect, it } from 'vitest';
import { hypervolume2D, paretoFront } from '../../src/core/pareto';
import { parseRecipe } from '../../src/core/recipe';
import {
  defaultDirectionRange,
  defaultSearchSpace,
  parseRange,
  PARAMETER_NAMES,
  recipeFromParameters,
  SearchSpaceError,
  validateSearchSpace,
  type ParameterValues,
  type SearchSpace,
} from '../../src/core/search-space';
import { erf, JointParzen, MotpeSampler, ParzenFloat, RandomSampler, splitGoodAndRest, type FinishedTrial, type Sampler } from '../../src/core/tpe';

const NUM_LAYERS = 8;
const space = (): SearchSpace => defaultSearchSpace(NUM_LAYERS, [2, 6]);

/**
 * A synthetic 2-objective problem on the recipe space with a known Pareto set (ZDT1-like): f1 = normalized
 * direction, f2 = g·(1 − √(f1/g)) where g ≥ 1 is minimal (= 1) only at attn.max = 1.2, attn.peak = 3,
 * embed = 0.25, mlp.min = 0.5 and method "norm-preserving". The true front is f2 = 1 − √f1.
 */
function synthetic(values: ParameterValues): [number, number] {
  const f1 = ((values.direction as number) - 2) / 4;
  const misses =
    ((values['attn.max'] as number) - 1.2) ** 2 / 0.49 +
    ((values['attn.peak'] as number) - 3) ** 2 / 49 +
    ((values.embed as number) - 0.25) ** 2 +
    ((values['mlp.min'] as number) - 0.5) ** 2 +
    (values.method === 'norm-preserving' ? 0 : 0.5);
  const g = 1 + 9 * misses;
  return [f1, g * (1 - Math.sqrt(f1 / g))];
}

function search(sampler: Sampler, budget: number): FinishedTrial[] {
  const history: FinishedTrial[] = [];
  for (let trial = 0; trial < budget; trial++) {
    const parameters = sampler.propose(trial, history);
    history.push({ parameters, values: synthetic(parameters) });
  }
  return history;
}

/** Reference point beyond every value the synthetic problem reaches in its box (f1 ≤ 1, f2 ≤ g ≤ 1 + 9·(1+1+1+1+0.5)). */
const REFERENCE: [number, number] = [1.1, 45];
const hypervolumeOf = (history: readonly FinishedTrial[]) => hypervolume2D(history.map((entry) => entry.values as [number, number]), REFERENCE);

describe('search space', () => {
  it('maps parameters to a valid recipe', () => {
    const values = { ...new RandomSampler(space(), 3).propose(0) };
    const recipe = recipeFromParameters(values);
    expect(parseRecipe(JSON.parse(JSON.stringify(recipe)), NUM_LAYERS)).toEqual(recipe);
    expect(recipeFromParameters({ ...values, directionMode: 'per-layer' }).direction).toBe('per-layer');
  });

  it('derives the direction range from held-out AUC (within 0.05 of the best), widened to a recommendation', () => {
    const layers = [0.5, 0.9, 0.97, 1.0, 0.96, 0.93, 0.99, 0.7].map((auc, index) => ({ index, auc }));
    expect(defaultDirectionRange(layers)).toEqual([2, 6]);
    expect(defaultDirectionRange(layers, 7)).toEqual([2, 7]);
    expect(defaultDirectionRange([{ index: 0, auc: null }, { index: 1, auc: 0.6 }, { index: 2, auc: Number.NaN }])).toEqual([1, 1]);
  });

  it('rejects min > max, out-of-model ranges and unknown choices with the parameter named', () => {
    expect(() => validateSearchSpace({ ...space(), embed: { kind: 'float', low: 1, high: 0.5 } }, NUM_LAYERS)).toThrow(/"embed": range minimum 1 is greater than its maximum 0.5/);
    expect(() => validateSearchSpace({ ...space(), direction: { kind: 'float', low: 1, high: 9 } }, NUM_LAYERS)).toThrow(/"direction".*outside 0..8/);
    expect(() => validateSearchSpace({ ...space(), method: { kind: 'categorical', choices: ['sideways'] } }, NUM_LAYERS)).toThrow(SearchSpaceError);
    expect(() => parseRange('3-1', 'direction')).toThrow(/minimum 3 is greater than its maximum 1/);
    expect(parseRange('1.5-3', 'direction')).toEqual([1.5, 3]);
    expect(validateSearchSpace(space(), NUM_LAYERS)).toBeTruthy();
  });
});

describe('Parzen estimator', () => {
  it('erf matches known values', () => {
    // erf(0.5), erf(1), erf(2) to 9 digits (tables); the approximation is good to 1.5e-7.
    expect(erf(0.5)).toBeCloseTo(0.520499878, 6);
    expect(erf(1)).toBeCloseTo(0.842700793, 6);
    expect(erf(-2)).toBeCloseTo(-0.995322265, 6);
  });

  it('the truncated mixture integrates to 1 over its range', () => {
    const density = ParzenFloat.fit([0.2, 0.25, 0.9], [1, 2, 1], [0, 1], 1);
    const steps = 20000;
    let integral = 0;
    for (let i = 0; i < steps; i++) integral += Math.exp(density.logDensity((i + 0.5) / steps)) / steps;
    expect(integral).toBeCloseTo(1, 5);
  });
});

describe('joint (multivariate) Parzen density', () => {
  /** Two float parameters and one choice free, the rest pinned. */
  const small = (): SearchSpace => {
    const base = space();
    const pinned = Object.fromEntries(PARAMETER_NAMES.map((name) => [name, { kind: 'pinned', value: base[name].kind === 'categorical' ? base[name].choices[0]! : 1 }])) as SearchSpace;
    return { ...pinned, direction: { kind: 'float', low: 2, high: 6 }, embed: { kind: 'float', low: 0, high: 1 }, projection: { kind: 'categorical', choices: ['none', 'harmless-mean', 'biprojected'] } };
  };
  const free = ['direction', 'embed', 'projection'] as const;
  const trial = (direction: number, embed: number, projection: string): FinishedTrial => ({ parameters: { ...({} as ParameterValues), direction, embed, projection }, values: [0, 0] });

  it('integrates to 1 over the box and the choices (midpoint rule)', () => {
    const density = JointParzen.fit(small(), free, [trial(2.5, 0.2, 'none'), trial(5.5, 0.9, 'biprojected'), trial(4, 0.5, 'none')], [2, 1, 0.5], 1);
    const steps = 200;
    let total = 0;
    for (const projection of ['none', 'harmless-mean', 'biprojected']) {
      for (let i = 0; i < steps; i++) {
        for (let j = 0; j < steps; j++) {
          const direction = 2 + (4 * (i + 0.5)) / steps;
          const embed = (j + 0.5) / steps;
          total += Math.exp(density.logDensity({ ...({} as ParameterValues), direction, embed, projection })) * (4 / steps) * (1 / steps);
        }
      }
    }
    expect(Math.abs(total - 1)).toBeLessThan(1e-3);
  });

  it('draws whole points near one observed trial: parameters that went together stay together', () => {
    // Two good trials at opposite corners; a joint draw near one corner in direction is near it in embed too.
    const density = JointParzen.fit(small(), free, Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? trial(2.2, 0.1, 'none') : trial(5.8, 0.9, 'none'))), new Array(20).fill(1), 1e-6);
    let random = 12345;
    const next = () => ((random = (Math.imul(random, 1103515245) + 12345) >>> 0) / 2 ** 32);
    let together = 0;
    let near = 0;
    for (let draw = 0; draw < 400; draw++) {
      const values = density.sample(next);
      const lowDirection = (values.direction as number) < 3;
      const highDirection = (values.direction as number) > 5;
      if (!lowDirection && !highDirection) continue;
      near += 1;
      if ((lowDirection && (values.embed as number) < 0.5) || (highDirection && (values.embed as number) > 0.5)) together += 1;
    }
    expect(near).toBeGreaterThan(300);
    expect(together / near).toBeGreaterThan(0.95);
  });
});

describe('MOTPE sampler', () => {
  it('is deterministic for a seed, trial by trial, and differs across seeds', () => {
    const a = search(new MotpeSampler(space(), { seed: 7 }), 25);
    const b = search(new MotpeSampler(space(), { seed: 7 }), 25);
    const c = search(new MotpeSampler(space(), { seed: 8 }), 25);
    expect(a).toEqual(b);
    expect(a.map((entry) => entry.values)).not.toEqual(c.map((entry) => entry.values));
    // A resumed search proposes what the uninterrupted one did: trial 20 from the first 20 trials alone.
    expect(new MotpeSampler(space(), { seed: 7 }).propose(20, a.slice(0, 20))).toEqual(a[20]!.parameters);
  });

  it('keeps pinned parameters and stays inside the ranges', () => {
    const pinned: SearchSpace = { ...space(), method: { kind: 'pinned', value: 'standard' }, embed: { kind: 'pinned', value: 0 } };
    for (const entry of search(new MotpeSampler(pinned, { seed: 1 }), 30)) {
      expect(entry.parameters.method).toBe('standard');
      expect(entry.parameters.embed).toBe(0);
      for (const name of PARAMETER_NAMES) {
        const spec = pinned[name];
        if (spec.kind === 'float') {
          expect(entry.parameters[name]).toBeGreaterThanOrEqual(spec.low);
          expect(entry.parameters[name]).toBeLessThanOrEqual(spec.high);
        }
      }
    }
  });

  it('the good set is the first front, cut by hypervolume when the front is larger', () => {
    const at = (values: [number, number]): FinishedTrial => ({ parameters: {} as ParameterValues, values });
    // 20 trials → ⌈0.1·20⌉ = 2 good. Front: (0,10) (5,5) (10,0) and (4.9, 5.1)… the extreme corners add most area.
    const history = [at([0, 10]), at([5, 5]), at([10, 0]), ...Array.from({ length: 17 }, (_, i) => at([6 + i, 6 + i]))];
    const { good, rest } = splitGoodAndRest(history);
    expect(good).toHaveLength(2);
    expect(rest).toHaveLength(18);
    expect(good.every((entry) => paretoFront(history.map((h) => h.values)).includes(history.indexOf(entry)))).toBe(true);
  });

  it('finds a better front than random search at equal budget on a known 2-objective problem (5 seeds)', () => {
    const budget = 60;
    const seeds = [0, 1, 2, 3, 4];
    const tpe = seeds.map((seed) => hypervolumeOf(search(new MotpeSampler(space(), { seed }), budget)));
    const random = seeds.map((seed) => hypervolumeOf(search(new RandomSampler(space(), seed), budget)));
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    expect(mean(tpe)).toBeGreaterThan(mean(random));
    // And it wins on most seeds, not through one lucky run.
    expect(tpe.filter((value, i) => value > random[i]!).length).toBeGreaterThanOrEqual(4);
  });
});
