/**
 * The in-thread implementation of ChatApi (the chat worker exposes it through comlink; Node tests call it
 * directly). It holds one base model (an EvaluationSession: tokenizer, base LanguageModel, decoded graph) and
 * one ablated model (the hook graph of the requested direction/scale/targets, or an exported folder), and
 * reloads only what a call's ChatModelsSpec changes. Generation, evaluation and sweep are the engine's
 * (src/engine/generate.ts, evaluate.ts, layer-sweep.ts), the same code `abliterate eval` runs.
 */
import { checkedUnitDirection, DirectionError } from '../src/core/direction';
import { wilsonPair } from '../src/core/intervals';
import { evaluateRefusals, EvaluationSession, progressSlice, resolveMarkers, runEvaluationSteps, type RefusalEvaluation } from '../src/engine/evaluate';
import { DEFAULT_BATCH_SIZE, LanguageModel, loadGenerationTokenizer, type Conversation } from '../src/engine/generate';
import { sweepLayers } from '../src/engine/layer-sweep';
import { parseRecipe, RecipeError, type Recipe } from '../src/core/recipe';
import { parseDirectionFile, selectDirection } from '../src/formats/direction-file';
import { readModelConfig } from '../src/formats/hf-folder';
import type { ModelFolder } from '../src/ports/folder';
import type { PromptInput } from '../src/protocol/analysis-api';
import type {
  AblatedModelSpec,
  ChatApi,
  ChatCallOptions,
  ChatModelsSpec,
  ChatReply,
  ChatRequest,
  DirectionSource,
  AgentEvaluationResult,
  EvaluationRequest,
  EvaluationResult,
  ExportComparisonRequest,
  ExportComparisonResult,
  PreflightRequest,
  PreflightResult,
  ModelsInfo,
  SweepRequest,
  SweepResult,
} from '../src/protocol/chat-api';
import { InvalidInputError, throwIfAborted } from '../src/base/errors';
import { ProgressReporter, type LongCallOptions } from '../src/base/progress';
import { checkRefusal } from '../src/core/refusal-spans';
import { Leased } from './chat-lease';
import { ablationKey, ablationLabel, fingerprint } from './chat-keys';
import { evaluateAgentPrompts, type AgentEvaluation } from '../src/engine/agent-evaluation';
import { runPreflight } from '../src/engine/preflight';
import { compareFirstTokenLogits } from '../src/engine/export-comparison';
import { preflightModelMemory } from '../src/engine/memory-estimate';
import type { BackendMemoryLimits } from '../src/core/memory-preflight';
import { findOnnxGraphFiles } from '../src/formats/onnx-files';
import { type FolderDescriptor } from '../src/ports/folder-descriptor';
import { type ResolvedBackend } from '../src/ports/onnx-session';

export interface ChatRuntime {
  openFolder(descriptor: FolderDescriptor): Promise<ModelFolder>;
  /** What a backend can hold (core/memory-preflight.ts); absent where there is no such limit (Node). */
  memoryLimits?(backend: ResolvedBackend): Promise<BackendMemoryLimits>;
  /** transformers.js device for a backend ('wasm'/'webgpu' in a browser; undefined = its default, cpu in Node). */
  device(backend: ResolvedBackend): string | undefined;
}

interface BaseModel {
  folder: ModelFolder;
  session: EvaluationSession;
  hiddenSize: number;
  backend: ResolvedBackend;
  device: string | undefined;
  /** Base replies and first-token logits per prompt set and settings, reused by later evaluations. */
  refusals: Map<string, Promise<RefusalEvaluation>>;
  logits: Map<string, Promise<Float32Array[]>>;
}

interface AblatedModel {
  model: LanguageModel;
  label: string;
}

/** A recipe sent by the page, checked as recipe.json is: an InvalidInputError naming the field. */
function parseRecipeValue(value: Record<string, unknown>, numLayers: number): Recipe {
  try {
    return parseRecipe(value, numLayers);
  } catch (error) {
    if (error instanceof RecipeError) throw new InvalidInputError(`the current recipe: ${error.message}`, { field: error.field });
    throw error;
  }
}

