/**
 * Tied-ness of a model folder as both the export and the hook preview see it: config.json (with the
 * per-architecture default) and, when the folder has safetensors, whether it has an lm_head tensor at all —
 * decided by src/model/tied-embeddings.ts.
 */
import { readModelConfig, readShardMap } from '../formats/hf-folder';
import { classifyTensor } from '../model/tensor-roles';
import { decideTiedEmbeddings } from '../model/tied-embeddings';
import type { ModelFolder } from '../ports/folder';

export async function folderTiedEmbeddings(folder: ModelFolder): Promise<boolean> {
  const config = await readModelConfig(folder);
  const hasSafetensors = folder.list().some((path) => !path.includes('/') && (path.endsWith('.safetensors') || path.endsWith('.safetensors.index.json')));
  if (!hasSafetensors) return decideTiedEmbeddings(config, null, null);
  const names = [...(await readShardMap(folder)).tensorToShard.keys()];
  const embeddingName = names.find((name) => classifyTensor(name, config)?.role === 'embedding') ?? null;
  return decideTiedEmbeddings(config, names, embeddingName);
}
