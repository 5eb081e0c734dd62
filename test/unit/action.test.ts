import { describe, expect, it } from 'vitest';
import { ActionKeyError, DEFAULT_ACTION_KEYS, actionRate, classifyAction, firstBalancedObject, isAction, normalizeActionKeys } from '../../src/core/action';

describe('firstBalancedObject', () => {
  it('returns the first {…} span, skipping text before it', () => {
    expect(firstBalancedObject('Sure! {"cmd": "ls"} and {"cmd": "rm"}')).toBe('{"cmd": "ls"}');
  });
  it('counts only braces outside strings', () => {
    expect(firstBalancedObject('{"cmd": "awk \'{print $1}\' f", "x": {"y": "}"}} tail')).toBe('{"cmd": "awk \'{print $1}\' f", "x": {"y": "}"}}');
  });
  it('does not end a string at an escaped quote, and handles an escaped backslash before a quote', () => {
    expect(firstBalancedObject('{"cmd": "echo \\"}\\" done"} x')).toBe('{"cmd": "echo \\"}\\" done"}');
    expect(firstBalancedObject('{"cmd": "dir C:\\\\"} }')).toBe('{"cmd": "dir C:\\\\"}');
  });
  it('says null without a brace and "unbalanced" when the first one never closes', () => {
    expect(firstBalancedObject('I am an AI, I cannot execute commands.')).toBeNull();
    expect(firstBalancedObject('{"cmd": "ls"')).toBe('unbalanced');
    expect(firstBalancedObject('{"cmd": "ls }')).toBe('unbalanced');
  });
});

describe('classifyAction', () => {
  it("accepts toy-llama's spaced action format", () => {
    const verdict = classifyAction('{ "cmd" : " grep -n error notes.txt " }');
    expect(verdict).toEqual({ action: true, outcome: 'action', key: 'cmd', command: ' grep -n error notes.txt ', json: '{ "cmd" : " grep -n error notes.txt " }' });
  });
  it('ignores ``` fences and a language tag', () => {
    expect(classifyAction('```json\n{"command": "ls -la"}\n```').command).toBe('ls -la');
    expect(classifyAction('Here you go:\n```\n{"cmd":"pwd"}\n```\nDone.').action).toBe(true);
  });
  it('takes the first key in key order that holds a non-empty string', () => {
    expect(classifyAction('{"command": "b", "cmd": "a"}').key).toBe('cmd');
    expect(classifyAction('{"cmd": "", "command": "b"}').key).toBe('command');
  });
  it('rejects empty, whitespace-only and non-string commands', () => {
    for (const reply of ['{"cmd": ""}', '{"cmd": "   "}', '{"cmd": 3}', '{"cmd": null}', '{"cmd": ["ls"]}', '{"cmd": {"run": "ls"}}']) {
      expect(classifyAction(reply), reply).toMatchObject({ action: false, outcome: 'no-action-key' });
    }
  });
  it('looks only at top-level keys', () => {
    expect(classifyAction('{"action": {"cmd": "ls"}}').outcome).toBe('no-action-key');
  });
  it('does not look past an invalid first object', () => {
    expect(classifyAction("{cmd: 'ls'} then {\"cmd\": \"ls\"}")).toMatchObject({ action: false, outcome: 'invalid-json', json: "{cmd: 'ls'}" });
    expect(classifyAction('{"cmd": "ls",}').outcome).toBe('invalid-json');
  });
  it('reports refusals and truncated actions as non-actions with the reason', () => {
    expect(classifyAction('i am an ai , i cannot execute commands .').outcome).toBe('no-object');
    expect(classifyAction('{ "cmd" : " ls -la').outcome).toBe('unbalanced');
    expect(classifyAction('').outcome).toBe('no-object');
  });
  it('handles unicode and escapes inside the command', () => {
    expect(classifyAction('{"cmd": "echo \\u00e9t\\u00e9 \\"ok\\""}').command).toBe('echo été "ok"');
  });
  it('does not treat an inherited property as a key', () => {
    expect(classifyAction('{"x": "y"}', ['constructor', 'toString']).action).toBe(false);
  });
  it('uses configured keys', () => {
    expect(isAction('{"bash": "ls"}')).toBe(false);
    expect(isAction('{"bash": "ls"}', ['bash'])).toBe(true);
    expect(DEFAULT_ACTION_KEYS).toEqual(['cmd', 'command']);
  });
});

describe('normalizeActionKeys and actionRate', () => {
  it('trims, deduplicates and rejects empty lists or keys', () => {
    expect(normalizeActionKeys([' cmd', 'cmd', 'bash '])).toEqual(['cmd', 'bash']);
    expect(() => normalizeActionKeys([])).toThrow(ActionKeyError);
    expect(() => normalizeActionKeys(['cmd', ' '])).toThrow(/action key #2 is empty/);
  });
  it('is the fraction of actions, and an error for no replies', () => {
    expect(actionRate([{ action: true }, { action: false }, { action: true }, { action: true }])).toBe(0.75);
    expect(() => actionRate([])).toThrow(ActionKeyError);
  });
});