function conversations(prompts: readonly PromptInput[]): Conversation[] {
  return prompts.map((prompt) => prompt.messages);
}

function resolveDirection(source: DirectionSource, hiddenSize: number, numLayers: number): Float32Array {
  if (source.kind === 'file') {
    return selectDirection(parseDirectionFile(source.file, source.bytes), { hiddenSize, numLayers, ...(source.layer === null ? {} : { layer: source.layer }) });
  }
  try {
    return Float32Array.from(checkedUnitDirection(source.values, hiddenSize, `the analysis direction of layer ${source.layer}`));
  } catch (error) {
    if (error instanceof DirectionError) throw new InvalidInputError(error.message);
    throw error;
  }
}

async function graphFingerprint(folder: ModelFolder): Promise<string | null> {
  const path = findOnnxGraphFiles(folder.list())?.decoder;
  if (!path) return null;
  const source = await folder.open(path);
  return `${path}:${fingerprint(await source.read(0, source.size))}`;
}

/**
 * The export edits safetensors and copies every other file, the ONNX graph included: an exported folder chats
 * exactly like the base unless its graph was re-exported from the edited weights. Say so instead of showing two
 * identical columns.
 */
async function refuseUneditedGraph(baseFolder: ModelFolder, folder: ModelFolder): Promise<void> {
  const [baseGraph, graph] = await Promise.all([graphFingerprint(baseFolder), graphFingerprint(folder)]);
  if (graph === null) throw new InvalidInputError(`${folder.name}: has no ONNX graph in onnx/; chat needs the transformers.js export of the edited model.`);
  if (graph === baseGraph) {
    throw new InvalidInputError(
      `${folder.name}: has the same ONNX graph as the base model (an export edits the safetensors and copies the graph unchanged), so it would answer exactly like the base. Re-export ONNX from the edited weights, or use the hook preview, which equals the weight edit.`,
    );
  }
}

function signalOnly(options: LongCallOptions): LongCallOptions {
  return options.signal ? { signal: options.signal } : {};
}

/** The base graph with the hooks of `spec` (a direction, or a whole recipe over per-layer directions). */
async function loadHookModel(spec: Exclude<AblatedModelSpec, { kind: 'folder' }>, base: BaseModel, options: LongCallOptions): Promise<LanguageModel> {
  if (spec.kind === 'recipe') {
    // Every method, projection and kernel, baked into the recipe hook graph exactly as `abliterate eval --recipe` does.
    const recipe = parseRecipeValue(spec.recipe, base.session.numLayers);
    return base.session.loadAblated({ recipe, directions: spec.directions, ...(spec.harmlessMeans ? { harmlessMeans: spec.harmlessMeans } : {}) }, options);
  }
  const direction = resolveDirection(spec.direction, base.hiddenSize, base.session.numLayers);
  return base.session.loadAblated({ direction, scale: spec.scale, targets: spec.targets, ...(spec.layers ? { layers: spec.layers } : {}) }, options);
}

export class ChatService implements ChatApi {
  private base: { key: string; lease: Leased<BaseModel> } | null = null;
  private ablated: { key: string; lease: Leased<AblatedModel> } | null = null;
  /** Model switches happen one at a time; generations run concurrently once their models are held. */
  private switching: Promise<unknown> = Promise.resolve();

  constructor(private readonly runtime: ChatRuntime) {}

  /** The memory preflight: a model the backend cannot hold is refused before anything loads. */
  private async checkMemory(folder: ModelFolder, backend: ResolvedBackend): Promise<void> {
    if (!this.runtime.memoryLimits) return;
    const other = backend === 'wasm' ? 'webgpu' : 'wasm';
    await preflightModelMemory(folder, await this.runtime.memoryLimits(backend), { otherBackend: await this.runtime.memoryLimits(other), batch: DEFAULT_BATCH_SIZE });
  }

