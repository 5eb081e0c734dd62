/**
 * The analysis worker's API: open a model folder, capture the residual stream of every layer and analyse it.
 * One interface, implemented by the in-thread service (workers/analysis-service.ts) and by the comlink proxy
 * (src/clients/analysis-client.ts) alike, so the UI cannot tell which one it talks to.
 */
import type { LongCallOptions, Progress } from '../base/progress';
import type { ReportJson } from '../formats/report-json';

export type { BackendChoice, ResolvedBackend } from '../ports/onnx-session';
export type { FolderDescriptor, FolderFile } from '../ports/folder-descriptor';
export type { FolderCheck, ModelInspection } from '../engine/model-inspection';
import type { BackendChoice, ResolvedBackend } from '../ports/onnx-session';
import type { FolderDescriptor } from '../ports/folder-descriptor';
import type { ModelInspection } from '../engine/model-inspection';

export interface BackendProbe {
  webgpu: boolean; // an adapter exists
  fallback: boolean; // it is a software adapter
  auto: ResolvedBackend; // what `auto` runs on
  detail: string;
}

export interface PromptMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
export interface PromptInput {
  messages: PromptMessage[];
}

export interface PromptSets {
  harmful: PromptInput[]; // A: refusal prompts
  harmless: PromptInput[]; // B: compliance prompts
  referenceA: PromptInput[]; // optional reference contrast (empty when unused)
  referenceB: PromptInput[];
}

export interface AnalysisRequest {
  prompts: PromptSets;
  /** A direction file (.safetensors/.npy/.json) used as the reference instead of the reference contrast. */
  referenceDirection: { file: string; bytes: Uint8Array } | null;
  position: number; // token position, -1 = last prompt token
  heldOutFraction: number;
  seed: number;
  backend: BackendChoice;
  /** Prompts per forward pass; the CLI's default when absent (batches change padding, hence the last bits). */
  batchSize?: number;
}

/** The report.json of docs/contracts.md, exactly as `abliterate analyze` writes it. */
export type { ReportJson, ReportLayer } from '../formats/report-json';

export interface AnalysisResult {
  report: ReportJson;
  /** The report as the CLI serializes it, byte for byte what `report.download` saves. */
  reportText: string;
  crossLayerCosine: (number | null)[][]; // [layer, layer]; null where a layer has no direction
  /** Held-out projections x·r_l per layer, for the A-vs-B histogram. */
  projections: { harmful: number[]; harmless: number[] }[]; // [layer] → [prompt]
  /**
   * The train / held-out split, as prompt indices into each set: `projections` follow `heldOut` (or `train` when
   * nothing is held out). Absent in results saved before it existed.
   */
  split?: { harmful: { train: number[]; heldOut: number[] }; harmless: { train: number[]; heldOut: number[] } };
  /** Unit directions r_l, one row per layer, for export and chat hooks. */
  directions: Float32Array[]; // [layer] → [dModel]
  backend: ResolvedBackend;
  fromCache: boolean;
  notes: string[]; // e.g. "WebGPU failed (device lost); captured on wasm instead."
}

/** One prompt through the model's chat template, as the capture tokenizes it. */
export interface RenderedTemplate {
  text: string; // the template's output, special tokens included
  tokens: string[]; // one decoded piece per token id
  capturedIndex: number; // the token the capture reads at the requested position
}

export interface AnalysisApi {
  /** Reads and validates a folder; decodes its ONNX graph and finds the residual stream when there is one. */
  openModel(folder: FolderDescriptor, options?: LongCallOptions): Promise<ModelInspection>;
  /** Captures (or reads from the activation cache) and analyses the currently open model. */
  analyze(request: AnalysisRequest, options?: LongCallOptions): Promise<AnalysisResult>;
  /**
   * What `auto` picks here: WebGPU on a hardware adapter, else wasm. A software fallback adapter (SwiftShader)
   * is ~50× slower than wasm, so `auto` uses wasm there; choosing `webgpu` still runs on it.
   */
  probeBackend(): Promise<BackendProbe>;
  /** The open model's chat template applied to one prompt (with the generation prompt), and its tokens. */
  renderTemplate(messages: PromptMessage[], position: number): Promise<RenderedTemplate>;
}

/** Worker replies carry failures as data, so the UI rebuilds the named error class (never `String(err)`). */
import type { Envelope } from './envelope';

/** What the worker exposes: AnalysisApi's calls with a call id and a proxied progress callback. */
export interface AnalysisWorkerEndpoint {
  openModel(callId: number, folder: FolderDescriptor, onProgress?: (event: Progress) => void): Promise<Envelope<Awaited<ReturnType<AnalysisApi['openModel']>>>>;
  analyze(callId: number, request: AnalysisRequest, onProgress?: (event: Progress) => void): Promise<Envelope<Awaited<ReturnType<AnalysisApi['analyze']>>>>;
  probeBackend(): Promise<Envelope<Awaited<ReturnType<AnalysisApi['probeBackend']>>>>;
  renderTemplate(messages: PromptMessage[], position: number): Promise<Envelope<RenderedTemplate>>;
  cancel(callId: number): void;
}

