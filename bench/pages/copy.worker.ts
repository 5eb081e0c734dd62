/**
 * The browser export's baseline: a plain streamed copy of the model folder through the export's own output
 * folder (src/platform/browser-output.ts, "downloads" target in the origin-private file system), in the chunk
 * size the export reads. Optionally hashes every chunk with the export's portable SHA-256, or only reads.
 */
import { Sha256 } from '../../src/core/sha256';
import { DEFAULT_MAX_CHUNK_BYTES } from '../../src/engine/ablate';
import { openFolderDescriptor } from '../../src/platform/browser-folder';
import { DirectoryOutputFolder, openExportStaging } from '../../src/platform/browser-output';
import { type FolderDescriptor } from '../../src/ports/folder-descriptor';

export interface CopyTask {
  folder: FolderDescriptor;
  hash: boolean;
  /** false: only read the files (attributes the copy's time to reading vs writing). */
  write: boolean;
}

async function copyFolder(task: CopyTask): Promise<number> {
  const started = performance.now();
  const folder = await openFolderDescriptor(task.folder);
  const output = task.write ? await DirectoryOutputFolder.create(await openExportStaging(), `${folder.name}-copy`) : null;
  for (const path of folder.list()) {
    const source = await folder.open(path);
    const sink = output ? await output.createFile(path) : null;
    const hash = task.hash ? new Sha256() : null;
    for (let offset = 0; offset < source.size; offset += DEFAULT_MAX_CHUNK_BYTES) {
      const chunk = await source.read(offset, Math.min(DEFAULT_MAX_CHUNK_BYTES, source.size - offset));
      hash?.update(chunk);
      await sink?.write(chunk);
    }
    hash?.hexDigest();
    await sink?.close();
  }
  await output?.commit();
  return (performance.now() - started) / 1000;
}

self.onmessage = async (event: MessageEvent<CopyTask>) => {
  try {
    self.postMessage({ ok: true, seconds: await copyFolder(event.data) });
  } catch (error) {
    self.postMessage({ ok: false, error: (error as Error).message ?? String(error) });
  }
};
