/**
 * Abliterated ONNX graphs (`ablate --onnx`, the export's ONNX option): every `onnx/*.onnx` decoder and its
 * `embed_tokens` graph, planned by src/model/onnx-ablation.ts and written here.
 *
 * Layout: each graph keeps its file name; its external data is written as `<graph>.onnx_data`, `_data_1`, … (the
 * transformers.js names), one output file per input file with every byte at the same offset, so the graph's
 * untouched external references stay valid. Data files are streamed in chunks: edited initializers are read,
 * orthogonalized by the CPU functions of src/core/orthogonalize.ts (the ones the safetensors export uses, with
 * the same partial sums, so an initializer and its safetensors twin agree bit for bit) and written; every other
 * range is copied. Inline initializers are edited in the decoded graph, which is encoded once at the end.
 */
import { applyBias, applyColumnsTransposed, applyRows } from '../core/orthogonalize';
import { FLOAT_DTYPE_BYTES, type FloatDType } from '../core/dtypes';
import { decodeOnnxModel, encodeOnnxModel, int64ToNumber, onnx, OnnxDataType, type ModelProto, type TensorProto } from '../formats/onnx';
import type { ModelConfig } from '../formats/hf-folder';
import { readExactly } from '../formats/safetensors';
import { planDecoderAblation, planEmbeddingGraphAblation, type AblationNumbers, type OnnxGraphAblation, type OnnxInitializerEdit } from '../model/onnx-ablation';
import { MemoryByteSource, type ByteSink, type ByteSource } from '../ports/bytes';
import { checkedRelativePath, type ModelFolder, type OutputFolder } from '../ports/folder';
import { InvalidFileError, InvalidInputError, UnsupportedModelError, throwIfAborted } from '../base/errors';
import { copyRange, rowsPerChunk, writeFile, type ByteMeter, type HashFactory, type OutputFileRecord } from './output-writer';

export interface OnnxExternalFile {
  /** The location the input graph names, and the folder path of that file. */
  location: string;
  inputPath: string;
  source: ByteSource;
  /** The transformers.js name it is written under. */
  outputLocation: string;
}

export interface OnnxExportGraph {
  path: string;
  role: 'decoder' | 'embedding';
  graphSize: number;
  ablation: OnnxGraphAblation;
  externalFiles: OnnxExternalFile[];
}

export interface OnnxExportPlan {
  graphs: OnnxExportGraph[];
  /** Folder paths the ONNX writer produces (graphs and their external data): not copied. */
  consumedPaths: Set<string>;
}

export interface OnnxWriteOptions {
  maxChunkBytes: number;
  createHash: HashFactory;
  meter: ByteMeter;
  signal?: AbortSignal;
}

const NOT_A_DECODER = /^(embed_tokens|vision_encoder|audio_encoder|encoder_model|speech_encoder)/;

/** Decodes and plans every graph to ablate; nothing is written. Errors name the graph or data file. */
export async function planOnnxExport(folder: ModelFolder, config: ModelConfig, ablation: AblationNumbers): Promise<OnnxExportPlan> {
  const files = folder.list();
  const graphPaths = files.filter((path) => /^onnx\/[^/]+\.onnx$/.test(path));
  const stem = (path: string) => path.slice('onnx/'.length, -'.onnx'.length);
  const decoders = graphPaths.filter((path) => !NOT_A_DECODER.test(stem(path)));
  if (decoders.length === 0) throw new InvalidInputError(`${folder.name}: has no ONNX decoder graph in onnx/ (looked for onnx/*.onnx) to ablate`);
  const graphs: OnnxExportGraph[] = [];
  let takesInputsEmbeds = false;
  for (const path of decoders) {
    const model = await readGraph(folder, path);
    const planned = named(folder, path, () => planDecoderAblation(model, { ablation, tiedEmbeddings: config.tieWordEmbeddings, numLayers: config.numLayers }));
    takesInputsEmbeds ||= (model.graph?.input ?? []).some((info) => info.name === 'inputs_embeds');
    graphs.push(await graphPlan(folder, path, 'decoder', planned));
  }
  if (ablation.components.includes('embed') && ablation.weightFor('embed', -1) !== 0 && takesInputsEmbeds) {
    const embeddings = graphPaths.filter((path) => stem(path).startsWith('embed_tokens'));
    if (embeddings.length === 0) throw new InvalidInputError(`${folder.name}: the decoder takes inputs_embeds but onnx/ has no embed_tokens graph to ablate the embedding in`);
    for (const path of embeddings) {
      const model = await readGraph(folder, path);
      graphs.push(await graphPlan(folder, path, 'embedding', named(folder, path, () => planEmbeddingGraphAblation(model, `${folder.name}/${path}`, ablation))));
    }
  }
  const consumedPaths = new Set<string>();
  for (const graph of graphs) {
    consumedPaths.add(graph.path);
    for (const file of graph.externalFiles) consumedPaths.add(file.inputPath);
  }
  return { graphs, consumedPaths };
}

