/**
 * The one place that names the activations the capture graph exposes, so capture graphs, engines, caches and
 * reports agree. Names use Hugging Face's `hidden_states` indexing (docs/definitions.md): index 0 is the
 * embedding output, index l the output of block l−1, index L the last block's output before the final norm.
 *
 * TransformerLens names the same tensors differently: our hidden state l (l < L) is its `blocks.l.hook_resid_pre`
 * (equally `blocks.(l−1).hook_resid_post` for l ≥ 1), and our index L is `blocks.(L−1).hook_resid_post`. We do not
 * use TransformerLens's names, so an index can never be read off by one.
 */
export function activationName(layer: number): string {
  if (!Number.isInteger(layer) || layer < 0) throw new RangeError(`layer index must be a non-negative integer, got ${layer}`);
  return `abliterate.hidden_states.${layer}`;
}
