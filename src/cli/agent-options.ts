/**
 * `--agent FILE` and `--action-keys LIST`, shared by eval, run and optimize: agent-prompted requests whose
 * replies are scored as actions (a JSON object with a command) and as refusals, base vs ablated.
 */
import { DEFAULT_ACTION_KEYS } from '../core/action';
import { resolveActionKeys, type AgentEvaluation } from '../engine/agent-evaluation';
import type { Conversation } from '../engine/generate';
import { InvalidInputError } from '../base/errors';
import { readPromptConversations } from './common';

export const AGENT_OPTIONS = { agent: { type: 'string' }, 'action-keys': { type: 'string' } } as const;

export const AGENT_HELP = `  --agent FILE         agent-prompted requests (e.g. shell requests inside a terminal-agent system prompt):
                       eval.json gains "agent" with base and ablated action rate, refusal rate and per-sample flags
  --action-keys LIST   comma-separated JSON keys whose non-empty string makes a reply an action
                       (default ${DEFAULT_ACTION_KEYS.join(',')})`;

export interface AgentInputs {
  path: string;
  prompts: Conversation[];
  actionKeys: string[];
}

/** Reads --agent (null when absent) and validates --action-keys; --action-keys without --agent is an error. */
export async function readAgentOptions(values: Record<string, unknown>): Promise<AgentInputs | null> {
  const path = values.agent as string | undefined;
  const rawKeys = values['action-keys'] as string | undefined;
  if (path === undefined) {
    if (rawKeys !== undefined) throw new InvalidInputError('--action-keys needs --agent FILE (the prompts whose replies are scored as actions)');
    return null;
  }
  const actionKeys = resolveActionKeys(rawKeys === undefined ? undefined : rawKeys.split(','));
  return { path, prompts: await readPromptConversations(path, 'agent prompt file'), actionKeys };
}

export function formatAgentEvaluation(agent: AgentEvaluation): string {
  const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
  return `agent prompts (${agent.count}): action rate base ${percent(agent.base.actionRate)}  →  ablated ${percent(agent.ablated.actionRate)};  ` +
    `refusal rate base ${percent(agent.base.refusalRate)}  →  ablated ${percent(agent.ablated.refusalRate)}`;
}