  private async holdBase(models: Omit<ChatModelsSpec, 'ablated'>, options: LongCallOptions): Promise<{ value: BaseModel; release(): void }> {
    const key = `${models.baseKey}|${models.backend}`;
    if (this.base?.key !== key) {
      this.ablated?.lease.retire();
      this.ablated = null;
      this.base?.lease.retire();
      this.base = null;
      const folder = await this.runtime.openFolder(models.base);
      await this.checkMemory(folder, models.backend);
      const device = this.runtime.device(models.backend);
      const session = await EvaluationSession.open(folder, { ...(device ? { device } : {}), ...options });
      const config = await readModelConfig(folder).catch(async (error) => {
        await session.dispose();
        throw error;
      });
      const value: BaseModel = { folder, session, hiddenSize: config.hiddenSize, backend: models.backend, device, refusals: new Map(), logits: new Map() };
      this.base = { key, lease: new Leased(value, () => session.dispose()) };
    }
    return this.base.lease.acquire();
  }

  private async holdAblated(spec: AblatedModelSpec, base: BaseModel, baseKey: string, options: LongCallOptions): Promise<{ value: AblatedModel; release(): void }> {
    const key = `${baseKey}|${ablationKey(spec)}`;
    if (this.ablated?.key !== key) {
      this.ablated?.lease.retire();
      this.ablated = null;
      let model: LanguageModel;
      if (spec.kind !== 'folder') model = await loadHookModel(spec, base, options);
      else {
        const folder = await this.runtime.openFolder(spec.folder);
        await refuseUneditedGraph(base.folder, folder);
        await this.checkMemory(folder, base.backend);
        const tokenizer = await loadGenerationTokenizer(folder);
        const device = this.runtime.device(base.backend);
        model = await LanguageModel.load(folder, tokenizer, { ...(device ? { device } : {}), ...options });
      }
      this.ablated = { key, lease: new Leased({ model, label: ablationLabel(spec) }, () => model.dispose()) };
    }
    return this.ablated.lease.acquire();
  }

  /** Holds the models `models` names (loading what changed) for the duration of `use`. */
  private async withModels<T>(models: ChatModelsSpec, needAblated: boolean, options: LongCallOptions, use: (base: BaseModel, ablated: AblatedModel | null) => Promise<T>): Promise<T> {
    const held = this.switching.then(async () => {
      throwIfAborted(options.signal);
      const base = await this.holdBase(models, signalOnly(options));
      if (!needAblated || !models.ablated) return { base, ablated: null };
      try {
        return { base, ablated: await this.holdAblated(models.ablated, base.value, `${models.baseKey}|${models.backend}`, signalOnly(options)) };
      } catch (error) {
        base.release();
        throw error;
      }
    });
    this.switching = held.catch(() => undefined);
    const { base, ablated } = await held;
    try {
      if (needAblated && !ablated) throw new InvalidInputError('There is no ablated model yet: run the capture (step 3) or import a direction file, or load an exported model folder.');
      return await use(base.value, ablated?.value ?? null);
    } finally {
      base.release();
      ablated?.release();
    }
  }

  async prepare(models: ChatModelsSpec, options: LongCallOptions = {}): Promise<ModelsInfo> {
    const started = performance.now();
    return this.withModels(models, models.ablated !== null, options, async (base, ablated) => ({
      backend: base.backend,
      numLayers: base.session.numLayers,
      ablatedLabel: ablated?.label ?? 'no ablation',
      seconds: (performance.now() - started) / 1000,
    }));
  }

  async generate(request: ChatRequest, options: ChatCallOptions = {}): Promise<ChatReply> {
    if (request.messages.length === 0 || request.messages[request.messages.length - 1]!.role !== 'user') {
      throw new InvalidInputError('A chat turn must end with the user message to answer.');
    }
    const markers = resolveMarkers(request.markers);
    return this.withModels(request.models, request.side === 'ablated', options, async (base, ablated) => {
      const model = request.side === 'base' ? base.session.base : ablated!.model;
      const started = performance.now();
      const { settings } = request;
      const generation = await model.generate(request.messages, {
        maxNewTokens: settings.maxNewTokens,
        minNewTokens: settings.minNewTokens,
        temperature: settings.temperature,
        topP: settings.topP,
        seed: settings.seed,
        ...signalOnly(options),
        ...(options.onToken ? { onToken: (event) => options.onToken!({ text: event.text, index: event.index }) } : {}),
      });
      return {
        text: generation.text,
        tokenCount: generation.tokenIds.length,
        promptTokenCount: generation.promptTokenCount,
        finishReason: generation.finishReason,
        seconds: (performance.now() - started) / 1000,
        refusal: checkRefusal(generation.text, markers),
      };
    });
  }

