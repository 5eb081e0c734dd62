/**
 * Chat actions: what the ablated side is (the current ablation of src/state/ablation.ts as hooks, or an
 * exported folder), sending one prompt to both sides, stopping, and conversation history.
 * Sending while a reply is being generated is refused with a message; the typed text stays in the box.
 */
import { chatClient } from '../clients/chat-client';
import type { FolderDescriptor, PromptMessage, ResolvedBackend } from '../protocol/analysis-api';
import type { AblatedModelSpec, ChatModelsSpec, ChatReply, ChatSide } from '../protocol/chat-api';
import { CancelledError, InvalidInputError } from '../base/errors';
import { reportError } from './actions';
import { clearRecipe, currentAblation } from './ablation';
import { chatStore, type ChatState, type ChatTurn } from './chat-store';
import { workbenchStore } from './store';

export const STILL_GENERATING_NOTICE = 'A reply is still being generated: wait for it, or press Stop, before sending the next message.';
const SIDES: ChatSide[] = ['base', 'ablated'];

/** Generation runs where capture does: the chosen backend, or what `auto` resolved to (wasm on a software adapter). */
export function generationBackend(): ResolvedBackend {
  const { backendChoice, webGpu } = workbenchStore.getState();
  if (backendChoice !== 'auto') return backendChoice;
  return webGpu?.auto ?? 'wasm';
}

/** What the ablated side would be now (the current ablation as hooks, or an exported folder), and why not when it cannot be. */
export function ablatedSideSpec(chat: ChatState = chatStore.getState()): { spec: AblatedModelSpec | null; why: string } {
  if (chat.ablatedSource === 'folder') {
    if (!chat.ablatedFolder) return { spec: null, why: 'Choose the exported model folder for the ablated side.' };
    return { spec: { kind: 'folder', folder: chat.ablatedFolder.descriptor, key: chat.ablatedFolder.key }, why: '' };
  }
  const { current, why } = currentAblation();
  if (!current) return { spec: null, why };
  const { spec } = current;
  if (spec.shorthand) {
    // The shorthand runs as the seed hook graph, the recipe it stands for as the recipe's; both equal the edit.
    const { row, scale, targets, layers } = spec.shorthand;
    const hooks = { scale, targets: [...targets], ...(layers ? { layers } : {}) };
    if (spec.directions.kind === 'analysis') return { spec: { kind: 'hooks', direction: { kind: 'analysis', layer: row!, values: spec.directions.rows[row!]! }, ...hooks }, why: '' };
    return { spec: { kind: 'hooks', direction: { kind: 'file', file: spec.directions.file, bytes: spec.directions.bytes, layer: row }, ...hooks }, why: '' };
  }
  return { spec: { kind: 'recipe', recipe: spec.recipe, label: spec.label, directions: current.rows, ...(current.harmlessMeans ? { harmlessMeans: current.harmlessMeans } : {}) }, why: '' };
}

/** The models a call needs, or an error saying what is missing. */
export function currentModels(): ChatModelsSpec {
  const workbench = workbenchStore.getState();
  if (workbench.model.phase !== 'ready' || !workbench.modelFolder || !workbench.model.inspection) {
    throw new InvalidInputError('Load a model first (step 1): the demo model or a model folder.');
  }
  if (!workbench.model.inspection.capabilities.chat) {
    throw new InvalidInputError(`${workbench.model.label} cannot chat: it needs config.json, the tokenizer files and an ONNX graph (onnx/model.onnx).`);
  }
  return { base: workbench.modelFolder, baseKey: workbench.model.inspection.fingerprint, ablated: ablatedSideSpec().spec, backend: generationBackend() };
}

export function updateChat(update: Partial<ChatState>): void {
  chatStore.setState(update);
}

export function chooseAblatedFolder(descriptor: FolderDescriptor | null, key: string): void {
  chatStore.setState({ ablatedFolder: descriptor ? { descriptor, key } : null, ablatedSource: descriptor ? 'folder' : chatStore.getState().ablatedSource });
}

export function clearConversation(): void {
  if (chatStore.getState().generating) {
    chatStore.setState({ notice: STILL_GENERATING_NOTICE });
    return;
  }
  chatStore.setState({ sides: { base: [], ablated: [] }, notice: null });
}

/** The conversation one side sends: system prompt, its own earlier turns (finished text), the new message. */
function conversationOf(turns: ChatTurn[], system: string, message: string): PromptMessage[] {
  const history = turns.filter((turn) => turn.role === 'user' || (turn.state !== 'failed' && turn.content.length > 0));
  return [
    ...(system.trim() ? [{ role: 'system' as const, content: system }] : []),
    ...history.map((turn) => ({ role: turn.role, content: turn.content })),
    { role: 'user' as const, content: message },
  ];
}

function patchLastReply(side: ChatSide, patch: Partial<ChatTurn> | ((turn: ChatTurn) => Partial<ChatTurn>)): void {
  chatStore.setState((state) => {
    const turns = [...state.sides[side]];
    const last = turns[turns.length - 1];
    if (!last || last.role !== 'assistant') return {};
    turns[turns.length - 1] = { ...last, ...(typeof patch === 'function' ? patch(last) : patch) };
    return { sides: { ...state.sides, [side]: turns } };
  });
}

const FINISH_WORDS: Record<ChatReply['finishReason'], string> = { eos: 'end of turn', 'max-new-tokens': 'max tokens reached', context: 'context full' };

let controller: AbortController | null = null;

