/**
 * @module
 * Terminal capabilities: whether we may emit ANSI styles (a TTY, NO_COLOR unset, TERM not dumb) and
 * whether we may redraw lines in place (spinners, live tables).
 */
import type { Io } from "./io.ts";

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
}

export const plainStyle: Style = { bold: (t) => t, dim: (t) => t };
const ansiStyle: Style = { bold: (t) => `\x1b[1m${t}\x1b[22m`, dim: (t) => `\x1b[2m${t}\x1b[22m` };

/** Redrawing needs cursor movement; a pipe or a dumb terminal gets plain appended lines instead. */
export const isInteractive = (io: Pick<Io, "stdout" | "env">): boolean =>
  io.stdout.isTTY === true && io.env.TERM !== "dumb";

export function styleFor(io: Pick<Io, "stdout" | "env">): Style {
  // https://no-color.org: any non-empty NO_COLOR turns styling off.
  const noColor = (io.env.NO_COLOR ?? "") !== "";
  return isInteractive(io) && !noColor ? ansiStyle : plainStyle;
}
