/** One side of the chat: its own conversation; the newest reply carries the test id chat.base / chat.ablated. */
import { useEffect, useRef } from 'react';
import type { ChatSide } from '../../protocol/chat-api';
import { useChat, type ChatTurn } from '../../state/chat-store';
import { HighlightedText } from './HighlightedText';

const STATE_WORDS: Record<NonNullable<ChatTurn['state']>, string> = { waiting: 'waiting…', streaming: 'generating…', done: '', stopped: 'stopped', failed: 'failed' };

function Reply({ turn, testId }: { turn: ChatTurn; testId: string | undefined }) {
  const state = turn.state ?? 'done';
  return (
    <div className={`turn assistant state-${state}${turn.refusal?.refused ? ' refused' : ''}`}>
      <div className="reply-text" data-testid={testId} data-state={state} data-refused={turn.refusal ? String(turn.refusal.refused) : undefined}>
        {state === 'waiting' && !turn.content ? <span className="typing" aria-label="waiting for the first token">●●●</span> : <HighlightedText text={turn.content} spans={state === 'done' ? turn.refusal?.spans : undefined} />}
        {state === 'streaming' && <span className="cursor" aria-hidden="true">▍</span>}
      </div>
      <div className="turn-meta">
        {turn.refusal && (
          <span className={turn.refusal.refused ? 'verdict refusal' : 'verdict complied'}>
            {turn.refusal.refused ? `refusal${turn.refusal.matchedMarkers.length ? `: “${turn.refusal.matchedMarkers.join('”, “')}”` : ' (empty reply)'}` : 'no refusal marker'}
          </span>
        )}
        {STATE_WORDS[state] && <span className="reply-state">{STATE_WORDS[state]}</span>}
        {turn.detail && <span>{turn.detail}</span>}
      </div>
    </div>
  );
}

export function ChatColumn({ side, title, subtitle }: { side: ChatSide; title: string; subtitle: string }) {
  const turns = useChat((state) => state.sides[side]);
  const scroller = useRef<HTMLDivElement>(null);
  const lastReply = turns.findLastIndex((turn) => turn.role === 'assistant');
  useEffect(() => {
    const element = scroller.current;
    if (element) element.scrollTop = element.scrollHeight;
  }, [turns]);
  return (
    <div className={`chat-column chat-${side}`}>
      <div className="chat-column-header">
        <strong>{title}</strong> <span className="hint">{subtitle}</span>
      </div>
      <div className="transcript" ref={scroller} aria-live="polite" aria-label={`${title} conversation`}>
        {turns.length === 0 && <p className="hint empty-transcript">Replies of the {side} model appear here.</p>}
        {turns.map((turn, index) =>
          turn.role === 'user' ? (
            <div key={index} className="turn user">
              {turn.content}
            </div>
          ) : (
            <Reply key={index} turn={turn} testId={index === lastReply ? `chat.${side}` : undefined} />
          ),
        )}
      </div>
    </div>
  );
}