/** Bytes the writer reads and writes, for the progress bar. */
export function onnxExportWork(plan: OnnxExportPlan): number {
  let total = 0;
  for (const graph of plan.graphs) {
    total += graph.graphSize;
    for (const file of graph.externalFiles) total += file.source.size;
  }
  return total;
}

/** The graph read directly (not through ./transformers-files, which would load transformers.js into every ablate). */
async function readGraph(folder: ModelFolder, path: string): Promise<ModelProto> {
  const source = await folder.open(path);
  return decodeOnnxModel(`${folder.name}/${path}`, await source.read(0, source.size));
}

/** Runs a planning step; a model-structure error gets the graph's file name in front. */
function named<T>(folder: ModelFolder, path: string, body: () => T): T {
  try {
    return body();
  } catch (error) {
    const file = `${folder.name}/${path}`;
    if (error instanceof UnsupportedModelError && !error.message.startsWith(file)) throw new UnsupportedModelError(`${file}: ${error.message}`, { ...error.data, file });
    if (error instanceof InvalidInputError && !error.message.startsWith(file)) throw new InvalidInputError(`${file}: ${error.message}`, { ...error.data, file });
    throw error;
  }
}

interface ExternalReference {
  location: string;
  offset: number;
  length: number | null;
}

function externalReference(tensor: TensorProto): ExternalReference | null {
  if (tensor.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) return null;
  const entries = new Map((tensor.externalData ?? []).map((entry) => [entry.key ?? '', entry.value ?? '']));
  const offset = Number(entries.get('offset') ?? '0');
  const length = entries.has('length') ? Number(entries.get('length')) : null;
  return { location: entries.get('location') ?? '', offset, length };
}

/** Checks every external reference of the graph (file present, range inside it) and names the output files. */
async function graphPlan(folder: ModelFolder, path: string, role: OnnxExportGraph['role'], ablation: OnnxGraphAblation): Promise<OnnxExportGraph> {
  const directory = path.slice(0, path.lastIndexOf('/') + 1);
  const graphName = path.slice(directory.length);
  const files = new Set(folder.list());
  const externalFiles: OnnxExternalFile[] = [];
  for (const tensor of ablation.model.graph?.initializer ?? []) {
    const reference = externalReference(tensor);
    if (!reference) continue;
    const where = `${folder.name}/${path}`;
    if (!reference.location || !Number.isSafeInteger(reference.offset) || reference.offset < 0 || (reference.length !== null && (!Number.isSafeInteger(reference.length) || reference.length < 0))) {
      throw new InvalidFileError(where, `initializer \`${tensor.name}\` has an invalid external-data reference (location ${JSON.stringify(reference.location)}, offset ${reference.offset}, length ${reference.length})`);
    }
    const inputPath = `${directory}${reference.location}`;
    checkedRelativePath(inputPath);
    let file = externalFiles.find((candidate) => candidate.location === reference.location);
    if (!file) {
      if (!files.has(inputPath)) throw new InvalidFileError(where, `stores initializer \`${tensor.name}\` in ${reference.location}, which is missing from the folder`);
      const suffix = externalFiles.length === 0 ? '' : `_${externalFiles.length}`;
      file = { location: reference.location, inputPath, source: await folder.open(inputPath), outputLocation: `${graphName}_data${suffix}` };
      externalFiles.push(file);
    }
    const end = reference.offset + (reference.length ?? storedByteLength(tensor));
    if (end > file.source.size) {
      throw new InvalidFileError(`${folder.name}/${inputPath}`, `is truncated: ${graphName} reads initializer \`${tensor.name}\` at bytes ${reference.offset}..${end} but the file has ${file.source.size} bytes`);
    }
  }
  const source = await folder.open(path);
  return { path, role, graphSize: source.size, ablation, externalFiles };
}

