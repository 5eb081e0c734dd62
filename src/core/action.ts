/**
 * Agent actions (docs: README "Terminal-agent evaluation"). A reply to an agent-prompted request is an *action*
 * when its first balanced JSON object parses and holds a non-empty string at one of the action keys (default
 * `cmd`, `command`). Markdown code fences around the object change nothing: the scan looks for the first `{`
 * wherever it is. Pure: no I/O, no imports outside core.
 *
 * "First balanced object": from the first `{` outside a JSON string, braces are counted outside string
 * literals (`"…"` with backslash escapes), so `{"cmd": "echo }"}` is one object. That span must parse with
 * JSON.parse; when it does not, the reply is not an action (the model started an action and broke it, which is
 * what an agent harness reports as a parse failure), even if a valid object follows later.
 */

export const DEFAULT_ACTION_KEYS: readonly string[] = Object.freeze(['cmd', 'command']);

/** Why a reply is or is not an action, for the samples table and for a reader checking the classifier. */
export type ActionOutcome =
  | 'action' // parsed, and an action key holds a non-empty string
  | 'no-object' // no `{` in the reply
  | 'unbalanced' // a `{` that never closes
  | 'invalid-json' // the first balanced span does not parse
  | 'no-action-key'; // parsed, but no action key holds a non-empty string

export interface ActionVerdict {
  action: boolean;
  outcome: ActionOutcome;
  /** The action key that matched (first in key order), or null. */
  key: string | null;
  /** The command string at that key, or null. */
  command: string | null;
  /** The first balanced `{…}` span, when there is one. */
  json: string | null;
}

export class ActionKeyError extends Error {
  override name = 'ActionKeyError';
}

/** Validates a user-supplied key list: at least one key, none empty after trimming; duplicates dropped. */
export function normalizeActionKeys(keys: readonly string[]): string[] {
  const trimmed = keys.map((key) => key.trim());
  if (trimmed.length === 0) throw new ActionKeyError('the action key list is empty; give at least one key (e.g. cmd).');
  const emptyIndex = trimmed.findIndex((key) => key.length === 0);
  if (emptyIndex >= 0) throw new ActionKeyError(`action key #${emptyIndex + 1} is empty.`);
  return [...new Set(trimmed)];
}

/**
 * The first balanced `{…}` span of `text`, counting braces outside JSON string literals; `null` when there is
 * no `{`, `'unbalanced'` when the first one never closes.
 */
export function firstBalancedObject(text: string): string | null | 'unbalanced' {
  const start = text.indexOf('{');
  if (start < 0) return null;
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (char === '\\') i++; // the escaped character cannot end the string
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === '{') depth++;
    else if (char === '}') {
      depth--;
      if (depth === 0) return text.slice(start, i + 1);
    }
  }
  return 'unbalanced';
}

/** Classifies one reply. `keys` must be normalized (normalizeActionKeys) when they come from a user. */
export function classifyAction(reply: string, keys: readonly string[] = DEFAULT_ACTION_KEYS): ActionVerdict {
  const span = firstBalancedObject(reply);
  if (span === null) return { action: false, outcome: 'no-object', key: null, command: null, json: null };
  if (span === 'unbalanced') return { action: false, outcome: 'unbalanced', key: null, command: null, json: null };
  let value: unknown;
  try {
    value = JSON.parse(span);
  } catch {
    return { action: false, outcome: 'invalid-json', key: null, command: null, json: span };
  }
  // A balanced span starting with `{` that parses is always a plain object.
  const object = value as Record<string, unknown>;
  for (const key of keys) {
    const command = Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;
    if (typeof command === 'string' && command.trim().length > 0) return { action: true, outcome: 'action', key, command, json: span };
  }
  return { action: false, outcome: 'no-action-key', key: null, command: null, json: span };
}

export function isAction(reply: string, keys: readonly string[] = DEFAULT_ACTION_KEYS): boolean {
  return classifyAction(reply, keys).action;
}

/** Fraction of verdicts that are actions; an empty set is an error, not 0. */
export function actionRate(verdicts: readonly { action: boolean }[]): number {
  if (verdicts.length === 0) throw new ActionKeyError('action rate of zero replies is undefined; give at least one agent prompt.');
  return verdicts.filter((verdict) => verdict.action).length / verdicts.length;
}
