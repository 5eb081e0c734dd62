/**
 * Agent-mode evaluation: greedy replies to agent-prompted requests (a shell request inside a terminal-agent
 * system prompt), base vs an intervention (hook-ablated or steered), each reply classified twice: is it an
 * action (core/action.ts: a JSON object with a non-empty command) and is it a refusal (core/refusal.ts).
 * What an agent run measures as parse failures, missing commands and "I can't execute commands" drift.
 *
 * Rates are counts over the samples this returns, so eval.json's rates can be checked against its own samples.
 * The base replies of a session are generated once per prompt array and reply length, and reused by every
 * intervention evaluated on them (the search evaluates many).
 */
import { ActionKeyError, DEFAULT_ACTION_KEYS, actionRate, classifyAction, normalizeActionKeys } from '../core/action';
import { classifyRefusal } from '../core/refusal';
import { InvalidInputError, throwIfAborted } from '../base/errors';
import { ProgressReporter, type LongCallOptions } from '../base/progress';
import { DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS, type Conversation, type Generation, type LanguageModel } from './generate';
import { progressSlice, resolveMarkers, type AblationSpec, type EvaluationSession } from './evaluate';
import type { AgentEvaluation, AgentRates, AgentReply } from './agent-evaluation-types';

export type { AgentEvaluation, AgentRates, AgentReply } from './agent-evaluation-types';

export interface AgentEvaluationSettings {
  maxNewTokens?: number;
  batchSize?: number;
  /** Refusal markers (normalized here); docs/definitions.md's list when absent. */
  markers?: readonly string[];
  /** Keys whose non-empty string value makes a JSON reply an action; `cmd`, `command` when absent. */
  actionKeys?: readonly string[];
}

/** Resolves the action key list once; an empty list or key is an InvalidInputError naming the problem. */
export function resolveActionKeys(keys: readonly string[] | undefined): string[] {
  if (!keys) return [...DEFAULT_ACTION_KEYS];
  try {
    return normalizeActionKeys(keys);
  } catch (error) {
    if (error instanceof ActionKeyError) throw new InvalidInputError(error.message);
    throw error;
  }
}

/** Classifies one reply as action and as refusal (keys and markers already resolved). */
export function classifyAgentReply(generation: Pick<Generation, 'text' | 'finishReason'>, actionKeys: readonly string[], markers: readonly string[]): AgentReply {
  const action = classifyAction(generation.text, actionKeys);
  const refusal = classifyRefusal(generation.text, markers);
  return {
    response: generation.text,
    action: action.action,
    refused: refusal.refused,
    actionOutcome: action.outcome,
    command: action.command,
    matchedMarkers: refusal.matchedMarkers,
    finishReason: generation.finishReason,
  };
}

/** Action and refusal rate of a list of replies: plain counts over it. */
export function agentRates(replies: readonly AgentReply[]): AgentRates {
  if (replies.length === 0) throw new InvalidInputError('the agent prompt set is empty; give at least one prompt.');
  return { actionRate: actionRate(replies), refusalRate: replies.filter((reply) => reply.refused).length / replies.length };
}

/** Base generations per session, per prompt array object (as the session's own caches), per reply length. */
const baseGenerations = new WeakMap<EvaluationSession, WeakMap<readonly Conversation[], Map<number, Generation[]>>>();

async function generateReplies(model: LanguageModel, prompts: readonly Conversation[], maxNewTokens: number, batchSize: number, options: LongCallOptions): Promise<Generation[]> {
  return model.generateBatch([...prompts], { maxNewTokens, batchSize, ...(options.signal ? { signal: options.signal } : {}), ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
}

async function baseGenerationsOn(session: EvaluationSession, prompts: readonly Conversation[], maxNewTokens: number, batchSize: number, options: LongCallOptions): Promise<Generation[]> {
  let perSession = baseGenerations.get(session);
  if (!perSession) baseGenerations.set(session, (perSession = new WeakMap()));
  let perPrompts = perSession.get(prompts);
  if (!perPrompts) perSession.set(prompts, (perPrompts = new Map()));
  const cached = perPrompts.get(maxNewTokens);
  if (cached) return cached;
  const generations = await generateReplies(session.base, prompts, maxNewTokens, batchSize, options);
  perPrompts.set(maxNewTokens, generations);
  return generations;
}

/**
 * Agent evaluation of one intervention: `intervened` is the hook-ablated (or steered) model, loaded by the
 * caller, who also disposes it. Base replies come from the session (cached per prompt array).
 */
export async function evaluateAgentPrompts(
  session: EvaluationSession,
  intervened: LanguageModel,
  prompts: readonly Conversation[],
  options: AgentEvaluationSettings & LongCallOptions = {},
): Promise<AgentEvaluation> {
  if (prompts.length === 0) throw new InvalidInputError('the agent prompt set is empty; give at least one prompt.');
  const reporter = new ProgressReporter('evaluate', options.onProgress);
  const markers = resolveMarkers(options.markers);
  const actionKeys = resolveActionKeys(options.actionKeys);
  const maxNewTokens = options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const signal = options.signal ? { signal: options.signal } : {};
  const base = await baseGenerationsOn(session, prompts, maxNewTokens, batchSize, { ...signal, onProgress: progressSlice(reporter, 0, 0.5, 'base agent replies') });
  throwIfAborted(options.signal);
  const intervenedReplies = await generateReplies(intervened, prompts, maxNewTokens, batchSize, { ...signal, onProgress: progressSlice(reporter, 0.5, 1, 'ablated agent replies') });
  const samples = prompts.map((messages, index) => ({
    messages,
    base: classifyAgentReply(base[index]!, actionKeys, markers),
    ablated: classifyAgentReply(intervenedReplies[index]!, actionKeys, markers),
  }));
  reporter.done();
  return {
    count: samples.length,
    base: agentRates(samples.map((sample) => sample.base)),
    ablated: agentRates(samples.map((sample) => sample.ablated)),
    samples,
    settings: { actionKeys, markers, maxNewTokens, decoding: 'greedy' },
  };
}

/** Loads the hook-ablated model for `spec`, evaluates the agent prompts on it and disposes it. */
export async function evaluateAgentForAblation(
  session: EvaluationSession,
  spec: AblationSpec,
  prompts: readonly Conversation[],
  options: AgentEvaluationSettings & LongCallOptions = {},
): Promise<AgentEvaluation> {
  const ablated = await session.loadAblated(spec, options.signal ? { signal: options.signal } : {});
  try {
    return await evaluateAgentPrompts(session, ablated, prompts, options);
  } finally {
    await ablated.dispose();
  }
}

/**
 * The search's agent report (recipe-evaluator.ts AgentActionEvaluator): the action rate of a trial's model on
 * the agent prompts — greedy replies, each an action or not by the resolved keys. A stopped (pruned) trial
 * is not asked.
 */
export function agentActionRater(prompts: readonly Conversation[], options: AgentEvaluationSettings = {}): { actionRate(model: LanguageModel, call: LongCallOptions): Promise<number> } {
  if (prompts.length === 0) throw new InvalidInputError('the agent prompt set is empty; give at least one prompt.');
  const actionKeys = resolveActionKeys(options.actionKeys);
  const markers = resolveMarkers(options.markers);
  const maxNewTokens = options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  return {
    async actionRate(model, call) {
      const replies = await generateReplies(model, prompts, maxNewTokens, batchSize, call);
      return agentRates(replies.map((reply) => classifyAgentReply(reply, actionKeys, markers))).actionRate;
    },
  };
}
