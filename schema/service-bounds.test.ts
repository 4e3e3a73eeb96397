import { describe, expect, it } from "vitest";
import { ValidationError } from "./issues.ts";
import { MAX_BURST, MAX_CLIENT_MAX_BODY_SIZE } from "./limits.ts";
import { parseServiceConfiguration } from "./service.ts";

const SERVICE = { type: "service", name: "echo" };

function fieldOf(input: Record<string, unknown>): string | undefined {
  try {
    parseServiceConfiguration({ ...SERVICE, ...input });
  } catch (e) {
    if (e instanceof ValidationError) return e.field;
    throw e;
  }
  return undefined;
}

describe("service bounds (issue 11 item 2)", () => {
  it.each([
    [1e20],
    ["10000000000GB"],
    [JSON.parse("9007199254740993")],
    ["9".repeat(400)],
    [Number.POSITIVE_INFINITY],
    [MAX_CLIENT_MAX_BODY_SIZE + 1],
    ["1025GB"],
  ])("refuses client_max_body_size %s, naming the field", (value) => {
    expect(fieldOf({ client_max_body_size: value })).toBe("client_max_body_size");
  });

  it("accepts client_max_body_size up to the documented limit", () => {
    expect(parseServiceConfiguration({ ...SERVICE, client_max_body_size: "1024GB" }).client_max_body_size).toBe(
      MAX_CLIENT_MAX_BODY_SIZE,
    );
    expect(parseServiceConfiguration({ ...SERVICE, client_max_body_size: 0 }).client_max_body_size).toBe(0);
  });

  it.each([[1e16], [MAX_BURST + 1], [Number.POSITIVE_INFINITY]])("refuses rate_limits[].burst %s", (burst) => {
    expect(fieldOf({ rate_limits: [{ rps: 1, burst }] })).toBe("rate_limits[0].burst");
  });

  it.each([[1e16], [Number.POSITIVE_INFINITY], [Number.NaN]])("refuses rate_limits[].rps %s", (rps) => {
    expect(fieldOf({ rate_limits: [{ rps }] })).toBe("rate_limits[0].rps");
  });

  it.each([["9".repeat(400)], [1e300], [Number.POSITIVE_INFINITY]])("refuses read_timeout %s", (value) => {
    expect(fieldOf({ read_timeout: value })).toBe("read_timeout");
  });

  it.each([[1e300], [Number.POSITIVE_INFINITY]])("refuses scaling.target %s", (target) => {
    expect(fieldOf({ replicas: "0..2", scaling: { metric: "rps", target } })).toBe("scaling.target");
  });

  it.each([[Number.POSITIVE_INFINITY], [1e300]])("refuses router.balance_rel_threshold %s", (value) => {
    expect(fieldOf({ router: { type: "sglang", balance_rel_threshold: value } })).toBe("router.balance_rel_threshold");
  });
});
