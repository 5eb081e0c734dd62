/**
 * Side-by-side chat: one prompt goes to the base model and to the ablated one (hooks or an exported folder),
 * both in the chat worker; tokens stream into each column; Stop ends both within a token. Named export, no
 * props: everything comes from the workbench store (model, selected layer, directions) and the chat store.
 */
import { useEffect } from 'react';
import { ablatedSideSpec, clearConversation, loadAgentPreset, resetForNewModel, sendChat, stopChat, updateChat } from '../../state/chat-actions';
import { loadHeldOutDefaults } from '../../state/chat-evaluation';
import { useChat } from '../../state/chat-store';
import { useAblation } from '../../state/ablation';
import { useWorkbench } from '../../state/store';
import { AblationSettings } from './AblationSettings';
import { ChatColumn } from './ChatColumn';
import { ChatSettingsBar } from './ChatSettingsBar';
import './chat.css';

function useModelLifecycle(): void {
  const fingerprint = useWorkbench((state) => state.model.inspection?.fingerprint ?? null);
  const preset = useWorkbench((state) => state.promptPreset);
  useEffect(() => {
    void loadAgentPreset();
  }, []);
  useEffect(() => {
    resetForNewModel();
  }, [fingerprint]);
  useEffect(() => {
    if (preset) void loadHeldOutDefaults(preset);
  }, [preset]);
}

export function ChatPanel() {
  useModelLifecycle();
  // Field by field: the transcript columns subscribe to the streamed text themselves.
  const systemPrompt = useChat((state) => state.systemPrompt);
  const agentPreset = useChat((state) => state.agentPreset);
  const input = useChat((state) => state.input);
  const generating = useChat((state) => state.generating);
  const notice = useChat((state) => state.notice);
  useChat((state) => state.ablatedSource);
  useAblation((state) => state);
  useChat((state) => state.ablatedFolder);
  useWorkbench((state) => state.importedDirection);
  const modelReady = useWorkbench((state) => state.model.phase === 'ready');
  const modelLabel = useWorkbench((state) => state.model.label);
  useWorkbench((state) => state.selectedLayer);
  useWorkbench((state) => state.result);
  const ablation = ablatedSideSpec();
  const ablatedSubtitle = !ablation.spec
    ? 'not set'
    : ablation.spec.kind === 'folder'
      ? ablation.spec.folder.name
      : ablation.spec.kind === 'recipe'
        ? ablation.spec.label
        : `${ablation.spec.direction.kind === 'analysis' ? `r${ablation.spec.direction.layer}` : ablation.spec.direction.file} · α ${ablation.spec.scale} · ${ablation.spec.targets.join('+')}`;
  return (
    <div className="chat-panel">
      <h3 className="subheading">Chat: base | ablated</h3>
      <AblationSettings />
      <div className="system-row">
        <label htmlFor="chat-system" className="prompt-title">
          System prompt
        </label>
        {agentPreset && (
          <button type="button" className="link-button" data-testid="chat.agent-preset" onClick={() => updateChat({ systemPrompt: agentPreset! })} title={agentPreset}>
            terminal-agent preset
          </button>
        )}
        {systemPrompt && (
          <button type="button" className="link-button" onClick={() => updateChat({ systemPrompt: '' })}>
            none
          </button>
        )}
        <ChatSettingsBar />
      </div>
      <textarea id="chat-system" className="system-prompt" data-testid="chat.system" rows={2} placeholder="optional; sent first in both conversations" value={systemPrompt} onChange={(event) => updateChat({ systemPrompt: event.target.value })} />
      <div className="chat-columns">
        <ChatColumn side="base" title="Base" subtitle={modelLabel || 'no model'} />
        <ChatColumn side="ablated" title="Ablated" subtitle={ablatedSubtitle} />
      </div>
      <form
        className="chat-input-row"
        onSubmit={(event) => {
          event.preventDefault();
          void sendChat();
        }}
      >
        <textarea
          data-testid="chat.input"
          rows={2}
          value={input}
          placeholder={modelReady ? 'Message both models (Enter sends, Shift+Enter for a new line)' : 'Load a model first'}
          onChange={(event) => updateChat({ input: event.target.value })}
          onKeyDown={(event) => {
            if (event.key === 'Enter' && !event.shiftKey) {
              event.preventDefault();
              void sendChat();
            }
          }}
        />
        <div className="chat-buttons">
          <button type="submit" className="primary" data-testid="chat.send" disabled={!modelReady} aria-disabled={generating}>
            Send
          </button>
          <button type="button" data-testid="chat.stop" disabled={!generating} onClick={stopChat}>
            Stop
          </button>
          <button type="button" className="link-button" onClick={clearConversation}>
            clear
          </button>
        </div>
      </form>
      <p className="hint chat-notice" data-testid="chat.notice" role="status">
        {notice ?? ''}
      </p>
    </div>
  );
}
