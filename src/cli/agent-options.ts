/**
 * `--agent FILE` and `--action-keys LIST`, shared by eval, run and optimize: agent-prompted requests whose
 * replies are scored as actions (a JSON object with a command) and as refusals, base vs ablated.
 */
import { DEFAULT_ACTION_KEYS } from '../core/action';
import { RecipeDirectionError, referenceOverlap, resolveRecipeDirections } from '../core/recipe';
import type { DirectionFile } from '../formats/direction-file';
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

export const PROTECT_OPTIONS = { 'protect-reference': { type: 'string' } } as const;

export const PROTECT_HELP = `  --protect-reference FILE
                       a reference (agent-style) direction file (.safetensors/.npy/.json, [d] or [L+1, d]): the
                       ablation direction is made orthogonal to it first (recipe protect "reference"), so the
                       edit leaves that direction alone; a per-layer file gives the row of --layer`;

/**
 * Protection in the shorthand (one direction): r ← normalize(r − (r·ĉ)ĉ) with ĉ the reference row of the same
 * layer (or the file's only row), through the recipe's own resolution. Returns the protected direction and
 * the cosine it had with the reference before.
 */
export function protectShorthandDirection(direction: Float32Array, reference: DirectionFile, layer: number | undefined, file: string): { direction: Float32Array; cosineBefore: number } {
  const row = reference.perLayer ? reference.rows[layer ?? -1] : reference.rows[0];
  if (!row) throw new InvalidInputError(`${file}: a per-layer reference needs --layer to pick its row (0..${reference.rows.length - 1})`);
  if (row.length !== direction.length) throw new InvalidInputError(`${file}: the reference has ${row.length} values but the direction has ${direction.length}`);
  const recipe = { method: 'standard', direction: 0, projection: 'none', components: {}, protect: 'reference' } as const;
  let protectedDirection: Float64Array;
  try {
    protectedDirection = resolveRecipeDirections(recipe, [direction], undefined, [row]).forTarget('attn', 0);
  } catch (error) {
    if (error instanceof RecipeDirectionError) throw new InvalidInputError(`${file}: ${error.message}`);
    throw error;
  }
  const overlap = referenceOverlap(recipe, [direction], undefined, [row])[0]!;
  return { direction: Float32Array.from(protectedDirection), cosineBefore: overlap.before };
}
