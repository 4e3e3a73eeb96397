/**
 * @module
 * The console's one way to build HTML: the `h` template tag escapes every interpolated value
 * (`& < > " '`) unless it is already `Html` built by `h` itself; arrays are joined, and `null`,
 * `undefined` and `false` render nothing. Synchronous and typed, unlike Hono's `html` (which may
 * return a promise). No user string reaches a page any other way.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export type Value = Html | string | number | boolean | null | undefined | readonly Value[];

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

function render(value: Value): string {
  if (value instanceof Html) return value.text;
  if (value === null || value === undefined || value === false) return "";
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

export function h(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Markup that is not user input (an SVG path built from numbers); never pass it a user string. */
export const trusted = (markup: string): Html => new Html(markup);
