/**
 * ONNX model files through `onnx-proto` (protobufjs static code for onnx 1.10's schema).
 *
 * What decode → encode keeps and changes (checked on the toy-llama and Qwen3.5 fixtures):
 * - every field onnx-proto knows survives; the only byte-level change is that repeated int64 fields
 *   (`TensorProto.dims`, `AttributeProto.ints`) come back packed, which every ONNX reader accepts;
 * - `bytes` fields (`rawData`) decode as views into the input buffer, so decoding copies no weights, and
 *   encoding copies each one exactly once into the output;
 * - external-data references (`dataLocation = EXTERNAL`, `externalData` key/value pairs) are plain fields and
 *   are written back unchanged; the referenced `*.onnx_data` files are never read;
 * - fields newer than onnx 1.10 (e.g. node `metadata_props`) are not in the schema and are dropped;
 *   `onnxFieldsDroppedOnReencode` lists them so callers can warn.
 *
 * int64 fields decode as `Long` objects in Node (protobufjs finds the `long` package) and as plain numbers in
 * browser bundles: read them with `int64ToNumber`.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxSchema } from 'onnx-proto';
import { InvalidFileError } from '../base/errors';

/** The protobufjs classes (`onnx.ModelProto.decode`, `onnx.NodeProto.create`, ...). */
export const onnx: typeof OnnxSchema = onnxProto.onnx;
export type ModelProto = OnnxSchema.ModelProto;
// Nested messages are typed by protobufjs as the I* interfaces (every field optional); so are ours.
export type GraphProto = OnnxSchema.IGraphProto;
export type NodeProto = OnnxSchema.INodeProto;
export type TensorProto = OnnxSchema.ITensorProto;
export type ValueInfoProto = OnnxSchema.IValueInfoProto;
export type AttributeProto = OnnxSchema.IAttributeProto;

/** ONNX TensorProto.DataType codes used by the graph builders. */
export const OnnxDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;

export const FLOAT_DATA_TYPES: ReadonlySet<number> = new Set([OnnxDataType.FLOAT, OnnxDataType.FLOAT16, OnnxDataType.DOUBLE, OnnxDataType.BFLOAT16]);

/** protobufjs `Long` as seen by callers that must not depend on the `long` package. */
interface LongLike {
  toNumber(): number;
}

/** An int64 field as a JS number (exact below 2^53, which covers every dimension and attribute we read). */
export function int64ToNumber(value: number | LongLike | null | undefined): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  return value.toNumber();
}

/**
 * Decodes an ONNX model. Anything that is not a protobuf ModelProto with a graph is an InvalidFileError naming
 * the file; a protobuf that happens to parse but holds no nodes is refused too (an empty graph has no residual
 * stream and would fail later with a less helpful message).
 */
export function decodeOnnxModel(file: string, bytes: Uint8Array): ModelProto {
  if (bytes.byteLength === 0) throw new InvalidFileError(file, 'the ONNX file is empty.');
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new InvalidFileError(file, `not a readable ONNX model (protobuf decoding failed: ${(error as Error).message}). Check that the file is complete and is an .onnx model.`);
  }
  if (!model.graph) throw new InvalidFileError(file, 'the ONNX model has no graph.');
  if ((model.graph.node ?? []).length === 0) throw new InvalidFileError(file, 'the ONNX graph has no nodes.');
  if (int64ToNumber(model.irVersion) <= 0) throw new InvalidFileError(file, 'the ONNX model has no IR version; it is not a valid ONNX file.');
  return model;
}

/** Encodes a model; initializer bytes are copied once into the returned buffer. */
export function encodeOnnxModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The initializers stored outside the .onnx file (their bytes live in `*.onnx_data`): those of the main graph and
 * of every subgraph (If/Loop/Scan bodies hold initializers too), so no reader finds fewer than another.
 */
export function externalInitializers(model: ModelProto): TensorProto[] {
  const found: TensorProto[] = [];
  const visit = (graph: ModelProto['graph']) => {
    for (const tensor of graph?.initializer ?? []) if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) found.push(tensor);
    for (const node of graph?.node ?? []) {
      for (const attribute of node.attribute ?? []) {
        if (attribute.g) visit(attribute.g as ModelProto['graph']);
        for (const sub of attribute.graphs ?? []) visit(sub as ModelProto['graph']);
      }
    }
  };
  visit(model.graph);
  return found;
}

/** Where an external initializer's bytes are: file (as the graph names it), offset and length (null: to the end). */
export interface ExternalTensorRange {
  tensor: string;
  location: string;
  offset: number;
  length: number | null;
}

