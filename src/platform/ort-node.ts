/**
 * onnxruntime-node behind the OnnxSessionFactory interface (the CLI's backend). Graphs are created from bytes
 * because capture and hook graphs exist only in memory; their external-data initializers keep the original
 * relative locations, so ORT is told which folder holds them.
 */
import { dirname, isAbsolute, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { BackendError, InvalidFileError, InvalidInputError } from '../base/errors';
import type { OnnxModelInput, OnnxSession, OnnxSessionFactory, OnnxTensor, OnnxValueInfo } from '../ports/onnx-session';
import { describeValues, toOrtFeeds } from './ort-common';

export interface NodeSessionOptions {
  /** Intra-op threads; defaults to ORT's choice (all cores). */
  threads?: number;
}

function toOrtTensor(tensor: OnnxTensor): ort.Tensor {
  if (tensor.type === 'bool') return new ort.Tensor('bool', tensor.data as Uint8Array, tensor.dims);
  return new ort.Tensor(tensor.type, tensor.data as never, tensor.dims);
}

function fromOrtTensor(tensor: ort.Tensor): OnnxTensor {
  const type = tensor.type as OnnxTensor['type'];
  return { type, dims: [...tensor.dims], data: tensor.data as OnnxTensor['data'] };
}

/** The one folder that holds every external-data file (ORT resolves relative locations against a single folder). */
function externalDataFolder(model: OnnxModelInput): string | null {
  const files = model.externalData ?? [];
  if (files.length === 0) return null;
  const folders = new Set<string>();
  for (const file of files) {
    if (typeof file.data !== 'string' || !isAbsolute(file.data)) {
      throw new InvalidInputError(`${model.name}: onnxruntime-node reads external data from files; ${file.path} was given as bytes`);
    }
    // data = <folder>/<path>: the folder is what remains after removing the graph's relative location.
    const folder = file.data.endsWith(file.path) ? file.data.slice(0, file.data.length - file.path.length) : `${dirname(file.data)}/`;
    folders.add(join(folder, '.'));
  }
  if (folders.size > 1) throw new InvalidInputError(`${model.name}: external-data files are spread over several folders (${[...folders].join(', ')})`);
  return [...folders][0];
}

class NodeSession implements OnnxSession {
  readonly inputs: OnnxValueInfo[];
  readonly outputs: OnnxValueInfo[];
  constructor(private readonly session: ort.InferenceSession) {
    this.inputs = describeValues(session.inputMetadata, session.inputNames);
    this.outputs = describeValues(session.outputMetadata, session.outputNames);
  }

  async run(feeds: Record<string, OnnxTensor>, outputNames?: readonly string[]): Promise<Record<string, OnnxTensor>> {
    const ortFeeds = toOrtFeeds(feeds, toOrtTensor);
    let results: ort.InferenceSession.ReturnType;
    try {
      results = outputNames ? await this.session.run(ortFeeds, [...outputNames]) : await this.session.run(ortFeeds);
    } catch (error) {
      throw new BackendError(`onnxruntime-node failed during a forward pass: ${(error as Error).message}`, { backend: 'onnxruntime-node' });
    }
    const out: Record<string, OnnxTensor> = {};
    for (const [name, tensor] of Object.entries(results)) out[name] = fromOrtTensor(tensor as ort.Tensor);
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export function createNodeSessionFactory(options: NodeSessionOptions = {}): OnnxSessionFactory {
  return {
    name: 'onnxruntime-node cpu',
    async create(model: OnnxModelInput): Promise<OnnxSession> {
      const folder = externalDataFolder(model);
      const sessionOptions: ort.InferenceSession.SessionOptions = {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
        ...(folder ? { extra: { session: { model_external_initializers_file_folder_path: folder } } } : {}),
      };
      try {
        return new NodeSession(await ort.InferenceSession.create(model.bytes, sessionOptions));
      } catch (error) {
        throw new InvalidFileError(model.name, `onnxruntime-node could not load the graph: ${(error as Error).message}`);
      }
    },
  };
}
