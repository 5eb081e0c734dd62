import { describe, expect, it } from 'vitest';
import { tableToCsv, tableToJson, type TableColumn } from '../../src/state/table-export';

type Row = { name: string; value: number | null };
const columns: TableColumn<Row>[] = [
  { header: 'name', value: (row) => row.name },
  { header: 'value', value: (row) => row.value },
];

describe('table export', () => {
  it('quotes CSV cells as RFC 4180 does and leaves missing or non-finite numbers empty', () => {
    const rows: Row[] = [
      { name: 'plain', value: 0.125 },
      { name: 'has "quotes", a comma', value: null },
      { name: 'two\nlines', value: Number.NaN },
    ];
    expect(tableToCsv(rows, columns)).toBe('name,value\r\nplain,0.125\r\n"has ""quotes"", a comma",\r\n"two\nlines",\r\n');
  });

  it('writes the same table as JSON objects keyed by header', () => {
    expect(JSON.parse(tableToJson([{ name: 'a', value: 1 }], columns))).toEqual([{ name: 'a', value: 1 }]);
  });
});
