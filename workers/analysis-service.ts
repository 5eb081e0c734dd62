/**
 * The in-thread implementation of AnalysisApi (the worker exposes it through comlink; tests may call it
 * directly). Holds the open model; captures on onnxruntime-web — WebGPU when asked or when `auto` finds an
 * adapter, wasm otherwise — and falls back to wasm with a note when WebGPU fails (device lost, EP error).
 */
import { captureActivations, DEFAULT_CAPTURE_BATCH_SIZE, openCaptureSession, type CaptureResult, type CaptureSession } from '../src/engine/capture';
import { loadChatTokenizer, type ChatTokenizer } from '../src/engine/tokenize';
import { openFolderDescriptor } from '../src/platform/browser-folder';
import { externalDataFiles } from '../src/engine/external-data';
import { decodeOnnxModel } from '../src/formats/onnx';
import { checkMemoryFits, estimateMemoryNeeds } from '../src/engine/memory-estimate';
import type { BackendMemoryLimits } from '../src/core/memory-preflight';
import type { OnnxModelInput, OnnxSessionFactory, ResolvedBackend } from '../src/ports/onnx-session';
import type { AnalysisApi, AnalysisRequest, BackendProbe, AnalysisResult, ModelInspection, PromptInput, PromptMessage, RenderedTemplate } from '../src/protocol/analysis-api';
import { BackendError, InvalidInputError, throwIfAborted } from '../src/base/errors';
import { ProgressReporter, type LongCallOptions, type Progress } from '../src/base/progress';
import { activationCacheKey, readCachedActivations, writeCachedActivations } from './activation-cache';
import { analyzeCapturedSets } from './analysis-step';
import { inspectModelFolder, type OpenedModel } from '../src/engine/model-inspection';
import { findOnnxGraphFiles } from '../src/formats/onnx-files';
import { type FolderDescriptor } from '../src/ports/folder-descriptor';

interface SessionSlot {
  backend: ResolvedBackend;
  position: number;
  capture: CaptureSession;
}

type SetName = 'harmful' | 'harmless' | 'referenceA' | 'referenceB';
const SET_LABELS: Record<SetName, string> = { harmful: 'A (refusal)', harmless: 'B (compliance)', referenceA: 'C (reference A)', referenceB: 'D (reference B)' };

/** What the service runs on: onnxruntime-web in the worker; tests pass onnxruntime-node and failing fakes. */
export interface AnalysisRuntime {
  sessionFactory(backend: ResolvedBackend): OnnxSessionFactory;
  probeWebGpu(): Promise<{ available: boolean; fallback: boolean; detail: string }>;
  /** What a backend can hold (core/memory-preflight.ts); absent where there is no such limit (Node). */
  memoryLimits?(backend: ResolvedBackend): Promise<BackendMemoryLimits>;
}

/** Prompt tokens a capture's cache is sized for in the memory preflight (prompts are chat requests). */
const CAPTURE_PREFLIGHT_TOKENS = 512;

/** Progress of one capture attempt, as a fraction of that attempt. */
interface AttemptProgress {
  report(fraction: number, detail?: string): void;
  message(text: string): void;
}

export class AnalysisService implements AnalysisApi {
  constructor(private readonly runtime: AnalysisRuntime) {}

  private opened: OpenedModel | null = null;
  private tokenizer: ChatTokenizer | null = null;
  private session: SessionSlot | null = null;
  private webGpuFailed: string | null = null;
  private openGeneration = 0;

  async probeBackend(): Promise<BackendProbe> {
    const probe = await this.runtime.probeWebGpu();
    return { webgpu: probe.available, fallback: probe.fallback, auto: probe.available && !probe.fallback ? 'webgpu' : 'wasm', detail: probe.detail };
  }

  async openModel(descriptor: FolderDescriptor, options: LongCallOptions = {}): Promise<ModelInspection> {
    const generation = ++this.openGeneration;
    const folder = await openFolderDescriptor(descriptor);
    const opened = await inspectModelFolder(folder, options);
    // A newer openModel call (the user clicked again) wins; this one's result is dropped.
    if (generation !== this.openGeneration) throw new InvalidInputError('superseded by another model load');
    await this.releaseSession();
    this.opened = opened;
    this.tokenizer = null;
    return opened.inspection;
  }

