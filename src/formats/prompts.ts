/**
 * Prompt files (docs/contracts.md): `.txt`, one user prompt per line, or `.jsonl` with `{"prompt", "system"?}` or
 * `{"messages": [...]}` rows. Other fields of a row (ids, reference responses) are ignored. A bad row is an
 * InvalidFileError naming the file and the line, never a silently skipped prompt.
 */
import { InvalidFileError } from '../base/errors';

export type PromptFileKind = 'txt' | 'jsonl';

export type PromptRole = 'system' | 'user' | 'assistant';

export interface PromptMessage {
  role: PromptRole;
  content: string;
}

export interface PromptRecord {
  messages: PromptMessage[];
}

const ROLES: readonly PromptRole[] = ['system', 'user', 'assistant'];

function fileKind(file: string, lines: string[]): PromptFileKind {
  const lower = file.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.txt')) return 'txt';
  // Unnamed text (a textarea, a file without an extension): JSON rows start with '{'.
  const first = lines.find((line) => line.trim().length > 0);
  return first?.trim().startsWith('{') ? 'jsonl' : 'txt';
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? 'a string' : `a ${typeof value}`;
}

function parseMessages(file: string, lineNumber: number, value: unknown): PromptMessage[] {
  const where = `line ${lineNumber}`;
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidFileError(file, `${where}: "messages" must be a non-empty array of {"role", "content"} objects`, { line: lineNumber });
  }
  const messages = value.map((entry, index) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new InvalidFileError(file, `${where}: message ${index} is ${describe(entry)}, expected {"role", "content"}`, { line: lineNumber });
    }
    const { role, content } = entry as Record<string, unknown>;
    if (typeof role !== 'string' || !ROLES.includes(role as PromptRole)) {
      throw new InvalidFileError(file, `${where}: message ${index} has role ${JSON.stringify(role)}; expected one of ${ROLES.join(', ')}`, { line: lineNumber });
    }
    if (typeof content !== 'string') {
      throw new InvalidFileError(file, `${where}: message ${index} has content that is ${describe(content)}, expected a string`, { line: lineNumber });
    }
    return { role: role as PromptRole, content };
  });
  if (!messages.some((message) => message.role === 'user' && message.content.trim().length > 0)) {
    throw new InvalidFileError(file, `${where}: no non-empty user message`, { line: lineNumber });
  }
  // Activations are read where the assistant's reply would start; a finished assistant turn has no such place.
  if (messages[messages.length - 1].role === 'assistant') {
    throw new InvalidFileError(file, `${where}: the last message is an assistant message; a prompt must end with the user's turn`, { line: lineNumber });
  }
  return messages;
}

function parseJsonRow(file: string, lineNumber: number, line: string): PromptRecord {
  let row: unknown;
  try {
    row = JSON.parse(line);
  } catch (error) {
    throw new InvalidFileError(file, `line ${lineNumber}: not valid JSON (${(error as Error).message})`, { line: lineNumber });
  }
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    throw new InvalidFileError(file, `line ${lineNumber}: expected a JSON object, found ${describe(row)}`, { line: lineNumber });
  }
  const record = row as Record<string, unknown>;
  if ('messages' in record) return { messages: parseMessages(file, lineNumber, record.messages) };
  if ('prompt' in record) {
    const { prompt, system } = record;
    if (typeof prompt !== 'string' || prompt.trim().length === 0) {
      throw new InvalidFileError(file, `line ${lineNumber}: "prompt" must be a non-empty string`, { line: lineNumber });
    }
    if (system !== undefined && system !== null && typeof system !== 'string') {
      throw new InvalidFileError(file, `line ${lineNumber}: "system" must be a string when present, found ${describe(system)}`, { line: lineNumber });
    }
    const messages: PromptMessage[] = [];
    if (typeof system === 'string' && system.length > 0) messages.push({ role: 'system', content: system });
    messages.push({ role: 'user', content: prompt });
    return { messages };
  }
  throw new InvalidFileError(file, `line ${lineNumber}: a row needs "prompt" (with optional "system") or "messages"`, { line: lineNumber });
}

/** Parses a prompt file's text. `file` names it in errors and picks the format by extension unless `kind` is given. */
export function parsePromptFile(file: string, text: string, kind?: PromptFileKind): PromptRecord[] {
  // Lines end with LF, CRLF or a lone CR (classic Mac files): each is a prompt boundary, never merged.
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  kind ??= fileKind(file, lines);
  const records: PromptRecord[] = [];
  lines.forEach((line, index) => {
    if (line.trim().length === 0) return; // blank lines (and the trailing newline) separate nothing
    records.push(kind === 'jsonl' ? parseJsonRow(file, index + 1, line) : { messages: [{ role: 'user', content: line.trim() }] });
  });
  if (records.length === 0) throw new InvalidFileError(file, 'contains no prompts (the file is empty or blank)');
  return records;
}

/** One line per prompt, the system message (if any) shared by every prompt: the UI's textareas. */
export function promptsFromLines(name: string, text: string, system?: string): PromptRecord[] {
  const records = parsePromptFile(name, text, 'txt');
  if (!system) return records;
  return records.map((record) => ({ messages: [{ role: 'system', content: system }, ...record.messages] }));
}
