/**
 * The Parzen (kernel) densities of the TPE sampler (tpe.ts): per parameter (ParzenFloat, ParzenCategorical)
 * and joint over all free parameters (JointParzen, the multivariate sampler). Each is fitted on a set of
 * finished trials with per-trial weights and a prior component, and can be sampled and evaluated.
 */
import type { FinishedTrial } from './tpe';
import { PARAMETER_NAMES, type ParameterName, type ParameterValues, type SearchSpace } from './search-space';

/** Optuna's multivariate bandwidth: 0.2 · n^(−1/(d+4)) · range (Scott's rule). */
const MULTIVARIATE_SIGMA0 = 0.2;

/**
 * A joint Parzen density over the free parameters: one kernel per observed trial (its weight, a product of a
 * truncated normal per float parameter and a categorical per choice parameter) plus a prior kernel (the
 * middle of every range with the whole range as sigma, uniform choices). Float bandwidths are Optuna's
 * multivariate rule, clipped below like the univariate one; a categorical kernel puts weight 1 on the
 * observed choice plus priorWeight spread over all choices.
 */
export class JointParzen {
  private constructor(
    private readonly space: SearchSpace,
    private readonly free: readonly ParameterName[],
    /** Per kernel, per free parameter: the mean (float) or the choice probabilities (categorical). */
    private readonly kernels: { weight: number; centers: (number | number[])[] }[],
    private readonly sigmas: number[][], // [kernel][free parameter] (floats; unused for choices)
  ) {}

  static fit(space: SearchSpace, free: readonly ParameterName[], trials: readonly FinishedTrial[], weights: readonly number[], priorWeight: number): JointParzen {
    const n = trials.length;
    const kernels: { weight: number; centers: (number | number[])[] }[] = [];
    const sigmas: number[][] = [];
    const floatSigma = (spec: { low: number; high: number }) => {
      const span = spec.high - spec.low;
      const sigma = MULTIVARIATE_SIGMA0 * Math.max(n, 1) ** (-1 / (free.length + 4)) * span;
      return Math.min(span, Math.max(span / Math.min(100, n + 2), sigma));
    };
    trials.forEach((trial, k) => {
      kernels.push({
        weight: weights[k]!,
        centers: free.map((name) => {
          const spec = space[name];
          if (spec.kind !== 'categorical') return trial.parameters[name] as number;
          const mass = spec.choices.map((choice) => priorWeight / spec.choices.length + (choice === trial.parameters[name] ? 1 : 0));
          const total = mass.reduce((sum, value) => sum + value, 0);
          return mass.map((value) => value / total);
        }),
      });
      sigmas.push(free.map((name) => { const spec = space[name]; return spec.kind === 'float' ? floatSigma(spec) : 0; }));
    });
    kernels.push({
      weight: priorWeight,
      centers: free.map((name) => {
        const spec = space[name];
        return spec.kind === 'categorical' ? spec.choices.map(() => 1 / spec.choices.length) : spec.kind === 'float' ? (spec.low + spec.high) / 2 : 0;
      }),
    });
    sigmas.push(free.map((name) => { const spec = space[name]; return spec.kind === 'float' ? spec.high - spec.low : 0; }));
    const total = kernels.reduce((sum, kernel) => sum + kernel.weight, 0);
    for (const kernel of kernels) kernel.weight /= total;
    return new JointParzen(space, free, kernels, sigmas);
  }

  sample(random: () => number): ParameterValues {
    let pick = random();
    let k = 0;
    while (k < this.kernels.length - 1 && pick >= this.kernels[k]!.weight) pick -= this.kernels[k++]!.weight;
    const kernel = this.kernels[k]!;
    const values = {} as ParameterValues;
    for (const name of PARAMETER_NAMES) {
      const spec = this.space[name];
      if (spec.kind === 'pinned') values[name] = spec.value;
    }
    this.free.forEach((name, d) => {
      const spec = this.space[name];
      const center = kernel.centers[d]!;
      if (spec.kind === 'categorical') {
        const probabilities = center as number[];
        let u = random();
        let at = 0;
        while (at < probabilities.length - 1 && u >= probabilities[at]!) u -= probabilities[at++]!;
        values[name] = spec.choices[at]!;
      } else if (spec.kind === 'float') {
        values[name] = truncatedNormalSample(center as number, this.sigmas[k]![d]!, spec.low, spec.high, random);
      }
    });
    return values;
  }

  logDensity(values: ParameterValues): number {
    return logSumExp(
      this.kernels.map((kernel, k) => {
        let log = Math.log(kernel.weight);
        this.free.forEach((name, d) => {
          const spec = this.space[name];
          if (spec.kind === 'categorical') {
            const at = spec.choices.indexOf(values[name] as string);
            log += at < 0 ? -Infinity : Math.log((kernel.centers[d] as number[])[at]!);
          } else if (spec.kind === 'float') {
            log += truncatedNormalLogDensity(values[name] as number, kernel.centers[d] as number, this.sigmas[k]![d]!, spec.low, spec.high);
          }
        });
        return log;
      }),
    );
  }
}

