/**
 * What the two onnxruntime adapters (ort-node.ts for the CLI, ort-web.ts for the workers) do identically around
 * their different `ort` modules: describing a session's inputs and outputs, and turning feeds into ORT tensors
 * after checking that each holds as many values as its shape says (ORT's own message for a mismatch names
 * neither the feed nor the shape).
 */
import { InvalidInputError } from '../base/errors';
import type { OnnxTensor, OnnxValueInfo } from '../ports/onnx-session';

/** The part of ORT's `InferenceSession.ValueMetadata` we read (the same in onnxruntime-node and -web). */
export type OrtValueMetadata = { isTensor: false } | { isTensor: true; type: string; shape: readonly (number | string)[] };

/** Inputs or outputs of a session; dynamic dimensions (negative or symbolic) keep their name. */
export function describeValues(metadata: readonly OrtValueMetadata[], names: readonly string[]): OnnxValueInfo[] {
  return names.map((name, index) => {
    const entry = metadata[index];
    if (!entry || !entry.isTensor) return { name, type: 'non-tensor', shape: [] };
    return { name, type: entry.type, shape: entry.shape.map((dim) => (typeof dim === 'number' && dim >= 0 ? dim : String(dim))) };
  });
}

/** Feeds as the runtime's tensors, made by `toOrtTensor` once each feed's length matches its dims. */
export function toOrtFeeds<T>(feeds: Record<string, OnnxTensor>, toOrtTensor: (tensor: OnnxTensor) => T): Record<string, T> {
  const ortFeeds: Record<string, T> = {};
  for (const [name, tensor] of Object.entries(feeds)) {
    const elements = tensor.dims.reduce((product, dim) => product * dim, 1);
    if (tensor.data.length !== elements) {
      throw new InvalidInputError(`feed ${name}: ${tensor.data.length} values for shape [${tensor.dims.join(', ')}]`);
    }
    ortFeeds[name] = toOrtTensor(tensor);
  }
  return ortFeeds;
}
