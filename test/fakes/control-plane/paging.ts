/**
 * @module
 * Paging for the fake control plane, as `worker/paging.ts` does it: `limit`/`cursor` validated with
 * the shared schema, a page starting after the cursor's key, the next cursor in the `Link` and
 * `Gateplane-Next-Cursor` headers. The fake's lists are arrays already in the list's order.
 */
import { parseOrThrow, ValidationError } from "../../../schema/issues.ts";
import { NEXT_CURSOR_HEADER, PAGE_LIMIT_DEFAULT, PageQuery } from "../../../schema/paging.ts";

/** Bodies that are a page with more after it, and the cursor of the next one. */
const NEXT = new WeakMap<object, string>();

/**
 * The page of `items` the query asks for, the next cursor noted on `body(page)`. `whole`: the page
 * without `limit` and `cursor` (every item, or the newest 100 of the lists that already had a limit).
 */
export function paged<T, B extends object>(
  items: readonly T[],
  query: URLSearchParams,
  keyOf: (item: T) => string,
  whole: "all" | "default",
  body: (page: T[]) => B,
): B {
  const { limit, cursor } = parseOrThrow(PageQuery, {
    limit: query.get("limit") ?? undefined,
    cursor: query.get("cursor") ?? undefined,
  });
  let start = 0;
  if (cursor !== undefined) {
    const key = Buffer.from(cursor, "base64url").toString("utf8");
    const at = items.findIndex((item) => keyOf(item) === key);
    if (at < 0) throw new ValidationError([{ path: ["cursor"], message: "not a cursor this list issued" }]);
    start = at + 1;
  }
  const size = limit ?? (cursor === undefined && whole === "all" ? items.length : PAGE_LIMIT_DEFAULT);
  const page = items.slice(start, start + size);
  const last = page.length > 0 && start + size < items.length ? keyOf(page[page.length - 1]!) : null;
  const out = body(page);
  if (last !== null) NEXT.set(out, Buffer.from(last).toString("base64url"));
  return out;
}

/** The headers announcing the next page of `body`, if it is a page with more after it. */
export function pageHeaders(body: unknown, url: string): Record<string, string> {
  const cursor = typeof body === "object" && body !== null ? NEXT.get(body) : undefined;
  if (cursor === undefined) return {};
  const next = new URL(url, "http://127.0.0.1");
  next.searchParams.set("cursor", cursor);
  return { link: `<${next.pathname}${next.search}>; rel="next"`, [NEXT_CURSOR_HEADER.toLowerCase()]: cursor };
}
