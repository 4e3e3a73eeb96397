/**
 * @module
 * Borderless, left-aligned text tables: columns separated by two spaces, trailing blanks trimmed so
 * that piped output diffs cleanly.
 */
import type { Style } from "./style.ts";

export interface TableRow {
  cells: string[];
  /** Sub-rows (a gateway's replicas) are dimmed on terminals that allow it. */
  secondary?: boolean;
}

const GAP = "  ";

/** Width in terminal columns; code points, so `✓` counts as one. */
export const displayWidth = (text: string): number => [...text].length;

export function renderTable(header: readonly string[] | null, rows: readonly TableRow[], style: Style): string[] {
  const all = header ? [header, ...rows.map((r) => r.cells)] : rows.map((r) => r.cells);
  const columns = Math.max(0, ...all.map((cells) => cells.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(0, ...all.map((c) => displayWidth(c[i] ?? ""))));
  const line = (cells: readonly string[]) =>
    widths
      .map((width, i) => {
        const cell = cells[i] ?? "";
        return cell + " ".repeat(width - displayWidth(cell));
      })
      .join(GAP)
      .trimEnd();
  const lines: string[] = [];
  if (header) lines.push(style.bold(line(header)));
  for (const row of rows) lines.push(row.secondary ? style.dim(line(row.cells)) : line(row.cells));
  return lines;
}

/** A key/value block with bold keys and no header, like the plan summary. */
export function renderKeyValues(pairs: readonly (readonly [string, string])[], style: Style): string[] {
  const width = Math.max(0, ...pairs.map(([key]) => displayWidth(key)));
  return pairs.map(([key, value]) =>
    `${style.bold(key)}${" ".repeat(width - displayWidth(key))}${GAP}${value}`.trimEnd(),
  );
}
