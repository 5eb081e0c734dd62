/**
 * The rows every bench section produces, and the text / Markdown table they print as. A row that could not be
 * measured says why in `value` ("not available: …") and has `met: null`; nothing is ever filled in by hand.
 */

export interface BenchRow {
  section: 'ablate' | 'ablate --large' | 'browser export' | 'kernels' | 'capture' | 'search';
  measure: string;
  /** The figure as printed (units included), or "not available: <reason>". */
  value: string;
  /** The number behind `value` (null when not measured), for results.json. */
  number: number | null;
  unit: string;
  /** How many runs the median was taken over (0 when not measured). */
  runs: number;
  /** e.g. "≥ 0.5× cat"; empty when the row has no target. */
  target: string;
  /** true / false when a target applies and was measured; null otherwise. */
  met: boolean | null;
  /** Extra context: the spread of the runs, the conditions. */
  note?: string;
}

export function measuredRow(
  section: BenchRow['section'],
  measure: string,
  number: number,
  unit: string,
  runs: number,
  digits: number,
  target?: { text: string; met: boolean },
  note?: string,
): BenchRow {
  return {
    section,
    measure,
    value: `${number.toFixed(digits)}${unit ? ` ${unit}` : ''}`,
    number,
    unit,
    runs,
    target: target?.text ?? '',
    met: target ? target.met : null,
    ...(note ? { note } : {}),
  };
}

export function unavailableRow(section: BenchRow['section'], measure: string, reason: string, target = ''): BenchRow {
  return { section, measure, value: `not available: ${reason}`, number: null, unit: '', runs: 0, target, met: null };
}

function metText(row: BenchRow): string {
  if (row.met === null) return row.target ? 'n/a' : '';
  return row.met ? 'yes' : 'NO';
}

const HEADERS = ['section', 'measure', 'value', 'runs', 'target', 'met'];

function cells(row: BenchRow): string[] {
  return [row.section, row.measure, row.value, row.runs ? String(row.runs) : '-', row.target, metText(row)];
}

/** Fixed-width text for the terminal. */
export function formatTextTable(rows: readonly BenchRow[]): string {
  const table = [HEADERS, ...rows.map(cells)];
  const widths = HEADERS.map((_, column) => Math.max(...table.map((line) => line[column].length)));
  const render = (line: string[]) => line.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd();
  return [render(HEADERS), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map((row) => render(cells(row)))].join('\n');
}

/** GitHub Markdown, for the README's Performance section. */
export function formatMarkdownTable(rows: readonly BenchRow[]): string {
  const escape = (cell: string) => cell.replace(/\|/g, '\\|');
  return [
    `| ${HEADERS.join(' | ')} |`,
    `|${HEADERS.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${cells(row).map(escape).join(' | ')} |`),
  ].join('\n');
}
