/**
 * Preflight before the capture: can the model read the prompts (unknown tokens, prompts too long), the chat
 * template as the model sees it with the captured token marked, and the base model's replies on a few A and
 * B prompts, with a warning when the contrast is not in its behaviour. Named export, no props.
 */
import { runPreflightCheck, usePreflight } from '../../state/preflight';
import { useWorkbench } from '../../state/store';
import type { PreflightResult } from '../../protocol/chat-api';

const percent = (rate: number) => `${(rate * 100).toFixed(rate === 0 || rate === 1 ? 0 : 1)}%`;

function TemplateView({ template }: { template: PreflightResult['template'] }) {
  const unknown = new Set(template.unknownIndices);
  return (
    <pre className="preflight-template" data-testid="preflight.template" style={{ whiteSpace: 'pre-wrap', fontSize: '0.8rem' }}>
      {template.tokens.map((piece, index) => (
        <span
          key={index}
          data-captured={index === template.capturedIndex ? 'true' : undefined}
          title={index === template.capturedIndex ? 'the captured token' : unknown.has(index) ? 'unknown token' : undefined}
          style={index === template.capturedIndex ? { background: '#fde68a', outline: '1px solid #d97706' } : unknown.has(index) ? { color: '#b91c1c', textDecoration: 'underline wavy' } : undefined}
        >
          {piece}
          {' '}
        </span>
      ))}
    </pre>
  );
}

export function PreflightPanel() {
  const preflight = usePreflight((state) => state);
  const modelReady = useWorkbench((state) => state.model.phase === 'ready');
  const result = preflight.result;
  return (
    <div className="preflight" data-testid="preflight.panel">
      <div>
        <strong>Preflight</strong>{' '}
        <button type="button" data-testid="preflight.run" disabled={!modelReady || preflight.phase === 'running'} onClick={() => void runPreflightCheck()}>
          {preflight.phase === 'running' ? 'Checking…' : 'Check prompts and behaviour'}
        </button>{' '}
        <span className="hint" data-testid="preflight.status" data-state={preflight.phase}>
          {preflight.phase === 'running' ? preflight.detail : preflight.phase === 'failed' ? preflight.detail : result ? (result.warnings.length ? `${result.warnings.length} warning${result.warnings.length === 1 ? '' : 's'}` : 'no problem found') : 'before capturing: does the model read A and B, and act the contrast out?'}
        </span>
      </div>
      {result && (
        <div data-testid="preflight.report">
          {result.warnings.map((warning) => (
            <p key={warning.kind} className="error-banner" role="alert" data-testid="preflight.warning" data-kind={warning.kind}>
              {warning.message}
            </p>
          ))}
          <p className="hint">
            unknown tokens {result.figures.unknownTokenRate === null ? 'n/a (the tokenizer has no unknown token)' : `${percent(result.figures.unknownTokenRate)} (${result.counts.unknownTokens} of ${result.counts.tokens}, ${result.unknownToken})`} · too long for the context{' '}
            {percent(result.figures.truncationRate)} · base refusal on A {percent(result.figures.refusalRateA)} ({result.counts.sampledA} sampled), on B {percent(result.figures.refusalRateB)} · actions on B {percent(result.figures.actionRateB)}
          </p>
          <TemplateView template={result.template} />
          <table className="samples">
            <tbody>
              {result.samples.map((sample, index) => (
                <tr key={index}>
                  <td>{sample.set}</td>
                  <td>{sample.messages[sample.messages.length - 1]?.content}</td>
                  <td>{sample.response}</td>
                  <td>{sample.refused ? 'refusal' : sample.action ? 'action' : 'answer'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
