/**
 * The one way to find and feed an ONNX graph's external data, used by capture (CLI and browser), chat and
 * evaluation (transformers.js) and model inspection:
 * - find: the locations the graph's initializers name, main graph and subgraphs alike (externalInitializers),
 *   each checked by checkedExternalData's rule (a plain relative path to a file of the model folder);
 * - check: every initializer's byte range lies inside its file, so a truncated download is one error naming the
 *   data file and the bytes the graph needs, before onnxruntime reads garbage or fails on an opaque offset;
 * - feed: each file as the platform holds it, never read here when it need not be — the browser File's Blob
 *   (onnxruntime-web reads it once into its own heap while the session is created, and drops it after), a path
 *   on disk for onnxruntime-node sessions, and the bytes only where neither exists (in-memory folders, and
 *   transformers.js in Node, which takes bytes or model-relative names only).
 */
import { InvalidFileError } from '../base/errors';
import { checkedExternalData, externalInitializers, externalTensorRange, type ModelProto } from '../formats/onnx';
import type { ByteSource } from '../ports/bytes';
import type { ModelFolder } from '../ports/folder';
import type { ExternalDataFile } from '../ports/onnx-session';

export interface CheckedExternalFile {
  /** As the graph names it, relative to the graph's folder (how onnxruntime looks it up). */
  location: string;
  /** Folder-relative path. */
  path: string;
  source: ByteSource;
}

/** Finds and checks the external data of `graph` (folder-relative `graphPath`); reads no weights. */
export async function checkExternalData(folder: ModelFolder, graphPath: string, graph: ModelProto): Promise<CheckedExternalFile[]> {
  const graphFile = `${folder.name}/${graphPath}`;
  const graphName = graphPath.slice(graphPath.lastIndexOf('/') + 1);
  const references = checkedExternalData(graphFile, graphPath, graph, new Set(folder.list()));
  const files = new Map<string, CheckedExternalFile>();
  for (const { location, path } of references) files.set(location, { location, path, source: await folder.open(path) });
  for (const tensor of externalInitializers(graph)) {
    const range = externalTensorRange(graphFile, tensor);
    const file = files.get(range.location)!; // every location is in `references`
    const end = range.offset + (range.length ?? 0);
    if (end > file.source.size || range.offset > file.source.size) {
      throw new InvalidFileError(`${folder.name}/${file.path}`, `is truncated: ${graphName} reads initializer \`${range.tensor}\` at bytes ${range.offset}..${end} but the file has ${file.source.size} bytes`);
    }
  }
  return [...files.values()];
}

export interface FeedOptions {
  /** Hand Node files on as paths (onnxruntime-node sessions); transformers.js needs bytes instead. */
  paths?: boolean;
}

/** The external data of `graph` as a session takes it (see the file comment for what is read when). */
export async function externalDataFiles(folder: ModelFolder, graphPath: string, graph: ModelProto, options: FeedOptions = {}): Promise<ExternalDataFile[]> {
  const files = await checkExternalData(folder, graphPath, graph);
  return Promise.all(
    files.map(async ({ location, source }) => {
      if (source.blob) return { path: location, data: source.blob };
      if (options.paths && source.filePath) return { path: location, data: source.filePath };
      return { path: location, data: await source.read(0, source.size) };
    }),
  );
}

/** Total bytes of a graph's external data (the weights a session will hold), without reading them. */
export function externalDataBytes(files: readonly CheckedExternalFile[]): number {
  return files.reduce((sum, file) => sum + file.source.size, 0);
}