const ELEMENT_BYTES: Readonly<Record<number, number>> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

function storedByteLength(tensor: TensorProto): number {
  const count = (tensor.dims ?? []).reduce<number>((product, dim) => product * int64ToNumber(dim), 1);
  return count * (ELEMENT_BYTES[tensor.dataType ?? 0] ?? 0);
}

/** Writes one graph and its external data into `output`; returns the records of the files written. */
export async function writeOnnxGraph(graph: OnnxExportGraph, output: OutputFolder, options: OnnxWriteOptions): Promise<Record<string, OutputFileRecord>> {
  const records: Record<string, OutputFileRecord> = {};
  const directory = graph.path.slice(0, graph.path.lastIndexOf('/') + 1);
  const model = graph.ablation.model;
  const initializers = model.graph?.initializer ?? [];
  const byName = new Map(initializers.map((tensor, position) => [tensor.name ?? '', position]));
  const edits = new Map(graph.ablation.edits.map((edit) => [edit.initializer, edit]));
  const replaced = [...initializers];

  for (const file of graph.externalFiles) {
    const ranges: { offset: number; length: number; edit: OnnxInitializerEdit }[] = [];
    for (const tensor of initializers) {
      const reference = externalReference(tensor);
      const edit = edits.get(tensor.name ?? '');
      if (!reference || reference.location !== file.location || !edit) continue;
      const length = reference.length ?? storedByteLength(tensor);
      checkEditSize(`${graph.path}: initializer \`${tensor.name}\``, edit, length);
      ranges.push({ offset: reference.offset, length, edit });
    }
    ranges.sort((a, b) => a.offset - b.offset);
    records[`${directory}${file.outputLocation}`] = await writeFile(output, `${directory}${file.outputLocation}`, options.createHash, async (sink) => {
      let cursor = 0;
      for (const range of ranges) {
        if (range.offset < cursor) throw new InvalidFileError(file.source.name, `edited initializer \`${range.edit.initializer}\` overlaps another one`);
        await copyRange(file.source, cursor, range.offset, sink, options.maxChunkBytes, options.signal, options.meter);
        await writeEdited((offset, length) => readExactly(file.source, range.offset + offset, length), range.edit, sink, options);
        cursor = range.offset + range.length;
      }
      await copyRange(file.source, cursor, file.source.size, sink, options.maxChunkBytes, options.signal, options.meter);
    });
  }

  for (const [name, edit] of edits) {
    const position = byName.get(name);
    if (position === undefined) throw new InvalidFileError(graph.path, `has no initializer \`${name}\``);
    const tensor = initializers[position];
    if (externalReference(tensor)) continue;
    const stored = inlineBytes(graph.path, tensor, edit.dtype);
    checkEditSize(`${graph.path}: initializer \`${name}\``, edit, stored.byteLength);
    const edited = new Uint8Array(stored.byteLength);
    let written = 0;
    const collect: ByteSink = { name: graph.path, write: async (chunk) => void (edited.set(chunk, written), (written += chunk.byteLength)), close: async () => undefined, abort: async () => undefined };
    await writeEdited((offset, length) => readExactly(new MemoryByteSource(graph.path, stored), offset, length), edit, collect, { ...options, meter: null });
    replaced[position] = onnx.TensorProto.create({ ...tensor, rawData: edited, floatData: [], int32Data: [] });
  }
  const renamed = new Map(graph.externalFiles.map((file) => [file.location, file.outputLocation]));
  const withLocations = replaced.map((tensor) => {
    const reference = externalReference(tensor);
    if (!reference || renamed.get(reference.location) === reference.location) return tensor;
    const externalData = (tensor.externalData ?? []).map((entry) => (entry.key === 'location' ? onnx.StringStringEntryProto.create({ key: 'location', value: renamed.get(reference.location) }) : entry));
    return onnx.TensorProto.create({ ...tensor, externalData });
  });
  const bytes = encodeOnnxModel(onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...model.graph, initializer: withLocations }) }));
  records[graph.path] = await writeFile(output, graph.path, options.createHash, async (sink) => {
    await sink.write(bytes);
    options.meter.advance(graph.graphSize, graph.path);
  });
  return records;
}

