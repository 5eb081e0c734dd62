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

/** One editor line read as a prompt: its line number (1-based, as the editor counts) and its messages. */
export interface PromptRow {
  line: number;
  messages: PromptInput['messages'];
}

/** A line that is not a prompt, with the parser's reason ("line 3: not valid JSON (...)"). */
export interface PromptProblem {
  line: number;
  error: Error;
}

export interface ParsedPromptSet {
  rows: PromptRow[];
  problems: PromptProblem[];
}

/**
 * Every line of an editor as a prompt or as a problem, never both: a broken JSON row is reported with its line
 * number and does not count as a prompt. `label` names the set in the problems' messages.
 */
export function parsePromptSet(set: PromptSetState, label: string): ParsedPromptSet {
  const system = set.system.trim().length > 0 ? set.system : null;
  const rows: PromptRow[] = [];
  const problems: PromptProblem[] = [];
  set.text.split('\n').forEach((rawLine, index) => {
    const line = rawLine.trim();
    if (line.length === 0) return;
    if (line.startsWith('{')) {
      try {
        // Leading newlines keep the parser's line numbers equal to the editor's.
        for (const record of parsePromptFile(label, '\n'.repeat(index) + line, 'jsonl')) rows.push({ line: index + 1, messages: record.messages });
      } catch (error) {
        problems.push({ line: index + 1, error: error as Error });
      }
    } else {
      rows.push({ line: index + 1, messages: [...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user' as const, content: line }] });
    }
  });
  return { rows, problems };
}

/** The engine's input for a set; the first problem line, if any, is thrown (the capture refuses a broken set). */
export function promptSetToInputs(set: PromptSetState, label: string): PromptInput[] {
  const { rows, problems } = parsePromptSet(set, label);
  if (problems.length > 0) throw problems[0].error;
  return rows.map((row) => ({ messages: row.messages }));
}

/** One user turn, optionally after one system message. */
function isSingleTurn(record: PromptRecord): boolean {
  const roles = record.messages.map((message) => message.role).join(',');
  return roles === 'user' || roles === 'system,user';
}

/** A single turn whose user text survives being a plain editor line unchanged (one line, trimmed, not JSON-like). */
function isPlain(record: PromptRecord): boolean {
  const user = record.messages[record.messages.length - 1].content;
  return isSingleTurn(record) && !/\n/.test(user) && user === user.trim() && !user.startsWith('{');
}

/**
 * A .txt or .jsonl file as a prompt set: plain lines plus one shared system prompt when every row fits that
 * shape, otherwise one JSON row per line (each keeps its own system prompt and turns).
 */
export function importPromptText(file: string, text: string): PromptSetState {
  const records = parsePromptFile(file, text);
  const systems = new Set(records.map((record) => (record.messages.length === 2 ? record.messages[0].content : '')));
  if (records.every(isPlain) && systems.size === 1) {
    return { text: records.map((record) => record.messages[record.messages.length - 1].content).join('\n'), system: [...systems][0], source: file };
  }
  // Rows that are one user turn with an optional system prompt keep the files' readable form, prompt first.
  const row = (record: PromptRecord) => {
    if (!isSingleTurn(record)) return JSON.stringify({ messages: record.messages });
    const user = record.messages[record.messages.length - 1].content;
    return JSON.stringify(record.messages.length === 2 ? { prompt: user, system: record.messages[0].content } : { prompt: user });
  };
  return { text: records.map(row).join('\n'), system: '', source: file };
}
