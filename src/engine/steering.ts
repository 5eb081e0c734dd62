/**
 * Evaluation of additive steering (x ← x + w·r at hidden-state index l, model/steering-graph.ts) on the same
 * prompts and with the same engine calls as the ablation's evaluation, so the two mechanisms can be compared:
 * refusal rate on the refusal prompts, first-token KL(base ‖ steered) on the compliance prompts, and the agent
 * figures when agent prompts are given. Base replies and logits come from the session's caches.
 */
import type { LongCallOptions } from '../base/progress';
import { ProgressReporter } from '../base/progress';
import { DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS, type Conversation } from './generate';
import { evaluateRefusals, firstTokenKL, progressSlice, resolveMarkers, type EvaluationSession, type EvaluationSettings, type ReplyVerdict } from './evaluate';
import { evaluateAgentPrompts, type AgentEvaluation } from './agent-evaluation';

export interface SteeringSpec {
  /** Hidden-state index 0..L. */
  layer: number;
  /** r, [dModel] (unit, so w is a length). */
  direction: Float32Array;
  weight: number;
}

/** eval.json's "steered" object: the steering's figures beside the ablation's. */
export interface SteeringEvaluation {
  layer: number;
  weight: number;
  refusalRate: number;
  klFirstToken: number;
  klPerPrompt: number[];
  /** The steered replies to the refusal prompts, in prompt order. */
  replies: ReplyVerdict[];
  agent?: AgentEvaluation;
}

export async function evaluateSteering(
  session: EvaluationSession,
  spec: SteeringSpec,
  prompts: { harmful: readonly Conversation[]; harmless: readonly Conversation[]; agent?: readonly Conversation[] },
  options: EvaluationSettings & LongCallOptions & { actionKeys?: readonly string[] } = {},
): Promise<SteeringEvaluation> {
  const reporter = new ProgressReporter('evaluate', options.onProgress);
  const common = {
    maxNewTokens: options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
    batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE,
    markers: resolveMarkers(options.markers),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const baseLogits = await session.baseLogitsOn(prompts.harmless, { ...common, onProgress: progressSlice(reporter, 0, 0.1, 'base first-token logits') });
  const steered = await session.loadSteered(spec, options.signal ? { signal: options.signal } : {});
  try {
    const refusals = await evaluateRefusals(steered, prompts.harmful, { ...common, onProgress: progressSlice(reporter, 0.1, 0.6, 'steered replies') });
    const kl = await firstTokenKL(baseLogits, steered, prompts.harmless, { ...common, onProgress: progressSlice(reporter, 0.6, 0.7, 'steered first-token logits') });
    const agent = prompts.agent?.length
      ? await evaluateAgentPrompts(session, steered, prompts.agent, { ...common, ...(options.actionKeys ? { actionKeys: options.actionKeys } : {}), onProgress: progressSlice(reporter, 0.7, 1, 'steered agent replies') })
      : undefined;
    reporter.done();
    return { layer: spec.layer, weight: spec.weight, refusalRate: refusals.refusalRate, klFirstToken: kl.mean, klPerPrompt: kl.perPrompt, replies: refusals.replies, ...(agent ? { agent } : {}) };
  } finally {
    await steered.dispose();
  }
}
