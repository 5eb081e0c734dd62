/**
 * The chat worker's API: side-by-side generation (base | ablated), the batch evaluation (refusal rate and
 * first-token KL) and the per-layer sweep. One interface, implemented by the in-thread service
 * (workers/chat-service.ts) and by the comlink proxy (src/clients/chat-client.ts) alike.
 *
 * Every call names the models it wants (ChatModelsSpec); the worker keeps what it loaded and reloads only what
 * changed (a new base folder, another direction, scale or targets, another backend), so the UI stays stateless
 * about what the worker holds.
 */
import type { PromptInput, PromptMessage } from './analysis-api';
import type { Envelope } from './envelope';
import type { LongCallOptions, Progress } from '../base/progress';
import type { AblationComponent } from '../core/recipe';

export type ChatSide = 'base' | 'ablated';

/** Where the ablation direction comes from: a row of the analysis, or a direction file (parsed in the worker). */
export type DirectionSource =
  | { kind: 'analysis'; layer: number; values: Float32Array /* [dModel], unit */ }
  | { kind: 'file'; file: string; bytes: Uint8Array; layer: number | null /* row of a per-layer file */ };

/** The ablated side: the base graph with hooks (no weight copy), or an exported (edited) model folder. */
export type AblatedModelSpec =
  | { kind: 'hooks'; direction: DirectionSource; scale: number; targets: AblationComponent[]; layers?: [number, number] }
  | { kind: 'folder'; folder: FolderDescriptor; key: string /* identifies the folder's content */ }
  /**
   * A whole recipe (recipe.json value) over direction rows — the analysis' per-layer directions or an imported
   * file's (one row for a single direction) — with the file's harmless means when the recipe projects.
   */
  | { kind: 'recipe'; recipe: Record<string, unknown>; label: string; directions: Float32Array[] /* [rows] × [dModel] */; harmlessMeans?: Float32Array[] /* [L + 1] × [dModel] */ };

export interface ChatModelsSpec {
  base: FolderDescriptor;
  /** Identifies the base folder's content (the analysis inspection's fingerprint). */
  baseKey: string;
  /** null when there is nothing to ablate with yet (no analysis, no direction file): only the base side chats. */
  ablated: AblatedModelSpec | null;
  backend: ResolvedBackend;
}

export interface ChatSettings {
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  seed: number;
  /** End-of-turn is suppressed until this many tokens (0 = off): to see what a model would go on to say. */
  minNewTokens: number;
}

export const DEFAULT_CHAT_SETTINGS: ChatSettings = Object.freeze({ maxNewTokens: 128, temperature: 0, topP: 1, seed: 0, minNewTokens: 0 });

export interface ChatRequest {
  models: ChatModelsSpec;
  side: ChatSide;
  /** The whole conversation of this side so far, ending with the new user message (system first, if any). */
  messages: PromptMessage[];
  settings: ChatSettings;
  /** Refusal markers for the reply's verdict; docs/definitions.md's list when absent. */
  markers?: string[];
}

export interface ChatTokenEvent {
  /** New text since the previous event. */
  text: string;
  index: number;
}

export type { RefusalCheck } from '../core/refusal-spans';
import type { RefusalCheck } from '../core/refusal-spans';
import type { ActionOutcome } from '../core/action';
import type { PreflightFigures, PreflightWarning } from '../core/preflight';
import { type FolderDescriptor } from '../ports/folder-descriptor';
import { type ResolvedBackend } from '../ports/onnx-session';
import type { ExportLogitComparison } from '../engine/export-comparison';

export interface ChatReply {
  text: string;
  tokenCount: number;
  promptTokenCount: number;
  finishReason: 'eos' | 'max-new-tokens' | 'context';
  seconds: number;
  refusal: RefusalCheck;
}

export interface ChatCallOptions extends LongCallOptions {
  onToken?: (event: ChatTokenEvent) => void;
}

