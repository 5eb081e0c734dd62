/**
 * The one place that names activations (TransformerLens' `actName`), so capture graphs, engines, caches and
 * reports agree. Layer indices follow HF `hidden_states` (DESIGN.md): 0 = embedding output, l = output of
 * block l−1, L = output of the last block before the final norm.
 */
export type ActivationKind = 'resid_post' | 'resid_mid';

export function activationName(layer: number, kind: ActivationKind = 'resid_post'): string {
  if (!Number.isInteger(layer) || layer < 0) throw new RangeError(`layer index must be a non-negative integer, got ${layer}`);
  return kind === 'resid_post' ? `abliterate.hidden_states.${layer}` : `abliterate.resid_mid.${layer}`;
}

/** Parses a name made by `activationName`; null for any other graph output. */
export function parseActivationName(name: string): { layer: number; kind: ActivationKind } | null {
  const match = /^abliterate\.(hidden_states|resid_mid)\.(\d+)$/.exec(name);
  if (!match) return null;
  return { layer: Number(match[2]), kind: match[1] === 'hidden_states' ? 'resid_post' : 'resid_mid' };
}
