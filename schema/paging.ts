/**
 * @module
 * Paging of the API's lists (gateways, services, events, webhook deliveries): the `limit` and
 * `cursor` query parameters, their bounds, and the headers the next page's cursor travels in. The
 * Worker validates with these and the CLI sizes its requests with them: one set of bounds.
 *
 * Bodies are unchanged by paging (`{project, gateways}` and so on), so the next page is announced in
 * headers: RFC 8288 `Link: <…>; rel="next"` (as GitHub does) and {@link NEXT_CURSOR_HEADER}. No such
 * header means the page is the last one. The cursor is opaque to clients.
 */
import * as v from "valibot";

/** The largest page a client may ask for. */
export const PAGE_LIMIT_MAX = 1000;
/** The page size the CLI asks for (and the default page of a request that has a cursor but no limit). */
export const PAGE_LIMIT_DEFAULT = 100;
/** Cursors the Worker issues are far shorter; this only bounds what a client can make it decode. */
export const CURSOR_MAX_LENGTH = 512;

/** The header holding the next page's cursor, beside `Link`; absent on the last page. */
export const NEXT_CURSOR_HEADER = "Gateplane-Next-Cursor";

export const PageLimit = v.pipe(
  v.string(),
  v.regex(/^\d{1,7}$/, `expected an integer from 1 to ${PAGE_LIMIT_MAX}`),
  v.transform(Number),
  v.minValue(1, `expected an integer from 1 to ${PAGE_LIMIT_MAX}`),
  v.maxValue(PAGE_LIMIT_MAX, `expected an integer from 1 to ${PAGE_LIMIT_MAX}`),
);

export const PageCursor = v.pipe(
  v.string(),
  v.minLength(1, "expected a cursor from a previous page's Link or Gateplane-Next-Cursor header"),
  v.maxLength(CURSOR_MAX_LENGTH, "not a cursor this list issued"),
  v.regex(/^[A-Za-z0-9_-]+$/, "not a cursor this list issued"),
);

/** The query of a paged list; both optional (each list says what their absence means). */
export const PageQuery = v.object({ limit: v.optional(PageLimit), cursor: v.optional(PageCursor) });
export type PageQuery = v.InferOutput<typeof PageQuery>;

/** The next page's cursor from a response's headers, or null on the last page. */
export function nextCursor(headers: Pick<Headers, "get">): string | null {
  const direct = headers.get(NEXT_CURSOR_HEADER);
  if (direct) return direct;
  const link = headers.get("link");
  if (!link) return null;
  for (const part of link.split(",")) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (!m || !/\brel="?next"?/.test(m[2]!)) continue;
    const cursor = new URL(m[1]!, "http://x").searchParams.get("cursor");
    if (cursor) return cursor;
  }
  return null;
}
