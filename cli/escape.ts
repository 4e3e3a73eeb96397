/**
 * @module
 * Everything the CLI prints from the server (names, regions, messages, URLs) goes through here, so a
 * string with ANSI escapes, NUL or newlines cannot recolour, rewrite or fake lines of the user's
 * terminal. C0 controls, DEL and C1 controls are shown as visible escapes (`\x1b`, `\n`, `\x9b`).
 * Applied once, by the printing layer (`text-table.ts`, `context.ts`, `prompt.ts`, `run.ts`), not
 * at call sites.
 */

const NAMED: Record<string, string> = { "\0": "\\0", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;

const visible = (c: string): string => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;

/** One cell or value: every control character, newline included, becomes a visible escape. */
export function escapeTerminal(text: string): string {
  return text.replace(CONTROL, visible);
}

/**
 * The bold and dim sequences of `style.ts`: the only escapes the CLI writes around text itself.
 * Server strings reach the print layer already escaped inside tables, so these can only be ours.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching our own SGR sequences.
const OWN_STYLE_OR_CONTROL = /\x1b\[(?:1|2|22)m|[\x00-\x1f\x7f-\x9f]/g;

/**
 * A line about to be written: like {@link escapeTerminal}, but keeps the bold/dim sequences the
 * CLI's own styling added (tables' headers, replica rows).
 */
export function escapeLine(line: string): string {
  return line.replace(OWN_STYLE_OR_CONTROL, (m) => (m.length > 1 ? m : visible(m)));
}

/** Several lines joined by newlines: each line escaped, the separators kept. */
export function escapeLines(text: string): string {
  return text.split("\n").map(escapeLine).join("\n");
}

/**
 * `--json`: JSON.stringify escapes C0 but leaves DEL and C1 (U+0080–U+009F, e.g. the one-character
 * CSI U+009B) raw; `\u00XX` keeps the document valid JSON with the same value.
 */
export function toJsonText(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\x7f-\x9f]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}
