/**
 * Cache keys and labels of the chat worker's models: what identifies a direction, an ablation and an exported
 * folder's graph, so the worker reloads only what a call changes, and what the UI shows for each ablated side.
 */
import type { AblatedModelSpec, DirectionSource } from '../src/protocol/chat-api';

/** FNV-1a over bytes: identifies a direction in a cache key (not a security hash). */
export function fingerprint(bytes: Uint8Array): string {
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return `${bytes.length}:${hash.toString(16)}`;
}

function directionKey(source: DirectionSource): string {
  if (source.kind === 'analysis') return `analysis:${source.layer}:${fingerprint(new Uint8Array(source.values.buffer, source.values.byteOffset, source.values.byteLength))}`;
  return `file:${source.file}:${source.layer}:${fingerprint(source.bytes)}`;
}

export function ablationKey(spec: AblatedModelSpec): string {
  if (spec.kind === 'folder') return `folder:${spec.key}`;
  if (spec.kind === 'recipe') {
    const rows = (list: Float32Array[] | undefined) => (list ?? []).map((row) => fingerprint(new Uint8Array(row.buffer, row.byteOffset, row.byteLength))).join(',');
    return `recipe:${JSON.stringify(spec.recipe)}:${rows(spec.directions)}:${rows(spec.harmlessMeans)}`;
  }
  return `hooks:${directionKey(spec.direction)}:${spec.scale}:${[...spec.targets].sort().join('+')}:${spec.layers?.join('-') ?? 'all'}`;
}

export function ablationLabel(spec: AblatedModelSpec): string {
  if (spec.kind === 'folder') return `exported model ${spec.folder.name}`;
  if (spec.kind === 'recipe') return `hooks · ${spec.label}`;
  const source = spec.direction.kind === 'analysis' ? `r from layer ${spec.direction.layer}` : `r from ${spec.direction.file}${spec.direction.layer === null ? '' : ` row ${spec.direction.layer}`}`;
  return `hooks · ${source} · α ${spec.scale} · ${spec.targets.join('+')}${spec.layers ? ` · blocks ${spec.layers[0]}–${spec.layers[1]}` : ''}`;
}

