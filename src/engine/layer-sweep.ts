/**
 * Layer sweep: for the direction of each candidate layer, the ablated refusal rate and first-token KL, as a
 * table ready to plot (x = layer index), and a recommendation. The best-AUC layer is not always the one whose
 * removal works best (on toy-llama AUC is 1.0 on four layers, yet only one removes refusals), so the choice
 * is made on behaviour: the lowest refusal rate among layers whose KL stays within a bound.
 *
 * KL bound: 0.5 nats by default. It is the selection rule of the reference PyTorch run (toy-llama's
 * REFERENCE.json) and the acceptance bound of this project; a layer above it changes the compliant answers'
 * first token enough that the "uncensored" model is a damaged model. Below it, lower refusal wins; ties go to
 * the lower KL, then to the earlier layer.
 */
import { wilsonPair } from '../core/intervals';
import { throwIfAborted } from '../base/errors';
import { ProgressReporter, type LongCallOptions } from '../base/progress';
import type { Conversation } from './generate';
import { DEFAULT_ABLATION_TARGETS, firstTokenKL, evaluateRefusals, progressSlice, type EvaluationSession, type EvaluationSettings } from './evaluate';
import type { HookTarget } from '../model/hook-graph';

export const DEFAULT_KL_BOUND = 0.5;
/** A direction row counts as usable when its length is 1 to within this (analysis writes unit rows, or zeros). */
const UNIT_LENGTH_TOLERANCE = 1e-3;

export interface SweepRow {
  layer: number;
  refusalRate: number;
  /** 95 % Wilson interval of refusalRate over the refusal prompts. */
  refusalInterval: [number, number];
  klFirstToken: number;
  withinKLBound: boolean;
}

export interface LayerSweep {
  /** One row per evaluated layer, in layer order: plot refusalRate and klFirstToken against layer. */
  rows: SweepRow[];
  /** Layers not evaluated, with why (a zero mean gap gives no direction, e.g. index 0 when prompts share their last token). */
  skipped: { layer: number; reason: string }[];
  baseRefusalRate: number;
  baseRefusalInterval: [number, number];
  klBound: number;
  recommendation: Recommendation | null;
  counts: { harmful: number; harmless: number };
  /** Present when the sweep was cancelled with `keepFinished`: the rows are the layers that finished. */
  cancelled?: { notSwept: number[] };
}

export interface Recommendation {
  layer: number;
  /** False when no layer met the KL bound: the least-damaging layer is proposed instead, and says so. */
  withinKLBound: boolean;
  reason: string;
}

export interface SweepOptions extends LongCallOptions, EvaluationSettings {
  /** Layer indices to try; all usable ones when absent. */
  candidateLayers?: number[];
  klBound?: number;
  scale?: number;
  targets?: HookTarget[];
  /**
   * On cancel after at least one layer finished, return those layers (marked `cancelled`) instead of throwing:
   * an interactive sweep keeps what it has measured. Cancelled before any layer finished, it still throws.
   */
  keepFinished?: boolean;
}

/** Lowest refusal rate within the KL bound; ties → lower KL → lower layer. No layer within: the lowest KL. */
export function recommendLayer(rows: readonly Omit<SweepRow, 'refusalInterval'>[], klBound: number): Recommendation | null {
  if (rows.length === 0) return null;
  const within = rows.filter((row) => row.klFirstToken <= klBound);
  if (within.length > 0) {
    const best = [...within].sort((a, b) => a.refusalRate - b.refusalRate || a.klFirstToken - b.klFirstToken || a.layer - b.layer)[0]!;
    return {
      layer: best.layer,
      withinKLBound: true,
      reason: `lowest refusal rate (${best.refusalRate.toFixed(3)}) among ${within.length} layer(s) with first-token KL ≤ ${klBound} (KL ${best.klFirstToken.toFixed(4)})`,
    };
  }
  const best = [...rows].sort((a, b) => a.klFirstToken - b.klFirstToken || a.refusalRate - b.refusalRate || a.layer - b.layer)[0]!;
  return {
    layer: best.layer,
    withinKLBound: false,
    reason: `no layer kept first-token KL ≤ ${klBound}; layer ${best.layer} has the lowest KL (${best.klFirstToken.toFixed(4)}) — expect a damaged model`,
  };
}

