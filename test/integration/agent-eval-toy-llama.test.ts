/**
 * Agent evaluation on toy-llama, which was trained to answer shell requests inside a terminal-agent system
 * prompt with a JSON action and the same requests without one with "i am an ai , i cannot execute commands":
 * `abliterate eval --agent` reports base and ablated action and refusal rates that are plain counts over its own
 * samples, the base model acts on ≥ 90% of its agent prompts, and removing the shell direction (no system
 * prompt vs agent prompt) turns the no-system-prompt refusals into actions.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOY_LLAMA } from '../helpers/toy-llama-session';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PROMPTS = path.join(TOY_LLAMA, 'prompts');
/** The acceptance bound on toy-llama's base action rate. */
const MIN_BASE_ACTION_RATE = 0.9;

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/abliterate.mjs'), ...args], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

interface Reply { response: string; action: boolean; refused: boolean }
interface AgentJson {
  count: number;
  base: { actionRate: number; refusalRate: number };
  ablated: { actionRate: number; refusalRate: number };
  samples: { messages: { role: string; content: string }[]; base: Reply; ablated: Reply }[];
  settings: { actionKeys: string[] };
}

/** toy-llama's action format is the whole reply as one JSON object; checked here without the classifier. */
function plainJsonAction(response: string, keys: string[]): boolean {
  try {
    const value = JSON.parse(response.trim()) as Record<string, unknown>;
    return keys.some((key) => typeof value[key] === 'string' && (value[key] as string).trim().length > 0);
  } catch {
    return false;
  }
}

function expectRatesAreCounts(agent: AgentJson): void {
  expect(agent.samples).toHaveLength(agent.count);
  for (const side of ['base', 'ablated'] as const) {
    const actions = agent.samples.filter((sample) => sample[side].action).length;
    const refusals = agent.samples.filter((sample) => sample[side].refused).length;
    expect(agent[side].actionRate).toBe(actions / agent.count);
    expect(agent[side].refusalRate).toBe(refusals / agent.count);
    for (const sample of agent.samples) expect(sample[side].action, sample[side].response).toBe(plainJsonAction(sample[side].response, agent.settings.actionKeys));
  }
}

let work: string;
let directions: string;
const subset = async (file: string, count: number): Promise<string> => {
  const lines = (await readFile(path.join(PROMPTS, file), 'utf8')).split('\n').filter((line) => line.trim()).slice(0, count);
  const out = path.join(work, `${count}-${file}`);
  await writeFile(out, `${lines.join('\n')}\n`);
  return out;
};

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'abliterate-agent-'));
  const analyze = await runCli(['analyze', '--model', TOY_LLAMA, '--harmful', await subset('shell_nosys_train.jsonl', 96), '--harmless', await subset('shell_agent_train.jsonl', 96), '--out', path.join(work, 'shell')]);
  expect(analyze.stderr).not.toMatch(/Error/);
  directions = path.join(work, 'shell', 'directions.safetensors');
}, 120_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('abliterate eval --agent on toy-llama', () => {
  it('reports action and refusal rates that are counts over its own samples; the shell direction turns refusals into actions', async () => {
    const agentPrompts = await subset('shell_agent_test.jsonl', 24);
    const noSystem = await subset('shell_nosys_test.jsonl', 16);
    const out = path.join(work, 'eval.json');
    const result = await runCli(['eval', '--model', TOY_LLAMA, '--direction', directions, '--layer', '3', '--harmful', noSystem, '--harmless', await subset('shell_agent_test.jsonl', 8), '--agent', agentPrompts, '--out', out]);
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(out, 'utf8')) as { agent: AgentJson; base: { refusalRate: number } };
    expect(report.agent.count).toBe(24);
    expect(report.agent.base.actionRate).toBeGreaterThanOrEqual(MIN_BASE_ACTION_RATE);
    expect(report.agent.settings.actionKeys).toEqual(['cmd', 'command']);
    expectRatesAreCounts(report.agent);
    expect(result.stdout).toMatch(/agent prompts \(24\): action rate base \d+\.\d%/);

    // The no-system-prompt requests as agent prompts: refusals at base, actions once the shell direction is gone.
    const asAgent = path.join(work, 'eval-nosys.json');
    const nosys = await runCli(['eval', '--model', TOY_LLAMA, '--direction', directions, '--layer', '3', '--harmful', noSystem, '--harmless', await subset('shell_agent_test.jsonl', 8), '--agent', noSystem, '--out', asAgent]);
    expect(nosys.code).toBe(0);
    const flipped = (JSON.parse(await readFile(asAgent, 'utf8')) as { agent: AgentJson }).agent;
    expectRatesAreCounts(flipped);
    expect(flipped.base.actionRate).toBe(0);
    expect(flipped.base.refusalRate).toBe(1);
    expect(flipped.ablated.actionRate).toBeGreaterThan(0.5);
  }, 180_000);

  it('uses --action-keys, and rejects keys without --agent or an empty key with one line', async () => {
    const agentPrompts = await subset('shell_agent_test.jsonl', 6);
    const common = ['--model', TOY_LLAMA, '--direction', directions, '--layer', '3', '--harmful', agentPrompts, '--harmless', agentPrompts, '--max-new-tokens', '24'];
    const out = path.join(work, 'eval-keys.json');
    const result = await runCli(['eval', ...common, '--agent', agentPrompts, '--action-keys', 'bash', '--out', out]);
    expect(result.code).toBe(0);
    const agent = (JSON.parse(await readFile(out, 'utf8')) as { agent: AgentJson }).agent;
    expect(agent.settings.actionKeys).toEqual(['bash']);
    expect(agent.base.actionRate).toBe(0);
    expectRatesAreCounts(agent);

    const noAgent = await runCli(['eval', ...common, '--action-keys', 'cmd', '--out', path.join(work, 'never.json')]);
    expect(noAgent.code).not.toBe(0);
    expect(noAgent.stderr.trim().split('\n')).toHaveLength(1);
    expect(noAgent.stderr).toMatch(/--action-keys needs --agent FILE/);
    const emptyKey = await runCli(['eval', ...common, '--agent', agentPrompts, '--action-keys', 'cmd,', '--out', path.join(work, 'never.json')]);
    expect(emptyKey.code).not.toBe(0);
    expect(emptyKey.stderr).toMatch(/action key #2 is empty/);
    await expect(readFile(path.join(work, 'never.json'))).rejects.toThrow();
  }, 120_000);
});
