/**
 * The one way to find and feed an ONNX graph's external data, used by capture (CLI and browser), chat and
 * evaluation (transformers.js) and model inspection:
 * - find: the locations the graph's initializers name, main graph and subgraphs alike (externalInitializers),
 *   each checked by checkedExternalData's rule (a plain relative path to a file of the model folder);
 * - check: every initializer's byte range lies inside its file, so a truncated download is one error naming the
 *   data file and the bytes the graph needs, before onnxruntime reads garbage or fails on an opaque offset;
 * - feed: each file as the platform holds it, never read here when it need not be — the browser File's Blob
 *   (onnxruntime-web reads it once into its own heap while the session is created, and drops it after; past
 *   2 GiB, where Chromium will not read a Blob whole, its bytes read here in slices: see largeBlobBytes), a path
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
      if (source.blob) return { path: location, data: source.size <= WHOLE_BLOB_READ_LIMIT ? source.blob : await largeBlobBytes(source) };
      if (options.paths && source.filePath) return { path: location, data: source.filePath };
      return { path: location, data: await source.read(0, source.size) };
    }),
  );
}

/**
 * Chromium refuses `Blob.arrayBuffer()` past 2 GiB ("The requested file could not be read"), and that is how
 * onnxruntime-web reads a Blob it is given. A larger file is read here in slices into one buffer of its size
 * (a WebAssembly.Memory's where a plain ArrayBuffer that large is refused, as onnxruntime-web itself does for
 * large fetches) and handed over as bytes: read once, held once until the session has copied it into its heap.
 * (Handing onnxruntime-web an object URL instead, which it fetches and streams, loaded a buffer that failed its
 * bounds check at the first weight: "Failed to load external data file … Out of bounds".)
 */
const WHOLE_BLOB_READ_LIMIT = 2 ** 31 - 1;
const BLOB_SLICE_BYTES = 64 * 2 ** 20;
async function largeBlobBytes(source: ByteSource): Promise<Uint8Array> {
  const bytes = largeBuffer(source.size);
  for (let offset = 0; offset < source.size; offset += BLOB_SLICE_BYTES) bytes.set(await source.read(offset, BLOB_SLICE_BYTES), offset);
  return bytes;
}

function largeBuffer(size: number): Uint8Array {
  try {
    return new Uint8Array(size);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    const pages = Math.ceil(size / 65536);
    return new Uint8Array(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, size);
  }
}

/** Total bytes of a graph's external data (the weights a session will hold), without reading them. */
export function externalDataBytes(files: readonly CheckedExternalFile[]): number {
  return files.reduce((sum, file) => sum + file.source.size, 0);
}