  async renderTemplate(messages: PromptMessage[], position: number): Promise<RenderedTemplate> {
    const opened = this.opened;
    if (!opened) throw new InvalidInputError('No model is open: load a model to see its chat template.');
    // A folder without tokenizer files is refused by the loader, naming the missing file.
    this.tokenizer ??= await loadChatTokenizer(opened.folder);
    const ids = this.tokenizer.encodeChat(messages);
    const index = position < 0 ? ids.length + position : position;
    return {
      text: this.tokenizer.renderChat(messages),
      tokens: ids.map((id) => this.tokenizer!.decode([id])),
      capturedIndex: Math.min(Math.max(index, 0), ids.length - 1),
    };
  }

  private async releaseSession(): Promise<void> {
    const slot = this.session;
    this.session = null;
    if (slot) await slot.capture.release().catch(() => undefined);
  }

  private async resolveBackend(choice: AnalysisRequest['backend']): Promise<ResolvedBackend> {
    if (choice !== 'auto') return choice;
    if (this.webGpuFailed) return 'wasm';
    return (await this.probeBackend()).auto;
  }

  private async modelInput(opened: OpenedModel, path: string): Promise<OnnxModelInput> {
    const source = await opened.folder.open(path);
    const bytes = await source.read(0, source.size);
    const name = `${opened.folder.name}/${path}`;
    const graph = path === opened.onnx?.path ? opened.onnx.model : decodeOnnxModel(name, bytes);
    return { name, bytes, externalData: await externalDataFiles(opened.folder, path, graph) };
  }

  private async captureSession(opened: OpenedModel, backend: ResolvedBackend, position: number): Promise<CaptureSession> {
    if (this.session && this.session.backend === backend && this.session.position === position) return this.session.capture;
    await this.releaseSession();
    const onnx = opened.onnx;
    if (!onnx) throw new InvalidInputError(`${opened.folder.name} has no ONNX graph (onnx/model.onnx): capture needs one.`);
    if (this.runtime.memoryLimits) {
      // A capture runs one batch of prompts, no generation: the cache holds the prompt tokens only.
      const needs = await estimateMemoryNeeds(opened.folder, onnx.path, onnx.model, opened.config, { batch: DEFAULT_CAPTURE_BATCH_SIZE, tokens: CAPTURE_PREFLIGHT_TOKENS });
      checkMemoryFits(`${opened.folder.name}/${onnx.path}`, needs, await this.runtime.memoryLimits(backend), await this.runtime.memoryLimits(backend === 'wasm' ? 'webgpu' : 'wasm'));
    }
    const embeddingPath = onnx.residual.inputsEmbeds ? findOnnxGraphFiles(opened.folder.list())?.embedding ?? null : null;
    const capture = await openCaptureSession(this.runtime.sessionFactory(backend), await this.modelInput(opened, onnx.path), {
      positions: [position],
      numLayers: opened.config.numLayers,
      ...(embeddingPath ? { embedding: await this.modelInput(opened, embeddingPath) } : {}),
    });
    this.session = { backend, position, capture };
    return capture;
  }

