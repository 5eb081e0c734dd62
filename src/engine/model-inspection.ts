/**
 * Validates a model folder and says what each step can do with it: capture and chat need config, tokenizer
 * and an ONNX graph whose residual stream we can find; export needs config and safetensors. A folder without
 * config.json, or with an ONNX file that does not decode, is refused with an error naming the file; so is one that
 * supports neither (config.json alone), naming what is missing.
 */
import { Sha256 } from '../core/sha256';
import { readModelConfig, readShardMap, type ModelConfig } from '../formats/hf-folder';
import { decodeOnnxModel, type ModelProto } from '../formats/onnx';
import { checkExternalData, externalDataBytes } from './external-data';
import { findResidualPoints, type GraphStyle, type ResidualPoints } from '../model/residual-finder';
import type { ModelFolder } from '../ports/folder';
import { InvalidFileError, WorkbenchError } from '../base/errors';
import { ProgressReporter, type LongCallOptions } from '../base/progress';
import { findOnnxGraphFiles } from '../formats/onnx-files';

export interface FolderCheck {
  item: 'config' | 'tokenizer' | 'onnx' | 'safetensors';
  present: boolean;
  detail: string; // what was found, e.g. "llama, 4 layers, d_model 64" or why it is missing
}

/** What the UI learns about an opened model folder. */
export interface ModelInspection {
  name: string;
  fingerprint: string; // identifies the folder's content for the activation cache
  modelType: string;
  numLayers: number; // L blocks, hence L+1 layer indices
  hiddenSize: number;
  checks: FolderCheck[];
  /** What each step of the workflow can do with this folder, in words the UI shows as they are. */
  capabilities: { capture: boolean; chat: boolean; export: boolean; notes: string[] };
  onnxFile: string | null;
  /** How the ONNX graph's residual stream was recognised; null without an understood graph. */
  residualStyle: GraphStyle | null;
}

const TOKENIZER_FILE = 'tokenizer.json';
const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

export interface OpenedModel {
  folder: ModelFolder;
  config: ModelConfig;
  inspection: ModelInspection;
  onnx: { path: string; model: ModelProto; residual: ResidualPoints; externalData: string[] } | null;
}

