import { describe, expect, it } from "vitest";
import { ValidationError } from "./issues.ts";
import { MAX_BURST, MAX_CLIENT_MAX_BODY_SIZE, SCALING_TARGET_LIMITS } from "./limits.ts";
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

  describe("scaling.target per metric (SCALING_TARGET_LIMITS)", () => {
    const scaling = (metric: string, target: unknown) =>
      parseServiceConfiguration({ ...SERVICE, replicas: "0..2", scaling: { metric, target } }).scaling;
    const message = (metric: string, target: unknown) => {
      try {
        scaling(metric, target);
      } catch (e) {
        if (e instanceof ValidationError) return `${e.field}: ${e.issues[0]!.message}`;
        throw e;
      }
      return undefined;
    };

    it.each(Object.entries(SCALING_TARGET_LIMITS))("%s accepts its bounds and refuses past them", (metric, b) => {
      expect(scaling(metric, b.max)).toMatchObject({ metric, target: b.max });
      expect(fieldOf({ replicas: "0..2", scaling: { metric, target: b.max * 1.01 } })).toBe("scaling.target");
      expect(fieldOf({ replicas: "0..2", scaling: { metric, target: 0 } })).toBe("scaling.target");
      if (b.min > 0) {
        expect(scaling(metric, b.min)).toMatchObject({ target: b.min });
        expect(fieldOf({ replicas: "0..2", scaling: { metric, target: b.min / 2 } })).toBe("scaling.target");
      }
    });

    it("says what the target counts for the metric", () => {
      expect(message("ttft", 45)).toBe(
        "scaling.target: expected seconds (p90 time to first token) from 0.001 to 30 for metric ttft, got 45",
      );
      expect(message("itl", 0.0001)).toBe(
        "scaling.target: expected seconds (p90 inter-token latency) from 0.001 to 1 for metric itl, got 0.0001",
      );
      expect(message("queue", 20_000)).toBe(
        "scaling.target: expected waiting requests per replica above 0 to 10000 for metric queue, got 20000",
      );
      // rps keeps dstack's bounds and messages.
      expect(message("rps", 0)).toBe("scaling.target: must be greater than 0");
      expect(message("cpu", 1)).toMatch(/^scaling\.metric: expected one of rps, ttft, itl, queue/);
    });

    it("keeps window, delays and hold_timeout for the new metrics", () => {
      expect(
        parseServiceConfiguration({
          ...SERVICE,
          replicas: "0..4",
          scaling: { metric: "itl", target: 0.05, window: "30s", scale_up_delay: "1m", scale_down_delay: 0 },
        }).scaling,
      ).toEqual({
        metric: "itl",
        target: 0.05,
        window: 30,
        scale_up_delay: 60,
        scale_down_delay: 0,
        hold_timeout: 60,
      });
    });
  });

  it.each([[Number.POSITIVE_INFINITY], [1e300]])("refuses router.balance_rel_threshold %s", (value) => {
    expect(fieldOf({ router: { type: "sglang", balance_rel_threshold: value } })).toBe("router.balance_rel_threshold");
  });
});
