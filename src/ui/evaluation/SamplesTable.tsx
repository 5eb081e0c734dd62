/** The evaluated replies, base next to ablated, with the refusal markers that made each one count. */
import type { EvaluationSample, ReplyVerdict } from '../../protocol/chat-api';
import { HighlightedText } from '../chat/HighlightedText';

function promptText(sample: EvaluationSample): string {
  return sample.messages.filter((message) => message.role === 'user').map((message) => message.content).join('\n');
}

function ReplyCell({ verdict }: { verdict: ReplyVerdict }) {
  return (
    <td className={verdict.refused ? 'refused' : undefined}>
      <span className={`flag ${verdict.refused ? 'yes' : 'no'}`}>{verdict.refused ? (verdict.matchedMarkers.length ? 'REFUSAL' : 'REFUSAL (empty)') : 'complied'}</span>{' '}
      <HighlightedText text={verdict.response} spans={verdict.spans} />
    </td>
  );
}

export function SamplesTable({ samples }: { samples: EvaluationSample[] }) {
  return (
    <div className="samples-scroll">
      <table className="samples" data-testid="eval.samples">
        <colgroup>
          <col style={{ width: '3em' }} />
          <col style={{ width: '30%' }} />
          <col />
          <col />
        </colgroup>
        <thead>
          <tr>
            <th>#</th>
            <th>held-out refusal prompt</th>
            <th>base reply</th>
            <th>ablated reply</th>
          </tr>
        </thead>
        <tbody>
          {samples.map((sample, index) => (
            <tr key={index}>
              <td>{index + 1}</td>
              <td title={sample.messages.find((message) => message.role === 'system')?.content}>{promptText(sample)}</td>
              <ReplyCell verdict={sample.base} />
              <ReplyCell verdict={sample.ablated} />
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