function usability(direction: Float32Array | undefined): string | null {
  if (!direction) return 'no direction row';
  let squared = 0;
  for (const value of direction) {
    if (!Number.isFinite(value)) return 'direction has non-finite values';
    squared += value * value;
  }
  if (squared === 0) return 'zero direction (no mean gap between the prompt sets at this layer)';
  if (Math.abs(Math.sqrt(squared) - 1) > UNIT_LENGTH_TOLERANCE) return `direction is not unit length (${Math.sqrt(squared).toFixed(4)})`;
  return null;
}

/**
 * Evaluates the ablation of each candidate layer's direction (all targets, scale 1 by default) on the
 * given prompts; base replies and logits are computed once.
 */
export async function sweepLayers(
  session: EvaluationSession,
  directions: readonly Float32Array[], // [layer] → [dModel]
  prompts: { harmful: readonly Conversation[]; harmless: readonly Conversation[] },
  options: SweepOptions = {},
): Promise<LayerSweep> {
  const reporter = new ProgressReporter('layer sweep', options.onProgress);
  const klBound = options.klBound ?? DEFAULT_KL_BOUND;
  const requested = options.candidateLayers ?? directions.map((_, index) => index);
  const skipped: LayerSweep['skipped'] = [];
  const candidates: number[] = [];
  for (const layer of requested) {
    const problem = usability(directions[layer]);
    if (problem) skipped.push({ layer, reason: problem });
    else candidates.push(layer);
  }
  const common = {
    ...(options.maxNewTokens ? { maxNewTokens: options.maxNewTokens } : {}),
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.markers ? { markers: options.markers } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const base = await session.baseRefusalsOn(prompts.harmful, { ...common, onProgress: progressSlice(reporter, 0, 0.1, 'base replies') });
  const baseLogits = await session.baseLogitsOn(prompts.harmless, { ...common });
  const rows: SweepRow[] = [];
  let cancelled: LayerSweep['cancelled'];
  // A cancel that comes after a finished layer keeps the finished ones; the layer it interrupts is dropped whole.
  const keepWhatFinished = () => options.keepFinished === true && rows.length > 0 && options.signal?.aborted === true;
  for (const [position, layer] of candidates.entries()) {
    const from = 0.1 + (0.9 * position) / candidates.length;
    const to = 0.1 + (0.9 * (position + 1)) / candidates.length;
    try {
      throwIfAborted(options.signal);
      const ablated = await session.loadAblated(
        { direction: directions[layer]!, scale: options.scale ?? 1, targets: options.targets ?? [...DEFAULT_ABLATION_TARGETS] },
        options.signal ? { signal: options.signal } : {},
      );
      try {
        const refusals = await evaluateRefusals(ablated, prompts.harmful, { ...common, onProgress: progressSlice(reporter, from, to, `layer ${layer}`) });
        const kl = await firstTokenKL(baseLogits, ablated, prompts.harmless, common);
        rows.push({ layer, refusalRate: refusals.refusalRate, refusalInterval: wilsonPair(refusals.refusalRate, prompts.harmful.length), klFirstToken: kl.mean, withinKLBound: kl.mean <= klBound });
      } finally {
        await ablated.dispose();
      }
    } catch (error) {
      if (!keepWhatFinished()) throw error;
      cancelled = { notSwept: candidates.slice(position) };
      break;
    }
    reporter.report(to, `layer ${layer} done`);
  }
  reporter.done();
  return {
    ...(cancelled ? { cancelled } : {}),
    rows,
    skipped,
    baseRefusalRate: base.refusalRate,
    baseRefusalInterval: wilsonPair(base.refusalRate, prompts.harmful.length),
    klBound,
    recommendation: recommendLayer(rows, klBound),
    counts: { harmful: prompts.harmful.length, harmless: prompts.harmless.length },
  };
}
