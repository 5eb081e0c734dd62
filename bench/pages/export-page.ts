/**
 * Browser export bench page. The model folder arrives through a real `<input webkitdirectory>` (disk-backed
 * File objects, as when a user picks a folder). Each round times, in rotating order:
 *   read         every file read in 32 MiB Blob slices, nothing written (attributes the copy's time)
 *   copy         every file read in 32 MiB Blob slices and written through the export's own output folder
 *                (DirectoryOutputFolder in the origin-private file system, the "downloads" target): no compute
 *   copy+hash    the same, hashing every chunk with the portable SHA-256 the export uses (attributes its cost)
 *   export       the workbench's export worker (workers/export.worker.ts, comlink) on the same folder and target:
 *                plan, orthogonalize, hash, verify, commit
 * Each runs in a dedicated worker, like the app's export.
 */
import * as Comlink from 'comlink';
import { folderFilesFromInput } from '../../src/platform/browser-folder';
import type { ExportResult, ExportWorkerEndpoint } from '../../src/protocol/export-api';
import type { CopyTask } from './copy.worker';
import { type FolderDescriptor } from '../../src/ports/folder-descriptor';

export interface ExportTask {
  directionJson: string;
  backend: 'cpu' | 'webgpu';
  rounds: number;
  /** Which variants to time (webgpu export runs alone: SwiftShader is slow). */
  variants: ExportVariant[];
}

export type ExportVariant = 'read' | 'copy' | 'copy+hash' | 'export';

export interface ExportTiming {
  bytes: number;
  files: number;
  seconds: Partial<Record<ExportVariant, number[]>>;
  exportBackend: string | null;
  editedTensors: number;
  verifiedBytes: number;
}

function descriptor(): FolderDescriptor {
  const input = document.querySelector<HTMLInputElement>('#folder');
  if (!input?.files || input.files.length === 0) throw new Error('no folder was set on #folder');
  const { name, files } = folderFilesFromInput(input.files);
  return { kind: 'files', name, files };
}

async function timeCopy(folder: FolderDescriptor, hash: boolean, write: boolean): Promise<number> {
  const worker = new Worker(new URL('./copy.worker.ts', import.meta.url), { type: 'module' });
  try {
    const reply = await new Promise<{ ok: boolean; seconds?: number; error?: string }>((resolve) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => resolve({ ok: false, error: event.message });
      worker.postMessage({ folder, hash, write } satisfies CopyTask);
    });
    if (!reply.ok) throw new Error(`copy failed: ${reply.error}`);
    return reply.seconds as number;
  } finally {
    worker.terminate();
  }
}

async function timeExport(folder: FolderDescriptor, task: ExportTask): Promise<{ seconds: number; result: ExportResult }> {
  const worker = new Worker(new URL('../../workers/export.worker.ts', import.meta.url), { type: 'module' });
  const endpoint = Comlink.wrap<ExportWorkerEndpoint>(worker);
  try {
    const started = performance.now();
    const reply = await endpoint.exportModel(
      1,
      {
        folder,
        ablation: {
          recipe: { method: 'standard', direction: 0, projection: 'none', components: { embed: 1, attn: 1, mlp: 1 } },
          label: 'direction.json, α 1',
          directions: { kind: 'file', file: 'direction.json', bytes: new TextEncoder().encode(task.directionJson) },
          shorthand: { row: null, scale: 1, targets: ['embed', 'attn', 'mlp'], layers: null },
        },
        destination: { kind: 'downloads' },
        backend: task.backend,
      },
      undefined,
    );
    const seconds = (performance.now() - started) / 1000;
    if (!reply.ok) throw new Error(`export failed: ${reply.error.name}: ${reply.error.message}`);
    return { seconds, result: reply.value };
  } finally {
    endpoint[Comlink.releaseProxy]();
    worker.terminate();
  }
}

async function runExportTask(task: ExportTask): Promise<ExportTiming> {
  const folder = descriptor();
  const files = folder.kind === 'files' ? folder.files : [];
  const timing: ExportTiming = {
    bytes: files.reduce((sum, entry) => sum + entry.file.size, 0),
    files: files.length,
    seconds: {},
    exportBackend: null,
    editedTensors: 0,
    verifiedBytes: 0,
  };
  for (let round = 0; round < task.rounds; round++) {
    for (let index = 0; index < task.variants.length; index++) {
      const variant = task.variants[(index + round) % task.variants.length];
      let seconds: number;
      if (variant === 'export') {
        const measured = await timeExport(folder, task);
        seconds = measured.seconds;
        timing.exportBackend = measured.result.backend;
        timing.editedTensors = measured.result.editedTensors;
        timing.verifiedBytes = measured.result.verification.bytesChecked;
      } else seconds = await timeCopy(folder, variant === 'copy+hash', variant !== 'read');
      (timing.seconds[variant] ??= []).push(seconds);
    }
  }
  return timing;
}

Object.assign(globalThis, { runExportTask, benchReady: true });