  private baseRefusals(base: BaseModel, harmful: Conversation[], settings: { maxNewTokens: number; batchSize: number; markers: readonly string[] }, options: LongCallOptions): Promise<RefusalEvaluation> {
    const key = JSON.stringify({ harmful, ...settings });
    let pending = base.refusals.get(key);
    if (!pending) {
      pending = evaluateRefusals(base.session.base, harmful, { ...settings, ...options });
      base.refusals.set(key, pending);
      pending.catch(() => base.refusals.delete(key));
    }
    return pending;
  }

  private baseLogits(base: BaseModel, harmless: Conversation[], batchSize: number, options: LongCallOptions): Promise<Float32Array[]> {
    const key = JSON.stringify({ harmless, batchSize });
    let pending = base.logits.get(key);
    if (!pending) {
      pending = base.session.base.nextTokenLogits(harmless, { batchSize, ...options });
      base.logits.set(key, pending);
      pending.catch(() => base.logits.delete(key));
    }
    return pending;
  }

  async evaluate(request: EvaluationRequest, options: LongCallOptions = {}): Promise<EvaluationResult> {
    const started = performance.now();
    const harmful = conversations(request.harmful);
    const harmless = conversations(request.harmless);
    if (harmful.length === 0) throw new InvalidInputError('The evaluation needs refusal prompts (held-out A): the set is empty.');
    if (harmless.length === 0) throw new InvalidInputError('The evaluation needs compliance prompts (held-out B) for the KL: the set is empty.');
    const markers = resolveMarkers(request.markers);
    const agentPrompts = conversations(request.agent ?? []);
    const settings = { maxNewTokens: request.maxNewTokens, batchSize: request.batchSize ?? DEFAULT_BATCH_SIZE, markers };
    const reporter = new ProgressReporter('evaluate', options.onProgress);
    return this.withModels(request.models, true, { ...signalOnly(options), onProgress: progressSlice(reporter, 0, 0.05, 'loading models') }, async (base, ablated) => {
      // The engine's evaluation steps, the very ones `abliterate eval` runs; base results cached per model here.
      const steps = await runEvaluationSteps(
        { refusals: (prompts, stepSettings, callOptions) => this.baseRefusals(base, [...prompts], stepSettings, callOptions), logits: (prompts, batchSize, callOptions) => this.baseLogits(base, [...prompts], batchSize, callOptions) },
        async () => ablated!.model,
        { harmful, harmless },
        settings,
        reporter,
        options.signal,
        agentPrompts.length ? 0.92 : 1,
      );
      const { base: baseReplies, ablated: ablatedReplies, kl } = steps;
      const agent = agentPrompts.length === 0 ? null : await evaluateAgentPrompts(base.session, ablated!.model, agentPrompts, {
        ...settings,
        ...(request.actionKeys ? { actionKeys: request.actionKeys } : {}),
        ...signalOnly(options),
        onProgress: progressSlice(reporter, 0.92, 1, 'agent prompts'),
      });
      reporter.done();
      const verdict = (reply: RefusalEvaluation['replies'][number]) => ({ response: reply.response, finishReason: reply.finishReason, ...checkRefusal(reply.response, markers) });
      return {
        base: { refusalRate: baseReplies.refusalRate, refusalInterval: wilsonPair(baseReplies.refusalRate, harmful.length) },
        ablated: { refusalRate: ablatedReplies.refusalRate, refusalInterval: wilsonPair(ablatedReplies.refusalRate, harmful.length) },
        klFirstToken: kl.mean,
        klPerPrompt: kl.perPrompt,
        samples: request.harmful.map((prompt, index) => ({ messages: prompt.messages, base: verdict(baseReplies.replies[index]!), ablated: verdict(ablatedReplies.replies[index]!) })),
        counts: { harmful: harmful.length, harmless: harmless.length },
        markers,
        maxNewTokens: request.maxNewTokens,
        ablatedLabel: ablated!.label,
        backend: base.backend,
        seconds: (performance.now() - started) / 1000,
        ...(agent ? { agent: agentResult(agent, request.agent!) } : {}),
      };
    });
  }

