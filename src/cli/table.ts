/** Prints rows as aligned columns under a header, for a person; `--json` output is for scripts. */
export function printTable<T>(rows: T[], cells: (row: T) => string[], header: string[]): void {
  const table = [header, ...rows.map(cells)];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table)
    console.log(
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    );
}