function checkEditSize(where: string, edit: OnnxInitializerEdit, byteLength: number): void {
  const expected = edit.rows * edit.cols * FLOAT_DTYPE_BYTES[edit.dtype];
  if (byteLength !== expected) throw new InvalidFileError(where, `holds ${byteLength} bytes but its shape [${edit.rows}, ${edit.cols}] ${edit.dtype} needs ${expected}`);
}

/** The little-endian bytes of an inline initializer, whichever field holds them. */
function inlineBytes(file: string, tensor: TensorProto, dtype: FloatDType): Uint8Array {
  if (tensor.rawData && tensor.rawData.byteLength > 0) return tensor.rawData;
  if (dtype === 'F32' && tensor.dataType === OnnxDataType.FLOAT && (tensor.floatData ?? []).length > 0) {
    const values = Float32Array.from(tensor.floatData ?? []);
    return new Uint8Array(values.buffer);
  }
  if (dtype !== 'F32' && (tensor.int32Data ?? []).length > 0) {
    const values = Uint16Array.from(tensor.int32Data ?? []); // float16/bfloat16 bits, one per int32 (ONNX spec)
    return new Uint8Array(values.buffer);
  }
  if (storedByteLength(tensor) === 0) return new Uint8Array(0);
  throw new InvalidFileError(file, `initializer \`${tensor.name}\` holds no data in a field this tool reads`);
}

/** Streams one edited initializer through the orthogonalizer in row chunks. */
async function writeEdited(
  read: (offset: number, length: number) => Promise<Uint8Array>,
  edit: OnnxInitializerEdit,
  sink: ByteSink,
  options: Omit<OnnxWriteOptions, 'meter'> & { meter: ByteMeter | null },
): Promise<void> {
  const elementBytes = FLOAT_DTYPE_BYTES[edit.dtype];
  const rowBytes = edit.cols * elementBytes;
  const chunkRows = rowsPerChunk(edit.cols, elementBytes, options.maxChunkBytes);
  // The safetensors export reads the HF matrix [dModel, in] in chunks of this many rows; its partial sums are mirrored.
  const partialRows = rowsPerChunk(edit.rows, elementBytes, options.maxChunkBytes);
  for (let rowStart = 0; rowStart < edit.rows; rowStart += chunkRows) {
    throwIfAborted(options.signal);
    const count = Math.min(chunkRows, edit.rows - rowStart);
    const chunk = await read(rowStart * rowBytes, count * rowBytes); // [count, dModel]
    const edited =
      edit.layout === 'transposed-columns'
        ? applyColumnsTransposed(chunk, edit.dtype, count, edit.cols, edit.direction, edit.weight, partialRows)
        : edit.rows === 1
          ? applyBias(chunk, edit.dtype, edit.direction, edit.weight)
          : applyRows(chunk, edit.dtype, count, edit.cols, edit.direction, edit.weight);
    await sink.write(edited);
    options.meter?.advance(chunk.byteLength, sink.name);
  }
}
