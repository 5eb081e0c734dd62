/**
 * Extra graph inputs that transformers.js does not know about — the recipe hook graph's numbers
 * (src/model/recipe-hook-graph.ts) — supplied to every forward pass of a loaded model from a holder the caller
 * changes between calls. transformers.js feeds a session exactly the inputs it lists (`session.inputNames`)
 * and fails on any it cannot fill, so each session that declares the extra inputs gets:
 *   - an own `inputNames` without them (transformers.js then neither asks for them nor complains), and
 *   - a `run` that adds the holder's current tensors to the feeds it is given.
 * One session therefore serves every recipe: only the feeds change, the graph is never rebuilt.
 */
import { BackendError, InvalidInputError } from '../base/errors';
import type { OnnxTensor } from '../ports/onnx-session';

/** The extra inputs' names and where their current values come from. */
export interface GraphInputSupply {
  names: readonly string[];
  /** The tensors to feed now (one per name); a new object whenever the values change. */
  current(): Readonly<Record<string, OnnxTensor>>;
}

interface PatchableSession {
  inputNames: readonly string[];
  run: (feeds: Record<string, unknown>, ...rest: unknown[]) => Promise<unknown>;
}

/** The ORT tensor class of the runtime that made `feeds` (onnxruntime-node or -web), taken from a feed itself. */
type TensorClass = new (type: string, data: unknown, dims: readonly number[]) => unknown;

/**
 * Installs `supply` on the sessions of a transformers.js model (its `sessions` record) that declare the
 * extra inputs. Throws when no session declares all of them (the graph is not the one the supply is for).
 */
export function supplyGraphInputs(model: object, supply: GraphInputSupply): void {
  const sessions = Object.values((model as { sessions?: Record<string, unknown> }).sessions ?? {}) as Partial<PatchableSession>[];
  if (sessions.length === 0 || sessions.some((session) => typeof session?.run !== 'function' || !Array.isArray(session.inputNames))) {
    throw new BackendError('transformers.js no longer exposes its ONNX sessions as `model.sessions`; the recipe inputs cannot be fed.');
  }
  const extra = new Set(supply.names);
  const targets = (sessions as PatchableSession[]).filter((session) => supply.names.every((name) => session.inputNames.includes(name)));
  if (targets.length === 0) throw new InvalidInputError(`no session of the loaded model has the inputs ${supply.names.join(', ')}`);
  for (const session of targets) {
    const visible = session.inputNames.filter((name) => !extra.has(name));
    Object.defineProperty(session, 'inputNames', { value: visible, configurable: true });
    const run = session.run.bind(session);
    let converted: { source: Readonly<Record<string, OnnxTensor>>; tensors: Record<string, unknown> } | null = null;
    session.run = (feeds: Record<string, unknown>, ...rest: unknown[]) => {
      const values = supply.current();
      if (converted?.source !== values) {
        const sample = Object.values(feeds)[0] as { constructor: TensorClass } | undefined;
        if (!sample) throw new BackendError('a forward pass came with no feeds to take the tensor class from');
        const Tensor = sample.constructor;
        const tensors: Record<string, unknown> = {};
        for (const name of supply.names) {
          const value = values[name];
          if (!value) throw new InvalidInputError(`the graph input ${name} has no value`);
          tensors[name] = new Tensor(value.type, value.data, value.dims);
        }
        converted = { source: values, tensors };
      }
      return run({ ...feeds, ...converted.tensors }, ...rest);
    };
  }
}