  /** Preflight before a capture, on the base model this worker holds (engine/preflight.ts). */
  async preflight(request: PreflightRequest, options: LongCallOptions = {}): Promise<PreflightResult> {
    return this.withModels({ ...request.models, ablated: null }, false, signalOnly(options), async (base) => {
      const report = await runPreflight(base.session, { harmful: conversations(request.harmful), harmless: conversations(request.harmless) }, {
        position: request.position,
        ...(request.markers ? { markers: request.markers } : {}),
        ...(request.actionKeys ? { actionKeys: request.actionKeys } : {}),
        ...options,
      });
      return { ...report, samples: report.samples.map((sample) => ({ ...sample, messages: [...sample.messages] })) };
    });
  }

  /** The exported folder (held as the ablated side) against the hook preview, loaded for this call only. */
  async compareExport(request: ExportComparisonRequest, options: LongCallOptions = {}): Promise<ExportComparisonResult> {
    const started = performance.now();
    const reporter = new ProgressReporter('compare export', options.onProgress);
    return this.withModels(request.models, true, { ...signalOnly(options), onProgress: progressSlice(reporter, 0, 0.1, 'loading models') }, async (base, exported) => {
      const preview = await loadHookModel(request.preview, base, { ...signalOnly(options), onProgress: progressSlice(reporter, 0.1, 0.3, 'loading the hook preview') });
      try {
        const comparison = await compareFirstTokenLogits({ base: base.session.base, preview, exported: exported!.model }, conversations(request.prompts), {
          ...(request.batchSize ? { batchSize: request.batchSize } : {}),
          ...signalOnly(options),
          onProgress: progressSlice(reporter, 0.3, 1, 'first-token logits'),
        });
        reporter.done();
        return { ...comparison, previewLabel: ablationLabel(request.preview), exportedLabel: exported!.label, backend: base.backend, seconds: (performance.now() - started) / 1000 };
      } finally {
        await preview.dispose();
      }
    });
  }

  async sweep(request: SweepRequest, options: LongCallOptions = {}): Promise<SweepResult> {
    const started = performance.now();
    if (request.candidateLayers.length === 0) throw new InvalidInputError('The sweep needs at least one candidate layer.');
    return this.withModels({ ...request.models, ablated: null }, false, signalOnly(options), async (base) => {
      const sweep = await sweepLayers(
        base.session,
        request.directions,
        { harmful: conversations(request.harmful), harmless: conversations(request.harmless) },
        {
          candidateLayers: request.candidateLayers,
          // The panel keeps the layers that finished when the user cancels.
          keepFinished: true,
          maxNewTokens: request.maxNewTokens,
          scale: request.scale,
          targets: request.targets,
          ...(request.klBound === undefined ? {} : { klBound: request.klBound }),
          ...(request.markers ? { markers: resolveMarkers(request.markers) } : {}),
          ...options,
        },
      );
      return { ...sweep, backend: base.backend, seconds: (performance.now() - started) / 1000 };
    });
  }

  async release(): Promise<void> {
    this.ablated?.lease.retire();
    this.base?.lease.retire();
    this.ablated = null;
    this.base = null;
  }
}

/** The engine's agent evaluation as the panel receives it (the prompts as the UI sent them). */
function agentResult(agent: AgentEvaluation, prompts: PromptInput[]): AgentEvaluationResult {
  const verdict = ({ response, action, refused, actionOutcome, command, finishReason }: AgentEvaluation['samples'][number]['base']) => ({ response, action, refused, actionOutcome, command, finishReason });
  return {
    count: agent.count,
    base: agent.base,
    ablated: agent.ablated,
    samples: agent.samples.map((sample, index) => ({ messages: prompts[index]!.messages, base: verdict(sample.base), ablated: verdict(sample.ablated) })),
    actionKeys: agent.settings.actionKeys,
  };
}
