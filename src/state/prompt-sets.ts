/**
 * Prompt sets as the UI edits them and as the engine receives them. A line of the editor is one prompt: plain
 * text is a user message (with the set's shared system prompt, if any), a line starting with `{` is a JSONL row
 * (`{"prompt", "system"}` or `{"messages": [...]}`) kept exactly — so a file whose rows carry their own system
 * prompts round-trips unchanged. Parsing goes through the CLI's own parser: a file gives the same prompts in
 * the workbench as in `abliterate analyze`.
 */
import { parsePromptFile, type PromptRecord } from '../formats/prompts';
import type { PromptInput } from '../protocol/analysis-api';
import type { PromptSetState } from './store';

export function promptLines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
}

/** `label` names the set in errors ("A · refusal, line 3: not valid JSON ..."). */
export function promptSetToInputs(set: PromptSetState, label: string): PromptInput[] {
  const system = set.system.trim().length > 0 ? set.system : null;
  const inputs: PromptInput[] = [];
  set.text.split('\n').forEach((rawLine, index) => {
    const line = rawLine.trim();
    if (line.length === 0) return;
    if (line.startsWith('{')) {
      // Leading newlines keep the parser's line numbers equal to the editor's.
      inputs.push(...parsePromptFile(label, '\n'.repeat(index) + line, 'jsonl'));
    } else {
      inputs.push({ messages: [...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user' as const, content: line }] });
    }
  });
  return inputs;
}

function isPlain(record: PromptRecord): boolean {
  const [first, second] = record.messages;
  if (record.messages.length === 1) return first.role === 'user' && !/\n/.test(first.content) && !first.content.trim().startsWith('{');
  return record.messages.length === 2 && first.role === 'system' && second.role === 'user' && !/\n/.test(second.content) && !second.content.trim().startsWith('{');
}

/**
 * A .txt or .jsonl file as a prompt set: plain lines plus one shared system prompt when every row fits that
 * shape, otherwise one JSON row per line (each keeps its own system prompt and turns).
 */
export function importPromptText(file: string, text: string): PromptSetState {
  const records = parsePromptFile(file, text);
  const systems = new Set(records.map((record) => (record.messages.length === 2 ? record.messages[0].content : '')));
  if (records.every(isPlain) && systems.size === 1) {
    return { text: records.map((record) => record.messages[record.messages.length - 1].content.trim()).join('\n'), system: [...systems][0], source: file };
  }
  return { text: records.map((record) => JSON.stringify({ messages: record.messages })).join('\n'), system: '', source: file };
}
