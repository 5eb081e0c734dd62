/** The evaluated replies, base next to ablated, with the refusal markers that made each one count. */
import { useState } from 'react';
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

const FILTERS = {
  all: { label: 'all', keep: () => true },
  flipped: { label: 'flipped (base refused, ablated did not)', keep: (sample: EvaluationSample) => sample.base.refused && !sample.ablated.refused },
  still: { label: 'ablated still refuses', keep: (sample: EvaluationSample) => sample.ablated.refused },
  baseComplied: { label: 'base did not refuse', keep: (sample: EvaluationSample) => !sample.base.refused },
} as const;

export function SamplesTable({ samples }: { samples: EvaluationSample[] }) {
  const [filter, setFilter] = useState<keyof typeof FILTERS>('all');
  const rows = samples.map((sample, index) => ({ sample, index })).filter(({ sample }) => FILTERS[filter].keep(sample));
  return (
    <>
      <div className="samples-filter hint">
        show{' '}
        <select value={filter} data-testid="eval.samples-filter" onChange={(event) => setFilter(event.target.value as keyof typeof FILTERS)}>
          {Object.entries(FILTERS).map(([key, entry]) => (
            <option key={key} value={key}>
              {entry.label} ({samples.filter(entry.keep).length})
            </option>
          ))}
        </select>
      </div>
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
          {rows.map(({ sample, index }) => (
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
    </>
  );
}
