/**
 * The shapes of an agent evaluation (agent-evaluation.ts), apart so that evaluate.ts can name them in its
 * report without importing the module that imports it.
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

/** eval.json's "agent" object (docs/contracts.md); `settings` is an addition. */
export interface AgentEvaluation {
  count: number;
  base: AgentRates;
  ablated: AgentRates;
  samples: { messages: Conversation; base: AgentReply; ablated: AgentReply }[];
  settings: { actionKeys: string[]; markers: string[]; maxNewTokens: number; decoding: 'greedy' };
}
