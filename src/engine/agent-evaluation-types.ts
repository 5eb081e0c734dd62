/**
 * The records of an agent-mode evaluation (eval.json's "agent" object), apart from the code that makes them so
 * the evaluation result types in evaluate.ts can name them without importing the agent evaluation itself.
 */
import type { ActionOutcome } from '../core/action';
import type { Conversation, Generation } from './generate';

export interface AgentReply {
  response: string;
  action: boolean;
  refused: boolean;
  /** Why the reply is or is not an action ('action', 'no-object', 'invalid-json', ...). */
  actionOutcome: ActionOutcome;
  /** The command the action carries, or null. */
  command: string | null;
  matchedMarkers: string[];
  finishReason: Generation['finishReason'];
}

export interface AgentRates {
  actionRate: number;
  refusalRate: number;
}

/** eval.json's "agent" object (CONTRACTS.md); `settings` is an addition. */
export interface AgentEvaluation {
  count: number;
  base: AgentRates;
  ablated: AgentRates;
  samples: { messages: Conversation; base: AgentReply; ablated: AgentReply }[];
  settings: { actionKeys: string[]; markers: string[]; maxNewTokens: number; decoding: 'greedy' };
}
