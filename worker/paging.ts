/**
 * @module
 * Keyset paging for the list routes: the `limit`/`cursor` query (bounds in `schema/paging.ts`), the
 * opaque cursor (the sort key of the page's last item, tagged with the list it belongs to), and the
 * `Link`/`Gateplane-Next-Cursor` headers that announce the next page. Never OFFSET: a page starts
 * after a key, so items added or removed between pages neither repeat nor shift the rest.
 */
import type { Context } from "hono";
import * as v from "valibot";
import { parseOrThrow } from "../schema/issues.ts";
import { NEXT_CURSOR_HEADER, PAGE_LIMIT_DEFAULT, PageQuery } from "../schema/paging.ts";
import { badRequest } from "./errors.ts";

/** A page request: `limit` null when the caller gave neither limit nor cursor (each list says what that means). */
export interface PageRequest<K> {
  limit: number | null;
  after: K | null;
}

const toBase64Url = (text: string) =>
  btoa(String.fromCharCode(...new TextEncoder().encode(text)))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");

function fromBase64Url(cursor: string): string {
  const binary = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
    Uint8Array.from(binary, (ch) => ch.charCodeAt(0)),
  );
}

/** The cursor of a page that ended at `key` in `list`. */
export const encodeCursor = (list: string, key: readonly unknown[]): string =>
  toBase64Url(JSON.stringify([list, ...key]));

/** `key` of a cursor of `list`, or a 400 naming `cursor` (not base64url JSON, another list's, wrong shape). */
export function decodeCursor<S extends v.GenericSchema>(list: string, cursor: string, key: S): v.InferOutput<S> {
  const bad = () => badRequest("cursor: not a cursor this list issued; start again without cursor", "cursor");
  let parsed: unknown;
  try {
    parsed = JSON.parse(fromBase64Url(cursor));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed[0] !== list) throw bad();
  const result = v.safeParse(key, parsed.slice(1));
  if (!result.success) throw bad();
  return result.output;
}

/** The `limit` and decoded `cursor` of the request; bad values are 400s naming the field. */
export function pageRequest<S extends v.GenericSchema>(
  c: Context,
  list: string,
  key: S,
): PageRequest<v.InferOutput<S>> {
  const { limit, cursor } = parseOrThrow(PageQuery, { limit: c.req.query("limit"), cursor: c.req.query("cursor") });
  const after = cursor === undefined ? null : decodeCursor(list, cursor, key);
  return { limit: limit ?? (after === null ? null : PAGE_LIMIT_DEFAULT), after };
}

/**
 * Splits the `limit + 1` rows a query fetched into the page and, when there is more, sets the
 * headers naming the next page (the same URL with `cursor` and `limit` replaced).
 */
export function takePage<T>(c: Context, list: string, rows: T[], limit: number, keyOf: (row: T) => unknown[]): T[] {
  if (rows.length <= limit) return rows;
  const page = rows.slice(0, limit);
  const cursor = encodeCursor(list, keyOf(page[page.length - 1]!));
  const url = new URL(c.req.url);
  const base = (c.env as { PUBLIC_URL?: string }).PUBLIC_URL;
  const next = base ? new URL(url.pathname + url.search, base) : url;
  next.searchParams.set("limit", String(limit));
  next.searchParams.set("cursor", cursor);
  c.header("Link", `<${next.toString()}>; rel="next"`);
  c.header(NEXT_CURSOR_HEADER, cursor);
  return page;
}

/** Key element schemas for {@link decodeCursor}. */
export const cursorKeys = {
  id: v.tuple([v.pipe(v.number(), v.integer(), v.minValue(0))]),
  name: v.tuple([v.pipe(v.string(), v.maxLength(200))]),
  createdAndId: v.tuple([v.pipe(v.string(), v.maxLength(64)), v.pipe(v.string(), v.maxLength(64))]),
} as const;
