/**
 * @module
 * Free text the API accepts and later shows: names, regions, domains, descriptions, URLs, ids.
 * None of it may carry control characters: C0 (NUL, ESC, tabs, line breaks), DEL and C1 (including
 * the 8-bit CSI). An ESC sequence in a region repaints the terminal of whoever lists gateways; a line
 * break forges lines in tables and logs; NUL truncates in C-backed tools. Multi-line secrets (PEM
 * keys and certificates) do not use this piece.
 */
import * as v from "valibot";
import { expected } from "./issues.ts";

/** The first control character of `s` (C0, DEL or C1), or null. */
export function controlCharacter(s: string): number | null {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return c;
  }
  return null;
}

const hex = (c: number) => `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;

/** A pipe item for any string schema: refuses control characters, naming the first one. */
export const noControlCharacters = () =>
  v.check(
    (s: string) => controlCharacter(s) === null,
    (issue) =>
      `must not contain control characters (escape sequences, NUL, tabs or line breaks); found ${hex(controlCharacter(issue.input as string)!)}`,
  );

/** A single-line string: `v.string` plus {@link noControlCharacters}. */
export const text = (message: v.ErrorMessage<v.StringIssue> = expected("a string")) =>
  v.pipe(v.string(message), noControlCharacters());
