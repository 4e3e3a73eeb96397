/**
 * @module
 * Borderless, left-aligned text tables: columns separated by two spaces, trailing blanks trimmed so
 * that piped output diffs cleanly. Cells are escaped here (they hold the server's strings), before
 * widths are measured and styles added.
 */
import { escapeTerminal } from "./escape.ts";
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
  const all = (header ? [header, ...rows.map((r) => r.cells)] : rows.map((r) => r.cells)).map((cells) =>
    cells.map(escapeTerminal),
  );
  const [head, ...body] = header ? all : [null, ...all];
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
  if (head) lines.push(style.bold(line(head)));
  rows.forEach((row, i) => {
    const cells = body[i]!;
    lines.push(row.secondary ? style.dim(line(cells)) : line(cells));
  });
  return lines;
}

/** A key/value block with bold keys and no header, like the plan summary. */
export function renderKeyValues(pairs: readonly (readonly [string, string])[], style: Style): string[] {
  const escaped = pairs.map(([key, value]) => [escapeTerminal(key), escapeTerminal(value)] as const);
  const width = Math.max(0, ...escaped.map(([key]) => displayWidth(key)));
  return escaped.map(([key, value]) =>
    `${style.bold(key)}${" ".repeat(width - displayWidth(key))}${GAP}${value}`.trimEnd(),
  );
}
