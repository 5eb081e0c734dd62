/**
 * Preflight judgement, before a capture: does the model read the prompts (tokenization coverage), and does its
 * behaviour show the A-vs-B contrast the direction is supposed to capture? A capture on prompts the tokenizer
 * cannot read, or on a contrast the model does not act out, still yields an AUC and a "best" layer; these
 * warnings say so first. Pure: figures in, warnings out.
 */

/** More unknown tokens than this fraction of all prompt tokens: the model is not reading the prompts. */
export const MAX_UNKNOWN_TOKEN_RATE = 0.05;
/** A refusal set the model refuses less often than this does not show the behaviour to remove. */
export const MIN_REFUSAL_RATE_A = 0.5;
/** A must be refused at least this much more often than B for the contrast to be behavioural. */
export const MIN_REFUSAL_GAP = 0.25;

export interface PreflightFigures {
  /** Unknown-token ids / all token ids of the chat-templated prompts (A and B together); null without an unknown token. */
  unknownTokenRate: number | null;
  /** Prompts too long for the context (templated length ≥ max_position_embeddings) / all prompts. */
  truncationRate: number;
  /** Base greedy replies on a sample of A and B. */
  refusalRateA: number;
  refusalRateB: number;
  /** Action rate on the B sample (JSON actions), when B is agent-style; informative only. */
  actionRateB: number;
}

export interface PreflightWarning {
  kind: 'unknown-tokens' | 'truncation' | 'no-refusal' | 'no-contrast';
  message: string;
}

const percent = (rate: number) => `${Math.round(rate * 100)}%`;

export function preflightWarnings(figures: PreflightFigures): PreflightWarning[] {
  const warnings: PreflightWarning[] = [];
  if (figures.unknownTokenRate !== null && figures.unknownTokenRate > MAX_UNKNOWN_TOKEN_RATE) {
    warnings.push({
      kind: 'unknown-tokens',
      message: `${percent(figures.unknownTokenRate)} of the prompt tokens are unknown to the tokenizer: the model cannot read these prompts, so a direction found on them says little. Use prompts in the model's vocabulary.`,
    });
  }
  if (figures.truncationRate > 0) {
    warnings.push({ kind: 'truncation', message: `${percent(figures.truncationRate)} of the prompts do not fit the model's context: shorten them.` });
  }
  if (figures.refusalRateA < MIN_REFUSAL_RATE_A) {
    warnings.push({
      kind: 'no-refusal',
      message: `The base model refuses only ${percent(figures.refusalRateA)} of the sampled A prompts: the behaviour to remove is not present, so the direction will not be a refusal direction.`,
    });
  }
  if (figures.refusalRateA - figures.refusalRateB < MIN_REFUSAL_GAP) {
    warnings.push({
      kind: 'no-contrast',
      message: `A is refused ${percent(figures.refusalRateA)} and B ${percent(figures.refusalRateB)} of the time: the contrast is not present in the model's behaviour, yet a capture will still report an AUC and a layer.`,
    });
  }
  return warnings;
}
