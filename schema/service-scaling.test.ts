import { describe, expect, it } from "vitest";
import { ValidationError } from "./issues.ts";
import { holdTimeoutSeconds, parseServiceConfiguration } from "./service.ts";

const PD = { type: "service", name: "llama", router: { type: "sglang", pd_disaggregation: true } };
const prefill = (over: Record<string, unknown> = {}) => ({
  name: "prefill",
  count: "1..4",
  scaling: { metric: "ttft", target: 0.5 },
  ...over,
});
const decode = (over: Record<string, unknown> = {}) => ({
  name: "decode",
  count: "1..8",
  scaling: { metric: "itl", target: 0.05 },
  ...over,
});

/** The issues a configuration is refused with, as `field: message`. */
function refused(input: Record<string, unknown>): string[] {
  try {
    parseServiceConfiguration(input);
  } catch (e) {
    if (e instanceof ValidationError) return e.message.split("\n");
    throw e;
  }
  throw new Error("accepted");
}

describe("replicas as replica groups (PD per-role scaling)", () => {
  it("parses dstack's groups: the range everyone reads is their sum, each group keeps its own", () => {
    const c = parseServiceConfiguration({
      ...PD,
      replicas: [prefill(), decode({ scaling: { metric: "queue", target: 4 } })],
    });
    expect(c.scaling).toBeNull();
    expect(c.replicas).toMatchObject({ min: 2, max: 12 });
    expect(c.replicas.groups).toEqual([
      {
        name: "prefill",
        count: { min: 1, max: 4 },
        scaling: {
          metric: "ttft",
          target: 0.5,
          window: 60,
          scale_up_delay: 300,
          scale_down_delay: 600,
          hold_timeout: 60,
        },
      },
      {
        name: "decode",
        count: { min: 1, max: 8 },
        scaling: {
          metric: "queue",
          target: 4,
          window: 60,
          scale_up_delay: 300,
          scale_down_delay: 600,
          hold_timeout: 60,
        },
      },
    ]);
    expect(holdTimeoutSeconds(c)).toBeNull();
  });

  it("a count or a range parses as before (no groups key)", () => {
    expect(parseServiceConfiguration({ ...PD, replicas: 2 }).replicas).toEqual({ min: 2, max: 2 });
    const c = parseServiceConfiguration({ ...PD, replicas: "0..3", scaling: { metric: "rps", target: 1 } });
    expect(c.replicas).toEqual({ min: 0, max: 3 });
    expect(holdTimeoutSeconds(c)).toBe(60);
  });

  it("scales to zero with both roles; the longest hold of the two applies", () => {
    const c = parseServiceConfiguration({
      ...PD,
      replicas: [
        prefill({ count: "0..2", scaling: { metric: "ttft", target: 1, hold_timeout: "2m" } }),
        decode({ count: "0..2" }),
      ],
    });
    expect(holdTimeoutSeconds(c)).toBe(120);
  });

  it("refuses groups on a service that does not disaggregate", () => {
    expect(refused({ ...PD, router: null, replicas: [prefill(), decode()] })).toEqual([
      "replicas: a list of replica groups applies to PD services only (router: {type: sglang, pd_disaggregation: true})",
    ]);
    expect(refused({ ...PD, router: { type: "sglang" }, replicas: [prefill(), decode()] })[0]).toMatch(/^replicas: /);
  });

  it("refuses a metric the role does not scale on, naming the group's field", () => {
    expect(
      refused({
        ...PD,
        replicas: [
          prefill({ scaling: { metric: "itl", target: 0.05 } }),
          decode({ scaling: { metric: "ttft", target: 1 } }),
        ],
      }),
    ).toEqual([
      "replicas[0].scaling.metric: expected one of ttft, queue, rps for the prefill role, got itl",
      "replicas[1].scaling.metric: expected one of itl, queue, rps for the decode role, got ttft",
    ]);
  });

  it("keeps the target bounds of the metric", () => {
    expect(refused({ ...PD, replicas: [prefill({ scaling: { metric: "ttft", target: 31 } }), decode()] })).toEqual([
      "replicas[0].scaling.target: expected seconds (p90 time to first token) from 0.001 to 30 for metric ttft, got 31",
    ]);
  });

  it("wants one group per role, each once, and no top-level scaling", () => {
    expect(refused({ ...PD, replicas: [prefill()] })).toEqual([
      "replicas: expected a group for each role (prefill and decode), decode is missing",
    ]);
    expect(refused({ ...PD, replicas: [prefill(), prefill(), decode()] })).toEqual([
      "replicas[1].name: prefill is declared more than once",
    ]);
    expect(refused({ ...PD, replicas: [prefill(), { name: "router", count: 1 }] })).toEqual([
      'replicas[1].name: expected one of prefill, decode, got "router"',
    ]);
    expect(refused({ ...PD, replicas: [prefill(), decode()], scaling: { metric: "rps", target: 1 } })).toEqual([
      "scaling: set per replica group (replicas[].scaling) when replicas is a list",
    ]);
    expect(refused({ ...PD, replicas: [] })).toEqual(["replicas: expected at least one replica group"]);
  });

  it("applies dstack's range ⇔ scaling rule per group, and zero to both roles or neither", () => {
    expect(refused({ ...PD, replicas: [prefill({ scaling: null }), decode({ count: 2 })] })).toEqual([
      "replicas[0].scaling: required when count is a range (min..max)",
      "replicas[1].count: must be a range min..max when scaling is set",
    ]);
    expect(refused({ ...PD, replicas: [prefill({ count: "0..4" }), decode()] })).toEqual([
      "replicas[0].count: a role scales to zero only with the other: both counts start at 0, or neither",
    ]);
    expect(refused({ ...PD, replicas: [prefill({ count: "4.." }), decode()] })).toEqual([
      'replicas[0].count: the maximum number of replicas is required (e.g. 0..4), got "4.."',
    ]);
    expect(refused({ ...PD, replicas: [prefill({ commands: ["x"] }), decode()] })[0]).toMatch(
      /^replicas\[0\]\.commands: /,
    );
  });
});
