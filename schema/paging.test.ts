import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { nextCursor, PAGE_LIMIT_MAX, PageQuery } from "./paging.ts";

describe("PageQuery", () => {
  it("takes an integer limit from 1 to the maximum and a base64url cursor", () => {
    expect(v.parse(PageQuery, { limit: "1", cursor: "abc_-9" })).toEqual({ limit: 1, cursor: "abc_-9" });
    expect(v.parse(PageQuery, { limit: String(PAGE_LIMIT_MAX) }).limit).toBe(PAGE_LIMIT_MAX);
    expect(v.parse(PageQuery, {})).toEqual({});
  });

  it.each(["0", "1001", "1e3", "2.5", "-1", "", " 5"])("refuses limit %j, naming the bounds", (limit) => {
    const result = v.safeParse(PageQuery, { limit });
    expect(result.success).toBe(false);
    expect(result.issues?.[0]?.message).toBe(`expected an integer from 1 to ${PAGE_LIMIT_MAX}`);
  });

  it.each(["", "a b", "a+b/c=", "x".repeat(513)])("refuses cursor %j", (cursor) => {
    expect(v.safeParse(PageQuery, { cursor }).success).toBe(false);
  });
});

describe("nextCursor", () => {
  it("reads the Gateplane-Next-Cursor header, else the cursor of Link's rel=next, else null", () => {
    expect(nextCursor(new Headers({ "gateplane-next-cursor": "abc" }))).toBe("abc");
    const link =
      '<https://cp.example/api/v1/projects/p/x?limit=5>; rel="prev", <https://cp.example/api/v1/projects/p/x?limit=5&cursor=xyz>; rel="next"';
    expect(nextCursor(new Headers({ link }))).toBe("xyz");
    expect(nextCursor(new Headers({ link: '</x?cursor=q>; rel="prev"' }))).toBeNull();
    expect(nextCursor(new Headers())).toBeNull();
  });
});
