/**
 * Evaluation of an ablation, base vs hook-ablated, on the same tokenizer and prompts:
 * - refusal rate on refusal prompts (greedy replies classified with the docs/definitions.md markers), with every reply
 *   and the markers it matched, so a reader can check the classifier;
 * - first-token KL(base ‖ ablated) on compliance prompts: the next-token distributions after the generation
 *   prompt, from one forward pass each, averaged over prompts (batchmean).
 *
 * The ablation runs as graph hooks (buildHookGraph), which docs/definitions.md requires to equal the weight edit.
 */
import { externalDataFiles } from './external-data';
import type { ExternalDataFile } from '../ports/onnx-session';
import { wilsonPair } from '../core/intervals';
import { ABLATION_COMPONENTS } from '../core/recipe';
import { classifyRefusal, DEFAULT_REFUSAL_MARKERS, normalizeMarkers, refusalRate, RefusalMarkerError, type RefusalVerdict } from '../core/refusal';
import { meanKLDivergence } from '../core/kl';
import { decodeOnnxModel, type ModelProto } from '../formats/onnx';
import { buildHookGraph, type HookTarget } from '../model/hook-graph';
import { findResidualPoints, type ResidualPoints } from '../model/residual-finder';
import { buildSteeringGraph } from '../model/steering-graph';
import type { ModelFolder } from '../ports/folder';
import { InvalidInputError, throwIfAborted } from '../base/errors';
import { ProgressReporter, type LongCallOptions, type Progress } from '../base/progress';
import { DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS, LanguageModel, type Conversation, type Generation, type GenerationTokenizer } from './generate';
import { loadGenerationTokenizer } from './chat-tokenizer';
import { readWholeFile } from './transformers-files';
import type { AgentEvaluation } from './agent-evaluation-types';
import { findOnnxGraphFiles } from '../formats/onnx-files';
import { BoundedCache, contentKey } from './result-cache';
import { folderTiedEmbeddings } from './tied-embeddings';
import { recipeToJson } from '../core/recipe';
import { buildRecipeHookGraph } from '../model/recipe-hook-graph';
import { isShorthandSelection, resolveAblation, type AblationSelection } from './ablation-selection';
import { recipeHookValues, safetensorsHookWeights } from './recipe-hook-feeds';

/** eval.json's description of what was ablated. */
function describeSpec(spec: AblationSpec, numLayers: number): { scale: number | null; targets: HookTarget[]; layers: [number, number] | null; recipe: Record<string, unknown> | null } {
  if (isShorthandSelection(spec)) return { scale: spec.scale, targets: [...spec.targets], layers: spec.layers ?? null, recipe: null };
  const ablation = resolveAblation(spec, numLayers);
  return { scale: null, targets: [...ablation.components], layers: null, recipe: recipeToJson(ablation.recipe) };
}

/** Base results kept per session: a few prompt sets × settings; each holds replies or [prompt][vocab] logits. */
const BASE_RESULTS_KEPT = 4;

export const DEFAULT_ABLATION_TARGETS: readonly HookTarget[] = ABLATION_COMPONENTS;

/**
 * What to ablate: the seed shorthand (unit direction, scale, targets, block range) or a recipe over the
 * directions file's rows — the same selection the weight edit takes (src/engine/ablation-selection.ts).
 */
export type AblationSpec = AblationSelection;

export interface EvaluationSettings {
  maxNewTokens?: number;
  batchSize?: number;
  /** Refusal markers (normalized here); docs/definitions.md's list when absent. */
  markers?: readonly string[];
}

export interface ReplyVerdict {
  response: string;
  refused: boolean;
  matchedMarkers: string[];
  finishReason: Generation['finishReason'];
}

export interface RefusalEvaluation {
  refusalRate: number;
  replies: ReplyVerdict[];
}

export interface EvaluationSample {
  messages: Conversation;
  base: ReplyVerdict;
  ablated: ReplyVerdict;
}

/** eval.json (docs/contracts.md): base/ablated refusal rates, klFirstToken, samples; extra fields are additions. */
export interface EvaluationReport {
  /** refusalInterval: the 95 % Wilson interval [low, high] of the rate over counts.harmful prompts. */
  base: { refusalRate: number; refusalInterval: [number, number] };
  ablated: { refusalRate: number; refusalInterval: [number, number] };
  klFirstToken: number;
  samples: EvaluationSample[];
  klPerPrompt: number[];
  counts: { harmful: number; harmless: number };
  /** `scale`/`layers` describe the shorthand (null for a recipe); `recipe` the recipe as applied (null for the shorthand). */
  settings: { scale: number | null; targets: HookTarget[]; layers: [number, number] | null; recipe: Record<string, unknown> | null; maxNewTokens: number; markers: string[]; decoding: 'greedy' };
  /** Agent-prompted requests, when given (agent-evaluation.ts). */
  agent?: AgentEvaluation;
}