/** The external-data entries of one initializer; InvalidFileError naming `graphFile` when they are not numbers. */
export function externalTensorRange(graphFile: string, tensor: TensorProto): ExternalTensorRange {
  const entries = new Map((tensor.externalData ?? []).map((entry) => [entry.key ?? '', entry.value ?? '']));
  const location = entries.get('location') ?? '';
  const offset = Number(entries.get('offset') ?? '0');
  const length = entries.has('length') ? Number(entries.get('length')) : null;
  if (!location || !Number.isSafeInteger(offset) || offset < 0 || (length !== null && (!Number.isSafeInteger(length) || length < 0))) {
    throw new InvalidFileError(graphFile, `initializer \`${tensor.name}\` has an invalid external-data reference (location ${JSON.stringify(location)}, offset ${entries.get('offset')}, length ${entries.get('length')})`);
  }
  return { tensor: tensor.name ?? '', location, offset, length };
}

/** A float32 initializer in raw little-endian bytes (what ORT reads fastest). */
export function float32Initializer(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  const data = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = values[i];
  return onnx.TensorProto.create({ name, dims, dataType: OnnxDataType.FLOAT, rawData: littleEndianBytes(data) });
}

/** An int64 initializer in raw little-endian bytes. */
export function int64Initializer(name: string, dims: number[], values: readonly number[]): TensorProto {
  const data = new BigInt64Array(values.length);
  values.forEach((value, index) => (data[index] = BigInt(value)));
  return onnx.TensorProto.create({ name, dims, dataType: OnnxDataType.INT64, rawData: littleEndianBytes(data) });
}

function littleEndianBytes(data: Float32Array | BigInt64Array): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return bytes;
  // Big-endian host: ONNX raw_data is little-endian, so swap each element.
  const size = data.BYTES_PER_ELEMENT;
  const swapped = new Uint8Array(bytes.length);
  for (let offset = 0; offset < bytes.length; offset += size) for (let k = 0; k < size; k++) swapped[offset + k] = bytes[offset + size - 1 - k];
  return swapped;
}

export function intAttribute(name: string, value: number): AttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: value });
}

/** A value_info for a tensor of known element type; dims are numbers (fixed) or strings (symbolic). */
export function tensorValueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((dim) => (typeof dim === 'number' ? { dimValue: dim } : { dimParam: dim })) },
      },
    },
  });
}

/**
 * Field numbers onnx-proto (onnx 1.10 schema) knows, per message, and which of them hold sub-messages.
 * Anything else in a file is dropped by decode → encode.
 */
const KNOWN_FIELDS: Record<string, { fields: number[]; messages?: Record<number, string> }> = {
  ModelProto: { fields: [1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25], messages: { 7: 'GraphProto', 8: 'OperatorSetIdProto', 14: 'StringStringEntryProto', 20: 'TrainingInfoProto', 25: 'FunctionProto' } },
  GraphProto: { fields: [1, 2, 5, 10, 11, 12, 13, 14, 15], messages: { 1: 'NodeProto', 5: 'TensorProto', 11: 'ValueInfoProto', 12: 'ValueInfoProto', 13: 'ValueInfoProto', 14: 'TensorAnnotation', 15: 'SparseTensorProto' } },
  NodeProto: { fields: [1, 2, 3, 4, 5, 6, 7], messages: { 5: 'AttributeProto' } },
  AttributeProto: { fields: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 20, 21, 22, 23], messages: { 5: 'TensorProto', 6: 'GraphProto', 10: 'TensorProto', 11: 'GraphProto', 14: 'TypeProto', 15: 'TypeProto', 22: 'SparseTensorProto', 23: 'SparseTensorProto' } },
  TensorProto: { fields: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14], messages: { 3: 'Segment', 13: 'StringStringEntryProto' } },
  SparseTensorProto: { fields: [1, 2, 3], messages: { 1: 'TensorProto', 2: 'TensorProto' } },
  ValueInfoProto: { fields: [1, 2, 3], messages: { 2: 'TypeProto' } },
  TypeProto: { fields: [1, 4, 5, 6, 8, 9], messages: { 1: 'TypeTensor', 4: 'TypeSequence', 5: 'TypeMap', 8: 'TypeTensor', 9: 'TypeSequence' } },
  TypeTensor: { fields: [1, 2], messages: { 2: 'TensorShapeProto' } },
  TypeSequence: { fields: [1], messages: { 1: 'TypeProto' } },
  TypeMap: { fields: [1, 2], messages: { 2: 'TypeProto' } },
  TensorShapeProto: { fields: [1], messages: { 1: 'Dimension' } },
  Dimension: { fields: [1, 2, 3] },
  OperatorSetIdProto: { fields: [1, 2] },
  StringStringEntryProto: { fields: [1, 2] },
  TensorAnnotation: { fields: [1, 2], messages: { 2: 'StringStringEntryProto' } },
  TrainingInfoProto: { fields: [1, 2, 3, 4], messages: { 1: 'GraphProto', 2: 'GraphProto', 3: 'StringStringEntryProto', 4: 'StringStringEntryProto' } },
  FunctionProto: { fields: [1, 4, 5, 6, 7, 8, 9, 10], messages: { 7: 'NodeProto', 9: 'OperatorSetIdProto' } },
  Segment: { fields: [1, 2] },
};

