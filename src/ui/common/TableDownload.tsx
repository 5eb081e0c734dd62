/**
 * "CSV · JSON" download links for a table. Generic over the row type: give it the rows, the columns and a file
 * stem ("sweep" → sweep.csv, sweep.json); `testId` prefixes the two links' test ids (`${testId}-csv`, `-json`).
 */
import { downloadBytes, tableToCsv, tableToJson, type TableColumn } from '../../state/table-export';

export interface TableDownloadProps<Row> {
  rows: readonly Row[];
  columns: readonly TableColumn<Row>[];
  stem: string;
  testId: string;
  /** The JSON download's content when it should be richer than the table (e.g. a whole result object). */
  json?: () => string;
}

export function TableDownload<Row>({ rows, columns, stem, testId, json }: TableDownloadProps<Row>) {
  return (
    <span className="table-download hint">
      download{' '}
      <button type="button" className="link-button" data-testid={`${testId}-csv`} disabled={rows.length === 0} onClick={() => downloadBytes(`${stem}.csv`, tableToCsv(rows, columns), 'text/csv')}>
        {stem}.csv
      </button>{' '}
      ·{' '}
      <button type="button" className="link-button" data-testid={`${testId}-json`} disabled={rows.length === 0} onClick={() => downloadBytes(`${stem}.json`, json ? json() : tableToJson(rows, columns), 'application/json')}>
        {stem}.json
      </button>
    </span>
  );
}
