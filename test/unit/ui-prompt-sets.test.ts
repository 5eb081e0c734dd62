/**
 * The workbench's prompt editors must hand the engine exactly the prompts `abliterate analyze` reads from the
 * same file: import → editor text → engine input is checked against the CLI's parser on every default file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePromptFile } from '../../src/formats/prompts';
import { importPromptText, promptSetToInputs } from '../../src/state/prompt-sets';

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
