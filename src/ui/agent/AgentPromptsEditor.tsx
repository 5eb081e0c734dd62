/**
 * The agent-prompted requests (`prompts.agent`): shell requests inside a terminal-agent system prompt, whose
 * replies the evaluation scores as actions (a JSON object with a command at one of the action keys) and as
 * refusals, base vs ablated. Empty = no agent evaluation. Named export, no props.
 */
import { useEffect, useMemo } from 'react';
import { parsePromptSet } from '../../state/prompt-sets';
import { PromptProblems } from '../prompts/PromptRows';
import { importAgentPromptFile, loadDefaultAgentPrompts, setActionKeys, setAgentPrompts, useAgentPrompts } from '../../state/agent-prompts';
import { HiddenFileInput } from '../common/HiddenFileInput';

export function AgentPromptsEditor() {
  const set = useAgentPrompts((state) => state.set);
  const actionKeys = useAgentPrompts((state) => state.actionKeys);
  useEffect(() => void loadDefaultAgentPrompts(), []);
  const parsed = useMemo(() => parsePromptSet(set, 'agent prompts'), [set]);
  const count = parsed.rows.length;
  return (
    <>
      <h3 className="subheading">Agent prompts (action rate in the evaluation)</h3>
      <div className="prompt-set">
        <div className="prompt-set-header">
          <label htmlFor="prompt-agent" className="prompt-title">
            agent-prompted requests
          </label>
          <span className="hint" title="held out from the capture: evaluated only">
            {count} prompt{count === 1 ? '' : 's'}
          </span>
          <label className="link-button" title="Import a .txt (one prompt per line) or .jsonl file">
            import…
            <HiddenFileInput accept=".txt,.jsonl" testId="prompts.agent-file" onFile={(file) => void importAgentPromptFile(file)} />
          </label>
          <label className="hint" title="A reply is an action when its first JSON object holds a non-empty string at one of these keys">
            action keys{' '}
            <input type="text" size={14} data-testid="prompts.action-keys" value={actionKeys} onChange={(event) => setActionKeys(event.target.value)} />
          </label>
        </div>
        <input
          type="text"
          className="system-input"
          placeholder="system prompt (optional, shared by every plain line)"
          aria-label="agent prompts system prompt"
          data-testid="prompts.agent-system"
          value={set.system}
          onChange={(event) => setAgentPrompts({ system: event.target.value, source: 'edited' })}
        />
        <textarea
          id="prompt-agent"
          data-testid="prompts.agent"
          rows={4}
          spellCheck={false}
          value={set.text}
          placeholder="one prompt per line (or JSONL rows with their own system prompt); empty = no agent evaluation"
          onChange={(event) => setAgentPrompts({ text: event.target.value, source: 'edited' })}
        />
        <PromptProblems problems={parsed.problems} testId="prompts.agent" />
        {set.source && <span className="source hint">from {set.source}</span>}
      </div>
    </>
  );
}
