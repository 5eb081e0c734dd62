import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePromptFile, promptsFromLines } from '../../src/formats/prompts';
import { InvalidFileError } from '../../src/base/errors';
import path from 'node:path';
import { TOY_LLAMA_DIR } from '../helpers/fixtures';

const toyPrompts = path.join(TOY_LLAMA_DIR, 'prompts');

function expectInvalid(run: () => unknown, pattern: RegExp): InvalidFileError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidFileError);
    expect((error as Error).message).toMatch(pattern);
    return error as InvalidFileError;
  }
  throw new Error('expected an InvalidFileError');
}

describe('parsePromptFile', () => {
  it('reads .txt one prompt per line, skipping blank lines and CRLF', () => {
    const records = parsePromptFile('a.txt', '\uFEFFhello world\r\n\r\n  list files  \n');
    expect(records).toEqual([
      { messages: [{ role: 'user', content: 'hello world' }] },
      { messages: [{ role: 'user', content: 'list files' }] },
    ]);
  });

  it('reads .jsonl prompt/system rows and messages rows, ignoring other fields', () => {
    const text = [
      '{"prompt": "list files", "system": "You are a terminal agent."}',
      '{"prompt": "hi"}',
      '{"id": 3, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], "response": "ignored"}',
    ].join('\n');
    expect(parsePromptFile('p.jsonl', text)).toEqual([
      { messages: [{ role: 'system', content: 'You are a terminal agent.' }, { role: 'user', content: 'list files' }] },
      { messages: [{ role: 'user', content: 'hi' }] },
      { messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }] },
    ]);
  });

  it("reads toy-llama's prompt files (messages + response rows)", () => {
    const harmful = parsePromptFile('harmful_test.jsonl', readFileSync(`${toyPrompts}/harmful_test.jsonl`, 'utf8'));
    expect(harmful).toHaveLength(100);
    expect(harmful[0].messages.at(-1)?.role).toBe('user');
    const agent = parsePromptFile('shell_agent_test.jsonl', readFileSync(`${toyPrompts}/shell_agent_test.jsonl`, 'utf8'));
    expect(agent).toHaveLength(100);
    expect(agent[0].messages[0].role).toBe('system');
  });

  it('sniffs the format of unnamed text', () => {
    expect(parsePromptFile('pasted', '{"prompt": "x"}')).toEqual([{ messages: [{ role: 'user', content: 'x' }] }]);
    expect(parsePromptFile('pasted', 'x')).toEqual([{ messages: [{ role: 'user', content: 'x' }] }]);
  });

  it('names the file for empty input', () => {
    const error = expectInvalid(() => parsePromptFile('empty.jsonl', '\n  \n'), /^empty\.jsonl: contains no prompts/);
    expect(error.data.file).toBe('empty.jsonl');
    expectInvalid(() => parsePromptFile('empty.txt', ''), /empty\.txt: contains no prompts/);
  });

  it('names the file and line of a bad row', () => {
    const bad = (line: string) => parsePromptFile('bad.jsonl', `{"prompt": "ok"}\n\n${line}\n`);
    const error = expectInvalid(() => bad('{"prompt": '), /^bad\.jsonl: line 3: not valid JSON/);
    expect(error.data.line).toBe(3);
    expectInvalid(() => bad('[1, 2]'), /line 3: expected a JSON object, found an array/);
    expectInvalid(() => bad('{"text": "x"}'), /line 3: a row needs "prompt"/);
    expectInvalid(() => bad('{"prompt": ""}'), /line 3: "prompt" must be a non-empty string/);
    expectInvalid(() => bad('{"prompt": "x", "system": 3}'), /line 3: "system" must be a string/);
    expectInvalid(() => bad('{"messages": []}'), /line 3: "messages" must be a non-empty array/);
    expectInvalid(() => bad('{"messages": [{"role": "robot", "content": "x"}]}'), /line 3: message 0 has role "robot"/);
    expectInvalid(() => bad('{"messages": [{"role": "user", "content": 5}]}'), /line 3: message 0 has content that is a number/);
    expectInvalid(() => bad('{"messages": [{"role": "system", "content": "s"}]}'), /line 3: no non-empty user message/);
    expectInvalid(
      () => bad('{"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}'),
      /line 3: the last message is an assistant message/,
    );
  });
});

describe('promptsFromLines', () => {
  it('adds a shared system message to every line', () => {
    expect(promptsFromLines('harmless', 'a\nb', 'sys')).toEqual([
      { messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'a' }] },
      { messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'b' }] },
    ]);
    expectInvalid(() => promptsFromLines('harmless prompts', ' \n'), /^harmless prompts: contains no prompts/);
  });
});