function truncatedNormalSample(mean: number, sigma: number, low: number, high: number, random: () => number): number {
  if (high === low) return low;
  for (let attempt = 0; attempt < 64; attempt++) {
    // Box–Muller; 1 − u keeps the logarithm finite.
    const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const value = mean + sigma * normal;
    if (value >= low && value <= high) return value;
  }
  return Math.min(high, Math.max(low, mean));
}

function truncatedNormalLogDensity(x: number, mean: number, sigma: number, low: number, high: number): number {
  if (high === low) return 0;
  const mass = normalCdf((high - mean) / sigma) - normalCdf((low - mean) / sigma);
  const z = (x - mean) / sigma;
  return -0.5 * z * z - LOG_SQRT_2PI - Math.log(sigma) - Math.log(Math.max(mass, 1e-300));
}


/** One parameter's density, fitted on a set of trials. */
export interface Density {
  sample(random: () => number): number | string;
  logDensity(value: number | string): number;
}

const SQRT2 = Math.SQRT2;
const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** erf(x) (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7): enough for a sampler's densities. */
export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign * (1 - poly * Math.exp(-x * x));
}

const normalCdf = (z: number) => 0.5 * (1 + erf(z / SQRT2));

function logSumExp(values: readonly number[]): number {
  const top = Math.max(...values);
  if (top === -Infinity) return -Infinity;
  return top + Math.log(values.reduce((sum, value) => sum + Math.exp(value - top), 0));
}

/** A mixture of normals truncated to [low, high]: one per observation plus a broad prior at the middle. */
export class ParzenFloat implements Density {
  private constructor(
    private readonly means: number[],
    private readonly sigmas: number[],
    private readonly logWeights: number[],
    private readonly weights: number[],
    private readonly low: number,
    private readonly high: number,
  ) {}

  /**
   * Bandwidths by hyperopt's neighbour rule: each component's sigma is the larger gap to its sorted neighbours
   * (the range ends count as neighbours), clipped to [(high − low)/min(100, n + 1), high − low].
   */
  static fit(observations: readonly number[], weights: readonly number[], [low, high]: readonly [number, number], priorWeight: number): ParzenFloat {
    const span = high - low;
    if (span === 0) return new ParzenFloat([low], [1], [0], [1], low, high);
    const means = [...observations, (low + high) / 2];
    const allWeights = [...weights, priorWeight];
    const order = means.map((_, i) => i).sort((a, b) => means[a]! - means[b]!);
    const sigmas = new Array<number>(means.length);
    const minimum = span / Math.min(100, means.length + 1);
    order.forEach((index, at) => {
      const left = at === 0 ? low : means[order[at - 1]!]!;
      const right = at === order.length - 1 ? high : means[order[at + 1]!]!;
      sigmas[index] = Math.min(span, Math.max(minimum, means[index]! - left, right - means[index]!));
    });
    sigmas[means.length - 1] = span; // the prior stays broad
    const total = allWeights.reduce((sum, value) => sum + value, 0);
    const normalized = allWeights.map((value) => value / total);
    return new ParzenFloat(means, sigmas, normalized.map(Math.log), normalized, low, high);
  }

  sample(random: () => number): number {
    if (this.high === this.low) return this.low;
    let pick = random();
    let component = 0;
    while (component < this.weights.length - 1 && pick >= this.weights[component]!) pick -= this.weights[component++]!;
    const mean = this.means[component]!;
    const sigma = this.sigmas[component]!;
    for (let attempt = 0; attempt < 64; attempt++) {
      // Box–Muller; 1 − u keeps the logarithm finite.
      const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      const value = mean + sigma * normal;
      if (value >= this.low && value <= this.high) return value;
    }
    return Math.min(this.high, Math.max(this.low, mean));
  }

  logDensity(value: number | string): number {
    if (this.high === this.low) return 0;
    const x = value as number;
    return logSumExp(
      this.means.map((mean, i) => {
        const sigma = this.sigmas[i]!;
        const mass = normalCdf((this.high - mean) / sigma) - normalCdf((this.low - mean) / sigma);
        const z = (x - mean) / sigma;
        return this.logWeights[i]! - 0.5 * z * z - LOG_SQRT_2PI - Math.log(sigma) - Math.log(Math.max(mass, 1e-300));
      }),
    );
  }
}

/** Weighted choice counts plus a prior spread evenly over the choices. */
export class ParzenCategorical implements Density {
  private constructor(
    private readonly choices: readonly string[],
    private readonly probabilities: number[],
  ) {}

  static fit(observations: readonly string[], weights: readonly number[], choices: readonly string[], priorWeight: number): ParzenCategorical {
    const mass = choices.map(() => priorWeight / choices.length);
    observations.forEach((value, i) => {
      const at = choices.indexOf(value);
      if (at >= 0) mass[at]! += weights[i]!;
    });
    const total = mass.reduce((sum, value) => sum + value, 0);
    return new ParzenCategorical(choices, mass.map((value) => value / total));
  }

  sample(random: () => number): string {
    let pick = random();
    for (let i = 0; i < this.choices.length - 1; i++) {
      if (pick < this.probabilities[i]!) return this.choices[i]!;
      pick -= this.probabilities[i]!;
    }
    return this.choices[this.choices.length - 1]!;
  }

  logDensity(value: number | string): number {
    const at = this.choices.indexOf(value as string);
    return at < 0 ? -Infinity : Math.log(this.probabilities[at]!);
  }
}
