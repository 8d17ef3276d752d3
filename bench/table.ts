/** A plain-text table: columns padded to their widest cell, each aligned as asked (default left). */

export type Cell = string | number;
export type Align = 'left' | 'right';

export function formatTable(header: readonly string[], rows: readonly (readonly Cell[])[], align: readonly Align[] = []): string {
  const text = [header, ...rows].map((row) => row.map((cell) => String(cell)));
  const widths = header.map((_, column) => Math.max(...text.map((row) => (row[column] ?? '').length)));
  const line = (row: readonly string[]) =>
    row
      .map((cell, column) => (align[column] === 'right' ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(text[0]!), rule, ...text.slice(1).map(line)].join('\n');
}
