/**
 * One answer to "which layer?": the per-layer evidence on one axis (AUC with its bootstrap interval, train AUC,
 * d′, cosine with the reference, and — when a sweep ran — the ablated refusal rate with its Wilson interval and
 * the first-token KL) and ONE recommendation with the rule that produced it. Behaviour beats separation: when a
 * sweep exists its recommendation decides (the best-AUC layer is not always the one whose removal works);
 * otherwise the capture's highest held-out AUC (ties by d′) does.
 */
import { midpointMisclassified } from '../core/intervals';
import type { AnalysisResult, PromptInput, PromptSets } from '../protocol/analysis-api';
import type { SweepResult, SweepRow } from '../protocol/chat-api';
import type { TableColumn } from './table-export';

export interface LayerRecommendation {
  layer: number;
  source: 'sweep' | 'auc';
  /** The rule in words, shown beside the recommendation. */
  rule: string;
}

export interface LayerChoiceRow {
  layer: number;
  auc: number;
  aucTrain: number;
  aucInterval: [number, number] | null;
  dPrime: number | null;
  cosineReference: number | null;
  sweep: SweepRow | null;
  /** Held-out prompts on the wrong side of the midpoint between the two sets' mean projections (indices into each set). */
  misclassified: { harmful: number[]; harmless: number[] } | null;
}

export function heldOutCount(result: AnalysisResult): number {
  return result.report.counts.heldOut;
}

export function recommendLayer(result: AnalysisResult, sweep: SweepResult | null): LayerRecommendation {
  if (sweep?.recommendation) {
    return {
      layer: sweep.recommendation.layer,
      source: 'sweep',
      rule: `the sweep decides: lowest ablated refusal rate among swept layers with first-token KL ≤ ${sweep.klBound} (${sweep.recommendation.reason})`,
    };
  }
  const scored = heldOutCount(result) > 0 ? 'held-out AUC' : 'train AUC (nothing is held out)';
  return {
    layer: result.report.bestLayer,
    source: 'auc',
    rule: `no sweep yet, so the capture decides: highest ${scored} among candidate layers, ties by d′ — run the sweep to decide on behaviour`,
  };
}

/** Prompt indices whose projections `result.projections[layer]` holds: the held-out split, or train when none is held out. */
function scoredIndices(result: AnalysisResult, set: 'harmful' | 'harmless'): number[] | null {
  const split = result.split?.[set];
  if (!split) return null;
  return split.heldOut.length > 0 && heldOutCount(result) > 0 ? split.heldOut : split.train;
}

export function layerChoiceRows(result: AnalysisResult, sweep: SweepResult | null): LayerChoiceRow[] {
  const harmfulIndices = scoredIndices(result, 'harmful');
  const harmlessIndices = scoredIndices(result, 'harmless');
  return result.report.layers.map((layer) => {
    const projections = result.projections[layer.index];
    let misclassified: LayerChoiceRow['misclassified'] = null;
    if (projections && harmfulIndices && harmlessIndices && layer.degenerate !== true && projections.harmful.length > 0 && projections.harmless.length > 0) {
      const wrong = midpointMisclassified(projections.harmful, projections.harmless);
      misclassified = { harmful: wrong.a.map((position) => harmfulIndices[position]!), harmless: wrong.b.map((position) => harmlessIndices[position]!) };
    }
    const interval = layer.aucInterval;
    return {
      layer: layer.index,
      auc: layer.auc,
      aucTrain: layer.aucTrain,
      aucInterval: Array.isArray(interval) ? (interval as [number, number]) : null,
      dPrime: typeof layer.dPrime === 'number' ? layer.dPrime : null,
      cosineReference: layer.cosineReference,
      sweep: sweep?.rows.find((row) => row.layer === layer.index) ?? null,
      misclassified,
    };
  });
}

export const LAYER_CHOICE_COLUMNS: TableColumn<LayerChoiceRow>[] = [
  { header: 'layer', value: (row) => row.layer },
  { header: 'auc', value: (row) => row.auc },
  { header: 'auc_ci_low', value: (row) => row.aucInterval?.[0] },
  { header: 'auc_ci_high', value: (row) => row.aucInterval?.[1] },
  { header: 'auc_train', value: (row) => row.aucTrain },
  { header: 'd_prime', value: (row) => row.dPrime },
  { header: 'cosine_reference', value: (row) => row.cosineReference },
  { header: 'sweep_refusal_rate', value: (row) => row.sweep?.refusalRate },
  { header: 'sweep_refusal_ci_low', value: (row) => row.sweep?.refusalInterval[0] },
  { header: 'sweep_refusal_ci_high', value: (row) => row.sweep?.refusalInterval[1] },
  { header: 'sweep_kl_first_token', value: (row) => row.sweep?.klFirstToken },
  { header: 'misclassified_harmful', value: (row) => row.misclassified?.harmful.length },
  { header: 'misclassified_harmless', value: (row) => row.misclassified?.harmless.length },
];

export const SWEEP_COLUMNS: TableColumn<SweepRow>[] = [
  { header: 'layer', value: (row) => row.layer },
  { header: 'refusal_rate', value: (row) => row.refusalRate },
  { header: 'refusal_ci_low', value: (row) => row.refusalInterval[0] },
  { header: 'refusal_ci_high', value: (row) => row.refusalInterval[1] },
  { header: 'kl_first_token', value: (row) => row.klFirstToken },
  { header: 'within_kl_bound', value: (row) => row.withinKLBound },
];

/** The text of a prompt as one line: its user turn(s), with the system prompt in brackets when there is one. */
export function promptText(prompt: PromptInput | undefined): string {
  if (!prompt) return '(prompt not available)';
  const system = prompt.messages.find((message) => message.role === 'system');
  const user = prompt.messages.filter((message) => message.role !== 'system').map((message) => message.content).join(' ⏎ ');
  return system ? `[${system.content.slice(0, 40)}${system.content.length > 40 ? '…' : ''}] ${user}` : user;
}

export function promptOf(prompts: PromptSets | null, set: 'harmful' | 'harmless', index: number): string {
  return promptText(prompts?.[set][index]);
}

/** The prompt index (into the set) of the value at `position` of `result.projections[layer][set]`; null without a split. */
export function projectedPromptIndex(result: AnalysisResult, set: 'harmful' | 'harmless', position: number): number | null {
  return scoredIndices(result, set)?.[position] ?? null;
}