/** Resolves the marker list once (user lists are normalized like replies; empty entries are an error). */
export function resolveMarkers(markers: readonly string[] | undefined): string[] {
  if (!markers) return [...DEFAULT_REFUSAL_MARKERS];
  try {
    return normalizeMarkers(markers);
  } catch (error) {
    if (error instanceof RefusalMarkerError) throw new InvalidInputError(error.message);
    throw error;
  }
}

function verdictOf(generation: Generation, markers: readonly string[]): ReplyVerdict & { verdict: RefusalVerdict } {
  const verdict = classifyRefusal(generation.text, markers);
  return { response: generation.text, refused: verdict.refused, matchedMarkers: verdict.matchedMarkers, finishReason: generation.finishReason, verdict };
}

/** Greedy replies to every prompt and the fraction that are refusals. */
export async function evaluateRefusals(model: LanguageModel, prompts: readonly Conversation[], options: EvaluationSettings & LongCallOptions = {}): Promise<RefusalEvaluation> {
  if (prompts.length === 0) throw new InvalidInputError('the refusal prompt set is empty; give at least one prompt.');
  const markers = resolveMarkers(options.markers);
  const generations = await model.generateBatch([...prompts], {
    maxNewTokens: options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
    batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const replies = generations.map((generation) => verdictOf(generation, markers));
  return { refusalRate: refusalRate(replies.map((reply) => reply.verdict)), replies: replies.map(({ verdict: _verdict, ...reply }) => reply) };
}

/** Mean first-token KL(base ‖ ablated) from precomputed base logits ([prompt][vocab]) and the ablated model. */
export async function firstTokenKL(
  baseLogits: readonly Float32Array[],
  ablated: LanguageModel,
  prompts: readonly Conversation[],
  options: LongCallOptions & { batchSize?: number } = {},
): Promise<{ mean: number; perPrompt: number[] }> {
  if (prompts.length === 0) throw new InvalidInputError('the compliance prompt set is empty; KL needs at least one prompt.');
  const ablatedLogits = await ablated.nextTokenLogits([...prompts], options);
  return meanKLDivergence(baseLogits, ablatedLogits);
}

/** Forwards a sub-task's progress as this call's progress within [from, to]. */
/** Where a caller keeps the base model's results (cached per prompt set: they do not depend on the ablation). */
export interface BaseResults {
  refusals(prompts: readonly Conversation[], settings: Required<EvaluationSettings>, options: LongCallOptions): Promise<RefusalEvaluation>;
  logits(prompts: readonly Conversation[], batchSize: number, options: LongCallOptions): Promise<Float32Array[]>;
}

export interface EvaluationSteps {
  base: RefusalEvaluation;
  ablated: RefusalEvaluation;
  kl: { mean: number; perPrompt: number[] };
}

/**
 * The evaluation's steps, in order, for every caller (the CLI's EvaluationSession and the chat worker):
 * base replies on `harmful` (0.05–0.4 of the progress), base first-token logits on `harmless` (–0.45), the
 * ablated model's replies (–0.9) and its first-token KL against the base (–`until`, default 1). `ablated` is asked for only
 * after the base work, so a caller can load it late.
 */
export async function runEvaluationSteps(
  base: BaseResults,
  ablated: () => Promise<LanguageModel>,
  prompts: { harmful: readonly Conversation[]; harmless: readonly Conversation[] },
  settings: Required<EvaluationSettings>,
  reporter: ProgressReporter,
  signal?: AbortSignal,
  /** Where the KL step ends on the progress bar (below 1 when the caller has more steps after these). */
  until = 1,
): Promise<EvaluationSteps> {
  const signalOnly = signal ? { signal } : {};
  const baseReplies = await base.refusals(prompts.harmful, settings, { ...signalOnly, onProgress: progressSlice(reporter, 0.05, 0.4, 'base replies') });
  const baseLogits = await base.logits(prompts.harmless, settings.batchSize, { ...signalOnly, onProgress: progressSlice(reporter, 0.4, 0.45, 'base first-token logits') });
  throwIfAborted(signal);
  const model = await ablated();
  const ablatedReplies = await evaluateRefusals(model, prompts.harmful, { ...settings, ...signalOnly, onProgress: progressSlice(reporter, 0.45, 0.9, 'ablated replies') });
  const kl = await firstTokenKL(baseLogits, model, prompts.harmless, { batchSize: settings.batchSize, ...signalOnly, onProgress: progressSlice(reporter, 0.9, until, 'first-token KL') });
  return { base: baseReplies, ablated: ablatedReplies, kl };
}

export function progressSlice(reporter: ProgressReporter, from: number, to: number, label: string): (event: Progress) => void {
  return (event) => {
    if (event.status === 'progress') reporter.report(from + (to - from) * event.fraction, `${label}${event.detail ? `: ${event.detail}` : ''}`);
  };
}

/**
 * A model folder opened for evaluation: one tokenizer, the base model, and its decoded graph from which hook
 * graphs are built. The base model's replies and first-token logits are computed once per prompt set and
 * reused by every ablation evaluated on it (the layer sweep evaluates many).
 */
export class EvaluationSession {
  /** Keyed on the prompts' content and every setting that changes the replies or their verdicts. */
  private readonly baseRefusals = new BoundedCache<RefusalEvaluation>(BASE_RESULTS_KEPT);
  /** Keyed on the prompts' content: first-token logits depend on nothing else. */
  private readonly baseLogits = new BoundedCache<Float32Array[]>(BASE_RESULTS_KEPT);

  private constructor(
    readonly folder: ModelFolder,
    readonly tokenizer: GenerationTokenizer,
    readonly base: LanguageModel,
    private readonly graph: ModelProto,
    private readonly residual: ResidualPoints,
    private readonly tiedEmbeddings: boolean,
    private readonly device: string | undefined,
    private readonly onnxFile: string,
    private readonly externalData: ExternalDataFile[],
  ) {}

  static async open(folder: ModelFolder, options: LongCallOptions & { onnxFile?: string; device?: string } = {}): Promise<EvaluationSession> {
    const onnxFile = options.onnxFile ?? findOnnxGraphFiles(folder.list())?.decoder;
    if (!onnxFile || !folder.list().includes(onnxFile)) {
      throw new InvalidInputError(`${folder.name}: has no ONNX graph${onnxFile ? ` at ${onnxFile}` : ' in onnx/'}; evaluation needs the transformers.js export (onnx/model.onnx).`);
    }
    const tokenizer = await loadGenerationTokenizer(folder);
    const graph = decodeOnnxModel(`${folder.name}/${onnxFile}`, await readWholeFile(folder, onnxFile));
    const residual = findResidualPoints(graph);
    // The same decision as the export's (per-architecture default, missing lm_head), so preview = export.
    const tiedEmbeddings = await folderTiedEmbeddings(folder);
    const externalData = await externalDataFiles(folder, onnxFile, graph);
    const base = await LanguageModel.load(folder, tokenizer, { onnxFile, externalData, ...(options.device ? { device: options.device } : {}), ...(options.signal ? { signal: options.signal } : {}), ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
    return new EvaluationSession(folder, tokenizer, base, graph, residual, tiedEmbeddings, options.device, onnxFile, externalData);
  }

  /**
   * Checks up front that every prompt fits the context, naming `source` (e.g. the prompt file) and the prompt
   * number in the error, so a long run does not fail halfway.
   */
  checkPromptsFit(prompts: readonly Conversation[], source: string): void {
    prompts.forEach((conversation, index) => this.base.encodePrompt(conversation, `${source}: prompt #${index + 1}`));
  }

  /** Block count as the residual finder saw it in the graph. */
  get numLayers(): number {
    return this.residual.points.length - 1;
  }

  /** Loads the hook-ablated model for `spec`. The caller disposes it. */
  async loadAblated(spec: AblationSpec, options: LongCallOptions = {}): Promise<LanguageModel> {
    if (!isShorthandSelection(spec)) {
      // A recipe: its numbers baked into the recipe hook graph (norm-preserving ones computed from the weights).
      const ablation = resolveAblation(spec, this.numLayers);
      const layout = { numLayers: this.numLayers, dModel: ablation.dModel, siteCount: 1 + 2 * this.numLayers, tiedEmbeddings: this.tiedEmbeddings };
      const needsWeights = spec.recipe.method === 'norm-preserving';
      const values = await recipeHookValues(layout, ablation, needsWeights ? await safetensorsHookWeights(this.folder) : undefined);
      const baked = buildRecipeHookGraph(this.graph, { residual: this.residual, tiedEmbeddings: this.tiedEmbeddings, bake: values });
      return LanguageModel.load(this.folder, this.tokenizer, { graph: baked.model, onnxFile: this.onnxFile, externalData: this.externalData, ...(this.device ? { device: this.device } : {}), ...options });
    }
    const hooked = buildHookGraph(this.graph, {
      direction: spec.direction,
      scale: spec.scale,
      targets: spec.targets,
      ...(spec.layers ? { layers: spec.layers } : {}),
      tiedEmbeddings: this.tiedEmbeddings,
      residual: this.residual,
    });
    return LanguageModel.load(this.folder, this.tokenizer, { graph: hooked.model, onnxFile: this.onnxFile, externalData: this.externalData, ...(this.device ? { device: this.device } : {}), ...options });
  }

  /** Loads the base model with additive steering x ← x + w·r at hidden-state index `layer`. The caller disposes it. */
  async loadSteered(spec: { layer: number; direction: Float32Array; weight: number }, options: LongCallOptions = {}): Promise<LanguageModel> {
    const steered = buildSteeringGraph(this.graph, { ...spec, residual: this.residual });
    return LanguageModel.load(this.folder, this.tokenizer, { graph: steered.model, onnxFile: this.onnxFile, externalData: this.externalData, ...(this.device ? { device: this.device } : {}), ...options });
  }

  async baseRefusalsOn(prompts: readonly Conversation[], settings: EvaluationSettings & LongCallOptions = {}): Promise<RefusalEvaluation> {
    const key = contentKey({ prompts, maxNewTokens: settings.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS, markers: resolveMarkers(settings.markers) });
    return this.baseRefusals.getOrCompute(key, () => evaluateRefusals(this.base, prompts, settings));
  }

  async baseLogitsOn(prompts: readonly Conversation[], options: LongCallOptions & { batchSize?: number } = {}): Promise<Float32Array[]> {
    return this.baseLogits.getOrCompute(contentKey(prompts), () => this.base.nextTokenLogits([...prompts], options));
  }

  /**
   * Refusal rate (base and ablated) on `harmful` and first-token KL on `harmless` for one ablation.
   * The base model's results are reused whenever the same prompts come again with the same settings.
   */
  async evaluate(spec: AblationSpec, prompts: { harmful: readonly Conversation[]; harmless: readonly Conversation[] }, options: EvaluationSettings & LongCallOptions = {}): Promise<EvaluationReport> {
    const reporter = new ProgressReporter('evaluate', options.onProgress);
    const markers = resolveMarkers(options.markers);
    const maxNewTokens = options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
    const settings = { maxNewTokens, markers, batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE };
    let ablatedModel: LanguageModel | null = null;
    try {
      const { base, ablated, kl } = await runEvaluationSteps(
        { refusals: (harmful, settings, callOptions) => this.baseRefusalsOn(harmful, { ...settings, ...callOptions }), logits: (harmless, batchSize, callOptions) => this.baseLogitsOn(harmless, { batchSize, ...callOptions }) },
        async () => (ablatedModel = await this.loadAblated(spec, options.signal ? { signal: options.signal } : {})),
        prompts,
        settings,
        reporter,
        options.signal,
      );
      reporter.done();
      return {
        base: { refusalRate: base.refusalRate, refusalInterval: wilsonPair(base.refusalRate, prompts.harmful.length) },
        ablated: { refusalRate: ablated.refusalRate, refusalInterval: wilsonPair(ablated.refusalRate, prompts.harmful.length) },
        klFirstToken: kl.mean,
        samples: prompts.harmful.map((messages, index) => ({ messages, base: base.replies[index]!, ablated: ablated.replies[index]! })),
        klPerPrompt: kl.perPrompt,
        counts: { harmful: prompts.harmful.length, harmless: prompts.harmless.length },
        settings: { ...describeSpec(spec, this.numLayers), maxNewTokens, markers, decoding: 'greedy' },
      };
    } finally {
      await (ablatedModel as LanguageModel | null)?.dispose();
    }
  }

  async dispose(): Promise<void> {
    await this.base.dispose();
  }
}
