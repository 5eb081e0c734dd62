/**
 * The one ONNX Runtime interface the engines see. onnxruntime-node (src/platform/ort-node.ts, the CLI) and
 * onnxruntime-web (src/platform/ort-web.ts, the browser workers) implement it, so capture and analysis are one
 * engine everywhere. Tensors cross it as plain `{type, dims, data}` records: no ORT class leaks into the engine.
 */

/** The backend a session may be asked for (`auto` picks one, see src/platform/ort-web.ts) and the one it runs on. */
export type BackendChoice = 'auto' | 'webgpu' | 'wasm';
export type ResolvedBackend = 'webgpu' | 'wasm';

export type OnnxElementType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export type OnnxTensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Int8Array | Uint8Array | Uint16Array;

export interface OnnxTensor {
  type: OnnxElementType;
  dims: number[];
  /** Row-major; `float16` travels as its raw Uint16 bits, `bool` as Uint8 0/1. */
  data: OnnxTensorData;
}

/** An input or output of the graph: numbers for fixed dimensions, names for symbolic ones ("batch_size"). */
export interface OnnxValueInfo {
  name: string;
  type: OnnxElementType | string;
  shape: (number | string)[];
}

export interface ExternalDataFile {
  /** The location the graph's initializers name (e.g. `model.onnx_data`). */
  path: string;
  /** Node: an absolute file path; browser: a Blob or the bytes. */
  data: string | Blob | Uint8Array;
}

export interface OnnxModelInput {
  /** The serialized graph (for capture: the surgically edited copy). */
  bytes: Uint8Array;
  /** For error messages: the file the graph came from. */
  name: string;
  /** Where the graph's external-data initializers live; the edited graph keeps the original references. */
  externalData?: ExternalDataFile[];
}

export interface OnnxSession {
  readonly inputs: OnnxValueInfo[];
  readonly outputs: OnnxValueInfo[];
  /** Runs the graph; returns the requested outputs (all when omitted). */
  run(feeds: Record<string, OnnxTensor>, outputNames?: readonly string[]): Promise<Record<string, OnnxTensor>>;
  release(): Promise<void>;
}

export interface OnnxSessionFactory {
  /** e.g. "onnxruntime-node cpu", "onnxruntime-web webgpu". */
  readonly name: string;
  create(model: OnnxModelInput): Promise<OnnxSession>;
}

/** Zero-filled data of the right array type for `type` and `count` elements. */
export function zeroTensorData(type: OnnxElementType, count: number): OnnxTensorData {
  switch (type) {
    case 'float32':
      return new Float32Array(count);
    case 'float16':
      return new Uint16Array(count);
    case 'float64':
      return new Float64Array(count);
    case 'int64':
      return new BigInt64Array(count);
    case 'int32':
      return new Int32Array(count);
    case 'int8':
      return new Int8Array(count);
    case 'uint8':
    case 'bool':
      return new Uint8Array(count);
  }
}

const ELEMENT_TYPES: ReadonlySet<string> = new Set<OnnxElementType>(['float32', 'float16', 'float64', 'int64', 'int32', 'int8', 'uint8', 'bool']);

export function isOnnxElementType(type: string): type is OnnxElementType {
  return ELEMENT_TYPES.has(type);
}