  async analyze(request: AnalysisRequest, options: LongCallOptions = {}): Promise<AnalysisResult> {
    const opened = this.opened;
    if (!opened) throw new InvalidInputError('No model is open: load the demo model or a model folder first.');
    if (request.prompts.harmful.length < 2 || request.prompts.harmless.length < 2) {
      throw new InvalidInputError('Sets A and B each need at least two prompts (one prompt per line).');
    }
    const hasReferencePair = request.prompts.referenceA.length > 0 || request.prompts.referenceB.length > 0;
    if (hasReferencePair && (request.prompts.referenceA.length === 0 || request.prompts.referenceB.length === 0)) {
      throw new InvalidInputError('The reference contrast needs prompts in both C and D (or leave both empty).');
    }
    const notes: string[] = [];
    const backend = await this.resolveBackend(request.backend);
    // One progress task for the whole call: a retry on wasm continues the bar from where WebGPU stopped
    // (its own 0..1 mapped onto the rest), so the fraction never goes back and one `done` ends the call.
    const progress = new ProgressReporter('capture', options.onProgress);
    let reached = 0;
    const from = (start: number): AttemptProgress => ({
      report: (fraction, detail) => {
        reached = start + (1 - start) * fraction;
        progress.report(reached, detail);
      },
      message: (text) => progress.message(text),
    });
    let result: AnalysisResult;
    try {
      result = await this.analyzeOn(opened, request, backend, notes, options, from(0));
    } catch (error) {
      if (!(error instanceof BackendError) || backend !== 'webgpu') throw error;
      this.webGpuFailed = error.message;
      await this.releaseSession();
      notes.push(`${error.message} Retried on wasm (CPU); this run's numbers come from wasm.`);
      progress.message(notes[notes.length - 1]);
      result = await this.analyzeOn(opened, request, 'wasm', notes, options, from(reached));
    }
    progress.done();
    return result;
  }

  private async analyzeOn(opened: OpenedModel, request: AnalysisRequest, backend: ResolvedBackend, notes: string[], options: LongCallOptions, progress: AttemptProgress): Promise<AnalysisResult> {
    const started = performance.now();
    const sets = (Object.keys(SET_LABELS) as SetName[]).filter((name) => request.prompts[name].length > 0);
    const batchSize = request.batchSize ?? DEFAULT_CAPTURE_BATCH_SIZE;
    const captured: Partial<Record<SetName, CaptureResult>> = {};
    const keys: Partial<Record<SetName, string>> = {};
    // The cache first, so the bar measures only the prompts that are really captured: a set read from the
    // cache would otherwise start the next one at 90 % with "preparing the session".
    for (const name of sets) {
      keys[name] = await activationCacheKey(opened.inspection.fingerprint, request.prompts[name], request.position, backend, batchSize);
      const cached = await readCachedActivations(keys[name]!);
      if (cached) captured[name] = cached;
    }
    const fromCacheCount = sets.filter((name) => captured[name]).length;
    const toCapture = sets.filter((name) => !captured[name]);
    const totalPrompts = toCapture.reduce((sum, name) => sum + request.prompts[name].length, 0);
    if (fromCacheCount > 0) progress.message(`${sets.filter((name) => captured[name]).map((name) => SET_LABELS[name]).join(', ')} from the activation cache`);
    let finishedPrompts = 0;
    for (const name of toCapture) {
      throwIfAborted(options.signal);
      const prompts: PromptInput[] = request.prompts[name];
      this.tokenizer ??= await loadChatTokenizer(opened.folder);
      const sessionOpen = this.session !== null && this.session.backend === backend && this.session.position === request.position;
      // Only the first captured set opens the session; later sets say which set is starting.
      progress.report(finishedPrompts / totalPrompts, `${SET_LABELS[name]}: ${sessionOpen ? 'starting' : `preparing the ${backend} session`}`);
      const capture = await this.captureSession(opened, backend, request.position);
      const offset = finishedPrompts;
      captured[name] = await captureActivations(capture, this.tokenizer, prompts, {
        batchSize,
        label: SET_LABELS[name],
        signal: options.signal,
        onProgress: (event: Progress) => {
          if (event.status === 'progress') progress.report((offset + event.fraction * prompts.length) / totalPrompts, `${SET_LABELS[name]}: ${event.detail ?? ''} on ${backend}`);
        },
      });
      await writeCachedActivations(keys[name]!, captured[name]!);
      finishedPrompts += prompts.length;
      progress.report(finishedPrompts / totalPrompts, `${SET_LABELS[name]} captured`);
    }
    throwIfAborted(options.signal);
    progress.message('analysing');
    const analysis = analyzeCapturedSets(
      opened,
      request,
      { harmful: captured.harmful!, harmless: captured.harmless!, referenceA: captured.referenceA ?? null, referenceB: captured.referenceB ?? null },
      backend,
      (performance.now() - started) / 1000,
    );
    return { ...analysis, fromCache: fromCacheCount === sets.length, notes };
  }
}