function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e3).toFixed(0)} kB`;
}

export async function inspectModelFolder(folder: ModelFolder, options: LongCallOptions = {}): Promise<OpenedModel> {
  const progress = new ProgressReporter('open model', options.onProgress);
  const files = folder.list();
  const checks: FolderCheck[] = [];
  const notes: string[] = [];

  progress.report(0.05, 'reading config.json');
  if (!files.includes('config.json')) {
    throw new InvalidFileError(folder.name, 'has no config.json — this is not a Hugging Face model folder. Pick the folder that holds config.json (and tokenizer.json, onnx/, *.safetensors).');
  }
  const config = await readModelConfig(folder);
  checks.push({ item: 'config', present: true, detail: `${config.modelType}, ${config.numLayers} blocks, d_model ${config.hiddenSize}` });

  const hasTokenizer = files.includes(TOKENIZER_FILE) && files.includes(TOKENIZER_CONFIG_FILE);
  checks.push({
    item: 'tokenizer',
    present: hasTokenizer,
    detail: hasTokenizer ? `${TOKENIZER_FILE} + ${TOKENIZER_CONFIG_FILE}` : `missing ${[TOKENIZER_FILE, TOKENIZER_CONFIG_FILE].filter((file) => !files.includes(file)).join(' and ')}`,
  });

  progress.report(0.2, 'reading the ONNX graph');
  let onnx: OpenedModel['onnx'] = null;
  let externalPaths: string[] = [];
  // The same graph the CLI picks (full precision first).
  const onnxPath = findOnnxGraphFiles(files)?.decoder ?? null;
  if (onnxPath) {
    const source = await folder.open(onnxPath);
    const model = decodeOnnxModel(`${folder.name}/${onnxPath}`, await source.read(0, source.size));
    progress.report(0.6, 'finding the residual stream');
    let residual: ResidualPoints;
    try {
      residual = findResidualPoints(model, { numLayers: config.numLayers });
    } catch (error) {
      if (error instanceof WorkbenchError) error.message = `${folder.name}/${onnxPath}: ${error.message}`;
      throw error;
    }
    // The same finder and checks capture and chat use: a missing or truncated data file fails here, at load.
    const external = await checkExternalData(folder, onnxPath, model);
    const locations = external.map((file) => file.location);
    externalPaths = external.map((file) => file.path);
    onnx = { path: onnxPath, model, residual, externalData: locations };
    const externalNote = locations.length > 0 ? ` + external data ${locations.join(', ')} (${formatBytes(externalDataBytes(external))})` : '';
    checks.push({ item: 'onnx', present: true, detail: `${onnxPath} (${formatBytes(source.size)})${externalNote}; ${residual.style}-style graph, ${residual.points.length} residual points` });
  } else {
    checks.push({ item: 'onnx', present: false, detail: 'no .onnx graph (expected onnx/model.onnx, transformers.js layout)' });
  }

  progress.report(0.8, 'reading safetensors headers');
  let hasSafetensors = false;
  try {
    const shards = await readShardMap(folder);
    hasSafetensors = true;
    checks.push({ item: 'safetensors', present: true, detail: `${shards.shards.length} shard${shards.shards.length === 1 ? '' : 's'}, ${shards.tensorToShard.size} tensors` });
  } catch (error) {
    const hasAny = files.some((path) => path.endsWith('.safetensors') || path.endsWith('.safetensors.index.json'));
    if (hasAny) throw error; // present but broken: say so rather than hide it
    checks.push({ item: 'safetensors', present: false, detail: 'no safetensors weights' });
  }

  const canCapture = onnx !== null && hasTokenizer;
  if (!canCapture && !hasSafetensors) {
    // config.json alone (or with half of what capture needs) supports no step: refuse it rather than call it ready.
    const forCapture = [
      ...[TOKENIZER_FILE, TOKENIZER_CONFIG_FILE].filter((file) => !files.includes(file)),
      ...(onnx ? [] : ['an ONNX graph (onnx/model.onnx)']),
    ];
    throw new InvalidFileError(
      folder.name,
      `has config.json but nothing to work with: capture and chat need ${forCapture.join(' and ')}; export needs the *.safetensors weights. Pick the full model folder.`,
    );
  }
  if (!canCapture) notes.push('Capture needs a tokenizer and an ONNX graph; you can still export with an imported direction file.');
  if (!hasSafetensors) notes.push('Export needs the original *.safetensors weights; capture and chat work without them.');
  const fingerprint = await fingerprintFolder(folder, config, onnx ? [onnx.path, ...externalPaths] : []);
  progress.done();
  return {
    folder,
    config,
    onnx,
    inspection: {
      name: folder.name,
      fingerprint,
      modelType: config.modelType,
      numLayers: config.numLayers,
      hiddenSize: config.hiddenSize,
      checks,
      capabilities: { capture: canCapture, chat: canCapture, export: hasSafetensors, notes },
      onnxFile: onnx?.path ?? null,
      residualStyle: onnx?.residual.style ?? null,
    },
  };
}

/**
 * Content identity for the activation cache: every path and size, the config, and the first and last megabyte of
 * the graph and of each of its external-data files (weights re-exported under the same names change there).
 */
async function fingerprintFolder(folder: ModelFolder, config: ModelConfig, sampled: readonly string[]): Promise<string> {
  const parts: string[] = [folder.name, JSON.stringify(config.raw)];
  for (const path of folder.list()) {
    const source = await folder.open(path);
    parts.push(`${path}:${source.size}`);
  }
  const hash = new Sha256().update(new TextEncoder().encode(parts.join('\n')));
  // The graph and the external-data files it names (found by checkExternalData, as capture and chat find them).
  const sample = 1 << 20;
  for (const path of sampled) {
    const source = await folder.open(path);
    hash.update(await source.read(0, Math.min(sample, source.size))).update(await source.read(Math.max(0, source.size - sample), Math.min(sample, source.size)));
  }
  return hash.hexDigest();
}
