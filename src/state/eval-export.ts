/** The evaluation's samples as a table (eval-samples.csv / .json): one row per refusal prompt, base and ablated side by side. */
import type { EvaluationSample } from '../protocol/chat-api';
import type { TableColumn } from './table-export';

const userText = (sample: EvaluationSample) => sample.messages.filter((message) => message.role === 'user').map((message) => message.content).join('\n');
const systemText = (sample: EvaluationSample) => sample.messages.filter((message) => message.role === 'system').map((message) => message.content).join('\n');

export const EVAL_SAMPLE_COLUMNS: TableColumn<EvaluationSample & { index: number }>[] = [
  { header: 'prompt_number', value: (row) => row.index + 1 },
  { header: 'system', value: systemText },
  { header: 'user', value: userText },
  { header: 'base_refused', value: (row) => row.base.refused },
  { header: 'base_markers', value: (row) => row.base.matchedMarkers.join('|') },
  { header: 'base_response', value: (row) => row.base.response },
  { header: 'ablated_refused', value: (row) => row.ablated.refused },
  { header: 'ablated_markers', value: (row) => row.ablated.matchedMarkers.join('|') },
  { header: 'ablated_response', value: (row) => row.ablated.response },
];