/**
 * Fields of the file that a decode → encode round trip would drop (newer than onnx 1.10), as
 * "Message.field N" strings; empty for every fixture. Weight payloads are skipped by length, not read.
 */
export function onnxFieldsDroppedOnReencode(file: string, bytes: Uint8Array): string[] {
  const dropped = new Set<string>();
  const walk = (start: number, end: number, message: string, depth: number) => {
    if (depth > 64) throw new InvalidFileError(file, 'the ONNX protobuf nests too deeply.');
    const schema = KNOWN_FIELDS[message];
    let offset = start;
    const varint = (): number => {
      let value = 0;
      for (let shift = 1; ; shift *= 128) {
        if (offset >= end) throw new InvalidFileError(file, 'the ONNX protobuf is truncated.');
        const byte = bytes[offset++];
        value += (byte & 0x7f) * shift;
        if (byte < 0x80) return value;
      }
    };
    while (offset < end) {
      const key = varint();
      const field = Math.floor(key / 8);
      const wireType = key % 8;
      const known = schema.fields.includes(field);
      if (!known) dropped.add(`${message}.field ${field}`);
      if (wireType === 0) varint();
      else if (wireType === 1) offset += 8;
      else if (wireType === 5) offset += 4;
      else if (wireType === 2) {
        const length = varint();
        const child = known ? schema.messages?.[field] : undefined;
        if (offset + length > end) throw new InvalidFileError(file, 'the ONNX protobuf is truncated.');
        if (child) walk(offset, offset + length, child, depth + 1);
        offset += length;
      } else throw new InvalidFileError(file, `the ONNX protobuf has an invalid wire type ${wireType}.`);
    }
  };
  walk(0, bytes.length, 'ModelProto', 0);
  return [...dropped];
}

/** Every external-data location a graph names (initializers of the main graph and of its subgraphs). */
export function externalDataLocations(model: ModelProto): string[] {
  const locations = new Set<string>();
  for (const tensor of externalInitializers(model)) {
    const location = tensor.externalData?.find((entry) => entry.key === 'location')?.value;
    if (location) locations.add(location);
  }
  return [...locations];
}

export interface ExternalDataReference {
  /** As the graph names it, relative to the graph's folder (how onnxruntime looks it up). */
  location: string;
  /** The file, relative to the model folder. */
  path: string;
}

/**
 * The one rule for external data, for every command that reads or copies a graph: each location the graph
 * names must be a plain relative path (no absolute path, no `..`, no backslash, drive or NUL) that names a file
 * of the model folder (whose listing already refuses links leading out of it). Otherwise onnxruntime would
 * read whatever the location names, relative to the current directory or anywhere on disk.
 * `graphFile` names the graph in errors; `graphPath` is its folder-relative path. `requirePresent: false`
 * (a graph only copied, never run) checks the locations without asking for the files.
 */
export function checkedExternalData(
  graphFile: string,
  graphPath: string,
  model: ModelProto,
  folderFiles: ReadonlySet<string>,
  requirePresent = true,
): ExternalDataReference[] {
  const directory = graphPath.slice(0, graphPath.lastIndexOf('/') + 1);
  return externalDataLocations(model).map((location) => {
    const segments = location.split('/').filter((segment) => segment !== '.');
    const shown = JSON.stringify(location.length > 200 ? `${location.slice(0, 200)}…` : location);
    // eslint-disable-next-line no-control-regex -- control characters are exactly what must be caught
    if (location.startsWith('/') || /[\\:\u0000-\u001f]/.test(location) || segments.some((segment) => segment === '' || segment === '..')) {
      throw new InvalidFileError(graphFile, `names external data at ${shown}, which is not a file inside the model folder; refusing to read it`);
    }
    const path = directory + segments.join('/');
    if (requirePresent && !folderFiles.has(path)) throw new InvalidFileError(graphFile, `stores weights in ${shown}, which is missing from the model folder`);
    return { location, path };
  });
}