export interface ModelsInfo {
  backend: ResolvedBackend;
  /** L: blocks of the base model (L+1 layer indices). */
  numLayers: number;
  /** What the ablated side is, in words ("hooks: r from layer 2, α 1, embed+attn+mlp"). */
  ablatedLabel: string;
  seconds: number;
}

export interface EvaluationRequest {
  models: ChatModelsSpec & { ablated: AblatedModelSpec };
  /** Held-out refusal prompts (refusal rate) and compliance prompts (first-token KL). */
  harmful: PromptInput[];
  harmless: PromptInput[];
  maxNewTokens: number;
  batchSize?: number;
  /** Refusal markers; docs/definitions.md's list when absent. */
  markers?: string[];
  /** Agent-prompted requests (action rate, refusal rate on them); none when absent or empty. */
  agent?: PromptInput[];
  /** JSON keys whose non-empty string makes a reply an action; `cmd`, `command` when absent. */
  actionKeys?: string[];
}

/** One agent-prompted reply: is it an action (a JSON object with a command), is it a refusal. */
export interface AgentReplyVerdict {
  response: string;
  action: boolean;
  refused: boolean;
  actionOutcome: ActionOutcome;
  command: string | null;
  finishReason: ChatReply['finishReason'];
}

/** eval.json's "agent" object as the panel receives it. */
export interface AgentEvaluationResult {
  count: number;
  base: { actionRate: number; refusalRate: number };
  ablated: { actionRate: number; refusalRate: number };
  samples: { messages: PromptMessage[]; base: AgentReplyVerdict; ablated: AgentReplyVerdict }[];
  actionKeys: string[];
}

export interface ReplyVerdict extends RefusalCheck {
  response: string;
  finishReason: ChatReply['finishReason'];
}

export interface EvaluationSample {
  messages: PromptMessage[];
  base: ReplyVerdict;
  ablated: ReplyVerdict;
}

/** The numbers of `abliterate eval` (eval.json) plus what the panel shows. */
export interface EvaluationResult {
  /** refusalInterval: 95 % Wilson interval [low, high] over counts.harmful prompts. */
  base: { refusalRate: number; refusalInterval: [number, number] };
  ablated: { refusalRate: number; refusalInterval: [number, number] };
  klFirstToken: number;
  klPerPrompt: number[];
  samples: EvaluationSample[];
  counts: { harmful: number; harmless: number };
  markers: string[];
  maxNewTokens: number;
  ablatedLabel: string;
  backend: ResolvedBackend;
  seconds: number;
  /** Present when the request carried agent prompts. */
  agent?: AgentEvaluationResult;
  /** Which prompts the rates and KL came from, as the evaluation panel named them when it ran. */
  promptSources?: { harmful: string; harmless: string };
}

export interface SweepRequest {
  models: Omit<ChatModelsSpec, 'ablated'>;
  /** Unit directions, one row per layer index (the analysis result). */
  directions: Float32Array[]; // [layer] → [dModel]
  candidateLayers: number[];
  harmful: PromptInput[];
  harmless: PromptInput[];
  maxNewTokens: number;
  scale: number;
  targets: AblationComponent[];
  klBound?: number;
  markers?: string[];
}

export interface SweepRow {
  layer: number;
  refusalRate: number;
  /** 95 % Wilson interval of refusalRate over counts.harmful prompts. */
  refusalInterval: [number, number];
  klFirstToken: number;
  withinKLBound: boolean;
}

export interface SweepResult {
  rows: SweepRow[];
  skipped: { layer: number; reason: string }[];
  baseRefusalRate: number;
  baseRefusalInterval: [number, number];
  klBound: number;
  recommendation: { layer: number; withinKLBound: boolean; reason: string } | null;
  counts: { harmful: number; harmless: number };
  /** The sweep was cancelled: `rows` are the layers that finished (kept and usable), these were not swept. */
  cancelled?: { notSwept: number[] };
  /** Which prompts the rates and KL came from, as the evaluation panel named them when the sweep ran. */
  promptSources?: { harmful: string; harmless: string };
  backend: ResolvedBackend;
  seconds: number;
}

