/**
 * The chat worker's pacing step (src/engine/run-pacing.ts) runs before every forward pass of the models
 * LanguageModel loads while it is set, and touches nothing else: onnxruntime's InferenceSession class keeps its
 * own `run`, and a model loaded without a step runs unpaced.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/base/errors';
import { LanguageModel, loadGenerationTokenizer, type Conversation } from '../../src/engine/generate';
import { paceModelSessions, setRunPacing } from '../../src/engine/run-pacing';
import { openNodeModelFolder } from '../../src/platform/node-files';

const DEMO = path.resolve(import.meta.dirname, '../../public/models/demo');
const prompt: Conversation = [{ role: 'user', content: 'write a poem about rain' }];

/** onnxruntime's session class: its typings expose only the factory, so the prototype is reached through this. */
const sessionPrototype = (ort.InferenceSession as unknown as { prototype: object }).prototype;

type Session = { run: (...args: unknown[]) => Promise<unknown> };
/** Counts the forward passes of a loaded model by wrapping its sessions once more (after any pacing). */
function countRuns(model: LanguageModel): { runs: number } {
  const counter = { runs: 0 };
  const sessions = Object.values((model as unknown as { model: { sessions: Record<string, Session> } }).model.sessions);
  for (const session of sessions) {
    const run = session.run;
    session.run = (...args: unknown[]) => {
      counter.runs++;
      return run(...args);
    };
  }
  return counter;
}

afterEach(() => setRunPacing(null));

describe('run pacing', () => {
  it('awaits the step before every forward pass of a paced model, and only there', async () => {
    const prototypeRun = Object.getOwnPropertyDescriptor(sessionPrototype, 'run');
    const folder = await openNodeModelFolder(DEMO);
    const tokenizer = await loadGenerationTokenizer(folder);
    const order: string[] = [];
    setRunPacing(async () => {
      order.push('step');
    });
    const paced = await LanguageModel.load(folder, tokenizer);
    setRunPacing(null);
    const unpaced = await LanguageModel.load(folder, tokenizer);
    try {
      const pacedRuns = countRuns(paced);
      const unpacedRuns = countRuns(unpaced);
      await paced.generate(prompt, { maxNewTokens: 5, minNewTokens: 5 });
      expect(pacedRuns.runs).toBeGreaterThanOrEqual(4);
      expect(order).toHaveLength(pacedRuns.runs);

      await unpaced.generate(prompt, { maxNewTokens: 5, minNewTokens: 5 });
      expect(unpacedRuns.runs).toBeGreaterThanOrEqual(4);
      expect(order).toHaveLength(pacedRuns.runs); // no step for the unpaced model
      expect(Object.getOwnPropertyDescriptor(sessionPrototype, 'run')).toEqual(prototypeRun);
    } finally {
      await paced.dispose();
      await unpaced.dispose();
    }
  });

  it('refuses to pace a model whose sessions it cannot find instead of leaving the chat unpaced', () => {
    setRunPacing(async () => undefined);
    expect(() => paceModelSessions({})).toThrow(BackendError);
    expect(() => paceModelSessions({ sessions: { model: {} } })).toThrow(/model\.sessions/);
    setRunPacing(null);
    expect(() => paceModelSessions({})).not.toThrow();
  });
});
