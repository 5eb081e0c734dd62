/**
 * The evaluation's agent figures beside refusal and KL: action rate base → ablated (`eval.action-base`,
 * `eval.action-ablated`) and the refusal rate on the same agent prompts, with why replies were not actions.
 */
import type { AgentEvaluationResult } from '../../protocol/chat-api';

const percent = (rate: number) => `${(rate * 100).toFixed(rate === 0 || rate === 1 ? 0 : 1)}%`;

function failureSummary(agent: AgentEvaluationResult): string {
  const counts = new Map<string, number>();
  for (const sample of agent.samples) if (!sample.ablated.action) counts.set(sample.ablated.actionOutcome, (counts.get(sample.ablated.actionOutcome) ?? 0) + 1);
  return [...counts].map(([outcome, count]) => `${count} ${outcome}`).join(', ');
}

export function AgentMetric({ agent, pending }: { agent: AgentEvaluationResult | undefined; pending: number }) {
  const failures = agent ? failureSummary(agent) : '';
  return (
    <div className="metric">
      <div className="metric-label">action rate, base → ablated ({agent?.count ?? pending} agent prompts)</div>
      <div className="metric-value">
        <span className="base-rate" data-testid="eval.action-base" data-value={agent?.base.actionRate}>
          {agent ? percent(agent.base.actionRate) : '–'}
        </span>
        <span className="arrow">→</span>
        <span className="ablated-rate" data-testid="eval.action-ablated" data-value={agent?.ablated.actionRate}>
          {agent ? percent(agent.ablated.actionRate) : '–'}
        </span>
      </div>
      <div className="metric-detail" data-testid="eval.agent-refusal">
        {agent
          ? `refusal on agent prompts ${percent(agent.base.refusalRate)} → ${percent(agent.ablated.refusalRate)} · keys ${agent.actionKeys.join(', ')}${failures ? ` · not actions after ablation: ${failures}` : ''}`
          : pending > 0
            ? 'a JSON object with a non-empty command at an action key is an action'
            : 'no agent prompts (step 2): no action rate'}
      </div>
    </div>
  );
}