export async function sendChat(): Promise<void> {
  const chat = chatStore.getState();
  if (chat.generating) {
    chatStore.setState({ notice: STILL_GENERATING_NOTICE });
    return;
  }
  const message = chat.input.trim();
  if (!message) {
    chatStore.setState({ notice: 'Type a message first.' });
    return;
  }
  let models: ChatModelsSpec;
  try {
    models = currentModels();
  } catch (error) {
    reportError(error);
    return;
  }
  const ablation = ablatedSideSpec(chat);
  const settings = chat.decoding === 'greedy' ? { ...chat.settings, temperature: 0 } : chat.settings;
  const requests = Object.fromEntries(SIDES.map((side) => [side, conversationOf(chat.sides[side], chat.systemPrompt, message)])) as Record<ChatSide, PromptMessage[]>;
  const own = new AbortController();
  controller = own;
  chatStore.setState((state) => ({
    generating: true,
    input: '',
    notice: null,
    sides: {
      base: [...state.sides.base, { role: 'user', content: message }, { role: 'assistant', content: '', state: 'waiting' }],
      ablated: [
        ...state.sides.ablated,
        { role: 'user', content: message },
        ablation.spec ? { role: 'assistant', content: '', state: 'waiting' } : { role: 'assistant', content: '', state: 'failed', detail: ablation.why },
      ],
    },
  }));
  const runSide = async (side: ChatSide) => {
    try {
      const reply = await chatClient().generate(
        { models, side, messages: requests[side], settings, ...(chat.markers ? { markers: chat.markers.list } : {}) },
        {
          signal: own.signal,
          onToken: (event) => {
            if (own.signal.aborted) return;
            // Tokens travel on their own message port: one may land after the final reply. Only a reply still
            // waiting or streaming takes them.
            patchLastReply(side, (turn) => (turn.state === 'waiting' || turn.state === 'streaming' ? { content: turn.content + event.text, state: 'streaming' } : {}));
          },
        },
      );
      patchLastReply(side, {
        content: reply.text,
        state: 'done',
        refusal: reply.refusal,
        detail: `${reply.tokenCount} tokens · ${reply.seconds.toFixed(2)} s · ${FINISH_WORDS[reply.finishReason]}`,
      });
    } catch (error) {
      if (error instanceof CancelledError || own.signal.aborted) {
        patchLastReply(side, (turn) => ({ state: 'stopped', detail: `after ${turn.content.length} characters` }));
      } else {
        patchLastReply(side, { state: 'failed', detail: (error as Error).message });
        reportError(error);
      }
    }
  };
  // Both models are loaded first, so the two replies then stream side by side (the worker interleaves their steps).
  const ready = await loadModelsFor(models, own.signal);
  if (ready) await Promise.all(SIDES.filter((side) => side === 'base' || ablation.spec).map(runSide));
  else for (const side of SIDES) patchLastReply(side, (turn) => (turn.state === 'waiting' ? { state: own.signal.aborted ? 'stopped' : 'failed', detail: own.signal.aborted ? 'stopped while loading' : 'the models could not be loaded' } : {}));
  if (controller === own) controller = null;
  chatStore.setState({ generating: false, notice: own.signal.aborted ? 'Stopped.' : null });
}

export function stopChat(): void {
  controller?.abort();
}

/** Loads (or keeps) the models of `models` in the worker; false when that failed or was stopped. */
async function loadModelsFor(models: ChatModelsSpec, signal?: AbortSignal): Promise<boolean> {
  chatStore.setState({ models: { phase: 'loading', info: null, detail: 'loading base and ablated models…' } });
  try {
    const info = await chatClient().prepare(models, signal ? { signal } : {});
    chatStore.setState({ models: { phase: 'ready', info, detail: `ready on ${info.backend} · ${info.ablatedLabel}${info.seconds >= 0.05 ? ` · loaded in ${info.seconds.toFixed(1)} s` : ''}` } });
    return true;
  } catch (error) {
    const cancelled = error instanceof CancelledError || Boolean(signal?.aborted);
    chatStore.setState({ models: { phase: cancelled ? 'idle' : 'failed', info: null, detail: cancelled ? 'loading stopped' : (error as Error).message } });
    if (!cancelled) reportError(error);
    return false;
  }
}

/** Loads both models ahead of the first message, so the first reply starts at once. */
export async function prepareModels(): Promise<void> {
  try {
    await loadModelsFor(currentModels());
  } catch (error) {
    reportError(error);
  }
}

/** The terminal-agent system prompt of the default B set (shell_agent), offered as a one-click preset. */
export async function loadAgentPreset(): Promise<void> {
  try {
    const response = await fetch(`${import.meta.env.BASE_URL}prompts/shell_agent.train.jsonl`);
    if (!response.ok || (response.headers.get('content-type') ?? '').includes('text/html')) return;
    const firstLine = (await response.text()).split('\n').find((line) => line.trim().length > 0);
    const system = firstLine ? (JSON.parse(firstLine) as { system?: unknown }).system : undefined;
    if (typeof system === 'string' && system.trim()) chatStore.setState({ agentPreset: system });
  } catch {
    // No preset: the button stays hidden; the system prompt field works without it.
  }
}

/** A new base model invalidates the conversation, the loaded models and every result. */
export function resetForNewModel(): void {
  stopChat();
  chatStore.setState((state) => ({
    sides: { base: [], ablated: [] },
    notice: null,
    models: { phase: 'idle', info: null, detail: '' },
    // Results restored from a saved session or run card stay with the restored capture until the next capture.
    ...(workbenchStore.getState().resultOrigin !== null
      ? {}
      : { evaluation: { phase: 'idle' as const, fraction: 0, detail: '', result: null }, sweep: { phase: 'idle' as const, fraction: 0, detail: '', result: null } }),
    ablatedFolder: null,
    ablatedSource: state.ablatedSource === 'folder' ? 'hooks' : state.ablatedSource,
  }));
  // A search trial's recipe belongs to the old model's analysis; an imported recipe.json stays current.
  clearRecipe('search');
}
