/** Decoding settings shared by both columns: greedy, or temperature / top-p / seed; reply length. */
import { updateChat } from '../../state/chat-actions';
import { chatStore, useChat } from '../../state/chat-store';
import type { ChatSettings } from '../../protocol/chat-api';

function setSetting<K extends keyof ChatSettings>(key: K, value: ChatSettings[K]): void {
  updateChat({ settings: { ...chatStore.getState().settings, [key]: value } });
}

function NumberField({ label, value, min, max, step, testId, disabled, title, onValue }: { label: string; value: number; min: number; max?: number; step: number; testId: string; disabled?: boolean; title?: string; onValue: (value: number) => void }) {
  return (
    <label title={title} className={disabled ? 'disabled-field' : undefined}>
      {label}{' '}
      <input
        type="number"
        className="small-number"
        data-testid={testId}
        value={value}
        min={min}
        max={max}
        step={step}
        disabled={disabled}
        onChange={(event) => {
          const next = event.target.valueAsNumber;
          if (Number.isFinite(next) && next >= min && (max === undefined || next <= max)) onValue(next);
        }}
      />
    </label>
  );
}

export function ChatSettingsBar() {
  const decoding = useChat((state) => state.decoding);
  const settings = useChat((state) => state.settings);
  const sampling = decoding === 'sample';
  return (
    <div className="chat-settings">
      <label>
        decoding{' '}
        <select data-testid="chat.decoding" value={decoding} onChange={(event) => updateChat({ decoding: event.target.value as 'greedy' | 'sample' })}>
          <option value="greedy">greedy</option>
          <option value="sample">sample</option>
        </select>
      </label>
      <NumberField label="temperature" testId="chat.temperature" value={settings.temperature} min={0} step={0.1} disabled={!sampling} onValue={(value) => setSetting('temperature', value)} />
      <NumberField label="top-p" testId="chat.top-p" value={settings.topP} min={0.01} max={1} step={0.05} disabled={!sampling} onValue={(value) => setSetting('topP', value)} />
      <NumberField label="seed" testId="chat.seed" value={settings.seed} min={0} step={1} disabled={!sampling} title="same seed, same prompt, same model → same reply" onValue={(value) => setSetting('seed', Math.round(value))} />
      <NumberField label="max tokens" testId="chat.max-tokens" value={settings.maxNewTokens} min={1} max={4096} step={16} onValue={(value) => setSetting('maxNewTokens', Math.round(value))} />
      <NumberField
        label="min tokens"
        testId="chat.min-tokens"
        value={settings.minNewTokens}
        min={0}
        max={4096}
        step={16}
        title="Suppress end-of-turn until this many tokens: see what each model would go on to say (0 = off)"
        onValue={(value) => setSetting('minNewTokens', Math.round(value))}
      />
    </div>
  );
}
