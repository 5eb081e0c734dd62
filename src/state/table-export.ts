/**
 * Tables as files: CSV (RFC 4180 quoting) and JSON, and a browser download of any bytes. Used by the eval
 * samples, the layer sweep, the layer-choice table and the run card; other panels' tables (trials) reuse it.
 */

export type Cell = string | number | boolean | null | undefined;

export interface TableColumn<Row> {
  header: string;
  value: (row: Row) => Cell;
}

function csvCell(value: Cell): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A header line and one line per row, CRLF-terminated (RFC 4180); numbers in full precision. */
export function tableToCsv<Row>(rows: readonly Row[], columns: readonly TableColumn<Row>[]): string {
  const lines = [columns.map((column) => csvCell(column.header)).join(',')];
  for (const row of rows) lines.push(columns.map((column) => csvCell(column.value(row))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** The same table as a JSON array of objects keyed by the column headers. */
export function tableToJson<Row>(rows: readonly Row[], columns: readonly TableColumn<Row>[]): string {
  const objects = rows.map((row) => Object.fromEntries(columns.map((column) => [column.header, column.value(row) ?? null])));
  return `${JSON.stringify(objects, null, 2)}\n`;
}

export function downloadBytes(name: string, bytes: Uint8Array | string, type: string): void {
  const part: BlobPart = typeof bytes === 'string' ? bytes : (bytes as Uint8Array<ArrayBuffer>);
  const url = URL.createObjectURL(new Blob([part], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