/** Preflight before a capture (engine/preflight.ts): the A and B prompts as the capture will use them. */
export interface PreflightRequest {
  models: Omit<ChatModelsSpec, 'ablated'>;
  harmful: PromptInput[];
  harmless: PromptInput[];
  /** The capture's token position (−1 = last prompt token). */
  position: number;
  markers?: string[];
  actionKeys?: string[];
}

export interface PreflightResult {
  figures: PreflightFigures;
  counts: { prompts: number; tokens: number; unknownTokens: number; tooLong: number; sampledA: number; sampledB: number };
  template: { tokens: string[]; capturedIndex: number; unknownIndices: number[] };
  unknownToken: string | null;
  contextLength: number | null;
  samples: { set: 'A' | 'B'; messages: PromptMessage[]; response: string; refused: boolean; action: boolean }[];
  warnings: PreflightWarning[];
}

/**
 * The exported folder (the ablated side) against the hook preview it was exported from: the largest first-token
 * logit difference on the evaluation prompts (engine/export-comparison.ts).
 */
export interface ExportComparisonRequest {
  models: ChatModelsSpec & { ablated: Extract<AblatedModelSpec, { kind: 'folder' }> };
  /** The hook preview of the current recipe (hooks or a whole recipe): what the export should equal. */
  preview: Exclude<AblatedModelSpec, { kind: 'folder' }>;
  prompts: PromptInput[];
  batchSize?: number;
}

/** The engine's comparison (engine/export-comparison.ts) with what the worker adds: labels, backend, time. */
export interface ExportComparisonResult extends ExportLogitComparison {
  previewLabel: string;
  exportedLabel: string;
  backend: ResolvedBackend;
  seconds: number;
}

export interface ChatApi {
  /** Loads (or keeps) the base and ablated models; chat calls it implicitly, the UI calls it to warm up. */
  prepare(models: ChatModelsSpec, options?: LongCallOptions): Promise<ModelsInfo>;
  /** One reply of one side, streamed token by token; aborting stops it at the next token (CancelledError). */
  generate(request: ChatRequest, options?: ChatCallOptions): Promise<ChatReply>;
  evaluate(request: EvaluationRequest, options?: LongCallOptions): Promise<EvaluationResult>;
  sweep(request: SweepRequest, options?: LongCallOptions): Promise<SweepResult>;
  preflight(request: PreflightRequest, options?: LongCallOptions): Promise<PreflightResult>;
  compareExport(request: ExportComparisonRequest, options?: LongCallOptions): Promise<ExportComparisonResult>;
  /** Frees the models (a new folder is loaded, or the page goes away). */
  release(): Promise<void>;
}

/** What the worker exposes: ChatApi's calls with a call id (for cancel) and proxied callbacks. */
export interface ChatWorkerEndpoint {
  prepare(callId: number, models: ChatModelsSpec, onProgress?: (event: Progress) => void): Promise<Envelope<ModelsInfo>>;
  generate(callId: number, request: ChatRequest, onToken?: (event: ChatTokenEvent) => void, onProgress?: (event: Progress) => void): Promise<Envelope<ChatReply>>;
  evaluate(callId: number, request: EvaluationRequest, onProgress?: (event: Progress) => void): Promise<Envelope<EvaluationResult>>;
  sweep(callId: number, request: SweepRequest, onProgress?: (event: Progress) => void): Promise<Envelope<SweepResult>>;
  preflight(callId: number, request: PreflightRequest, onProgress?: (event: Progress) => void): Promise<Envelope<PreflightResult>>;
  compareExport(callId: number, request: ExportComparisonRequest, onProgress?: (event: Progress) => void): Promise<Envelope<ExportComparisonResult>>;
  release(): Promise<Envelope<void>>;
  cancel(callId: number): void;
}
