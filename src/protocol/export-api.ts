/**
 * The export worker's API: orthogonalize the open model folder's safetensors against a direction and deliver
 * the edited folder. One interface, implemented by the in-thread service (workers/export-service.ts) and the
 * comlink proxy (src/clients/export-client.ts) alike.
 */
import type { LongCallOptions, Progress } from '../base/progress';
import { InvalidInputError } from '../base/errors';
import type { AblationComponent } from '../core/recipe';
import type { FolderDescriptor } from '../ports/folder-descriptor';
import type { Envelope } from './envelope';

/** Which orthogonalization backend runs: 'auto' picks the measured default (see ExportCapabilities). */
export type { OrthogonalizeBackendChoice as ExportBackendChoice } from '../engine/backend-choice';
import type { OrthogonalizeBackendChoice as ExportBackendChoice } from '../engine/backend-choice';
import type { ModelCardResults } from '../formats/model-card';

/**
 * The direction: the analysis' per-layer directions with the selected row (recorded in the manifest as the
 * `directions.safetensors` that `abliterate analyze` writes and the report download saves), or a direction
 * file the user imported (`layer` picks the row of a per-layer file).
 */
export type ExportDirection =
  | { kind: 'analysis'; directions: Float32Array[] /* [L+1][dModel] */; layer: number }
  | { kind: 'file'; file: string; bytes: Uint8Array; layer: number | null };

/** Where the edited folder goes: a directory the user picked, one download per file, or one zip download. */
export type ExportDestination =
  | { kind: 'folder'; parent: FileSystemDirectoryHandle }
  | { kind: 'downloads' }
  | { kind: 'zip' };

export interface ExportRequest {
  folder: FolderDescriptor;
  direction: ExportDirection;
  scale: number;
  /** The tensor groups edited (the CLI's --targets). */
  targets: AblationComponent[];
  /** Inclusive block range for attn/mlp, as the CLI's --layers A-B. */
  layers: [number, number] | null;
  destination: ExportDestination;
  backend: ExportBackendChoice;
  /** Largest chunk read at once (the CLI's --chunk-mb); the engine's default when absent. */
  maxChunkBytes?: number;
  /** Also write abliterated ONNX graphs to onnx/ (the CLI's --onnx); a folder without safetensors needs it. */
  onnx?: boolean;
  /** Measured figures for the model card (README.md); absent or null: "not measured". */
  results?: ModelCardResults | null;
}

/** One delivered file: for downloads and zip, a disk-backed File in the origin-private file system. */
export interface ExportedFile {
  path: string;
  bytes: number;
  sha256: string;
  file: File | null;
}

export interface ExportResult {
  /** Name of the output: the folder name, or the zip file's name. */
  outputName: string;
  destination: ExportDestination['kind'];
  /** What the browser should download (downloads: every file; zip: the one archive; folder: none). */
  deliver: ExportedFile[];
  /** Every output file with its hash, as in abliteration.json (plus the manifest itself). */
  files: ExportedFile[];
  editedTensors: number;
  /** 'ablated': onnx/ holds abliterated graphs; 'copied': any ONNX files are the base model's. */
  onnx?: 'ablated' | 'copied';
  backend: string;
  seconds: number;
  verification: { filesChecked: number; bytesChecked: number; headersChecked: number };
  notes: string[];
}

export interface ExportCapabilities {
  webgpu: boolean;
  /** The backend 'auto' resolves to, and why. */
  defaultBackend: 'cpu' | 'webgpu';
  reason: string;
}

export interface ExportApi {
  exportModel(request: ExportRequest, options?: LongCallOptions): Promise<ExportResult>;
  /** Whether WebGPU serves here and which backend 'auto' picks. */
  capabilities(): Promise<ExportCapabilities>;
}

/** What the worker exposes through comlink: ExportApi's calls with a call id for cancel and a proxied progress callback. */
export interface ExportWorkerEndpoint {
  exportModel(callId: number, request: ExportRequest, onProgress?: (event: Progress) => void): Promise<Envelope<ExportResult>>;
  capabilities(): Promise<Envelope<ExportCapabilities>>;
  cancel(callId: number): void;
}

/** Downloads cannot create folders: a nested path's '/' becomes this ("onnx/model.onnx" → "onnx__model.onnx"). */
export const DOWNLOAD_FOLDER_SEPARATOR = '__';

export function downloadName(path: string): string {
  return path.split('/').join(DOWNLOAD_FOLDER_SEPARATOR);
}

/**
 * Checks that per-file downloads name every file unambiguously: no name already contains the separator (then
 * "a__b" could be "a/b" or itself) and no two files download under the same name, case-insensitively (the
 * Downloads folder may not tell case apart). Throws before the export starts, naming the files.
 */
export function checkDownloadNames(paths: readonly string[]): void {
  const byName = new Map<string, string>();
  for (const path of paths) {
    const segment = path.split('/').find((part) => part.includes(DOWNLOAD_FOLDER_SEPARATOR));
    if (segment !== undefined) {
      throw new InvalidInputError(
        `${path}: as a download its folders become "${DOWNLOAD_FOLDER_SEPARATOR}", which its name already contains, so the download name would be ambiguous; export to a folder or as a zip instead.`,
      );
    }
    const key = downloadName(path).toLowerCase();
    const other = byName.get(key);
    if (other !== undefined) {
      throw new InvalidInputError(`${other} and ${path} would both download as ${downloadName(path)}; export to a folder or as a zip instead.`);
    }
    byName.set(key, path);
  }
}
