/**
 * The workbench's prompt editors must hand the engine exactly the prompts `abliterate analyze` reads from the
 * same file: import → editor text → engine input is checked against the CLI's parser on every default file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePromptFile } from '../../src/formats/prompts';
import { importPromptText, parsePromptSet, promptSetToInputs } from '../../src/state/prompt-sets';

const PROMPTS_DIR = join(import.meta.dirname, '..', '..', 'public', 'prompts');

describe('prompt editors round-trip prompt files exactly', () => {
  const files = readdirSync(PROMPTS_DIR).filter((file) => file.endsWith('.jsonl'));
  it('has default prompt files to check', () => expect(files.length).toBeGreaterThan(0));
  for (const file of files) {
    it(file, () => {
      const text = readFileSync(join(PROMPTS_DIR, file), 'utf8');
      const set = importPromptText(file, text);
      expect(promptSetToInputs(set, file)).toEqual(parsePromptFile(file, text));
    });
  }

  it('keeps per-row system prompts, multi-turn rows, odd whitespace and brace-leading prompts', () => {
    const rows = [
      { prompt: 'first', system: 'alpha' },
      { prompt: 'second', system: 'beta' },
      { prompt: '  padded  ' },
      { prompt: '{not json} but a prompt' },
      { prompt: 'two\nlines' },
      { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }, { role: 'user', content: 'again' }] },
    ];
    const text = rows.map((row) => JSON.stringify(row)).join('\n');
    const set = importPromptText('mixed.jsonl', text);
    expect(set.system).toBe('');
    expect(promptSetToInputs(set, 'mixed')).toEqual(parsePromptFile('mixed.jsonl', text));
  });

  it('shows a file with one shared system prompt as plain lines plus that system prompt', () => {
    const text = ['{"prompt": "a", "system": "S"}', '{"prompt": "b", "system": "S"}'].join('\n');
    const set = importPromptText('shared.jsonl', text);
    expect(set).toEqual({ text: 'a\nb', system: 'S', source: 'shared.jsonl' });
    expect(promptSetToInputs(set, 'shared')).toEqual(parsePromptFile('shared.jsonl', text));
  });

  it('names the set and the line of a malformed JSON row typed into an editor', () => {
    const set = { text: 'plain prompt\n\n{"prompt": ', system: '', source: 'edited' };
    expect(() => promptSetToInputs(set, 'A (refusal prompts)')).toThrow(/A \(refusal prompts\).*line 3/);
  });
});

describe('prompt editors validate as you type', () => {
  it('flags a broken JSON line with its line number and does not count it as a prompt', () => {
    const set = { text: 'first plain\n{"prompt": "second", "system": "S"}\n\n{"prompt": \nfourth plain\n{"messages": [{"role": "bot", "content": "x"}]}', system: 'shared', source: 'edited' };
    const parsed = parsePromptSet(set, 'A · refusal');
    expect(parsed.rows.map((row) => row.line)).toEqual([1, 2, 5]);
    expect(parsed.rows[0]!.messages).toEqual([{ role: 'system', content: 'shared' }, { role: 'user', content: 'first plain' }]);
    // A JSON row keeps its own system prompt; the shared one applies to plain lines only.
    expect(parsed.rows[1]!.messages).toEqual([{ role: 'system', content: 'S' }, { role: 'user', content: 'second' }]);
    expect(parsed.problems.map((problem) => problem.line)).toEqual([4, 6]);
    expect(parsed.problems[0]!.error.message).toMatch(/^A · refusal: line 4: not valid JSON/);
    expect(parsed.problems[1]!.error.message).toMatch(/^A · refusal: line 6: .*role "bot"/);
    // The capture refuses the set, naming the first broken line.
    expect(() => promptSetToInputs(set, 'A · refusal')).toThrow(/line 4/);
  });

  it('gives the rows promptSetToInputs gives when every line is a prompt', () => {
    const text = readFileSync(join(PROMPTS_DIR, 'harmful.test.jsonl'), 'utf8');
    const set = importPromptText('harmful.test.jsonl', text);
    const parsed = parsePromptSet(set, 'A');
    expect(parsed.problems).toEqual([]);
    expect(parsed.rows.map((row) => ({ messages: row.messages }))).toEqual(parsePromptFile('harmful.test.jsonl', text));
  });
});
