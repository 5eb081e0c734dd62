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
 * - fields newer than onnx 1.10 (e.g. node `metadata_props`) are not in the schema and are dropped.
 *
 * int64 fields decode as `Long` objects in Node (protobufjs finds the `long` package) and as plain numbers in
 * browser bundles: read them with `int64ToNumber`.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxSchema } from 'onnx-proto';
import { InvalidFileError } from '../protocol/errors';

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

/** The initializers stored outside the .onnx file (their bytes live in `*.onnx_data`). */
export function externalInitializers(model: ModelProto): TensorProto[] {
  return (model.graph?.initializer ?? []).filter((tensor) => tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
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
