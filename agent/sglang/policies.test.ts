import { describe, expect, it } from "vitest";
import type { ConfigDocument } from "../../schema/config-document.ts";
import type { RouterPolicy } from "../../schema/router.ts";
import { configDocument, memoryLog } from "../../test/support/agent-fixtures.ts";
import { parsePolicyChoices, type RouterInstallation } from "./detect.ts";
import { SglangRouters } from "./routers.ts";
import type { ServiceRouterTiming } from "./service-router.ts";

// Which policies go to the external router: Gateplane's own never, the others when the installed
// router lists them. No router process starts in these tests (every policy here is refused), so
// the launch command is never run.

const TIMING = {} as ServiceRouterTiming;

function doc(policy: RouterPolicy): ConfigDocument {
  const base = configDocument(1, "http://127.0.0.1:1");
  base.services[0]!.router = { type: "sglang", policy };
  return base;
}

function routers(policies: string[] | null) {
  let detections = 0;
  const applied: ConfigDocument[] = [];
  const r = new SglangRouters({
    detect: async (): Promise<RouterInstallation> => {
      detections++;
      return { installed: true, command: ["/nonexistent/router"], source: "test" };
    },
    help: async () => ({ policies, flags: new Set<string>() }),
    ports: { from: 1, to: 2 },
    timing: TIMING,
    log: memoryLog(),
    applyToProxy: async (d) => {
      applied.push(d);
    },
  });
  return { r, applied, detections: () => detections };
}

describe("policies and the external router", () => {
  it("keeps prefix_load built-in, says why, and does not even look for the router", async () => {
    const h = routers(null);
    await h.r.apply(doc("prefix_load"));
    expect(h.r.reports()).toEqual([
      {
        service: "llama",
        mode: "built-in",
        reason: "policy prefix_load is Gateplane's own: built-in only, the sglang router does not have it",
      },
    ]);
    expect(h.r.router("llama")).toBeNull();
    expect(h.detections()).toBe(0);
    // The proxy keeps the replicas (its own balancer runs prefix_load).
    expect(h.applied.at(-1)!.services[0]!.replicas[0]!.url).toBe("http://127.0.0.1:1");
    await h.r.stop();
  });

  it("keeps least_load built-in when the installed router's --policy choices lack it", async () => {
    const h = routers(["random", "round_robin", "cache_aware", "power_of_two"]);
    await h.r.apply(doc("least_load"));
    expect(h.r.reports()).toEqual([
      {
        service: "llama",
        mode: "built-in",
        reason:
          "the installed sglang router has no policy least_load (its --policy choices: random, round_robin, cache_aware, power_of_two)",
      },
    ]);
    expect(h.r.router("llama")).toBeNull();
    await h.r.stop();
  });

  it("keeps least_load built-in when the router's help names no choices", async () => {
    const h = routers(null);
    await h.r.apply(doc("least_load"));
    expect(h.r.reports()[0]!.reason).toBe(
      "cannot tell whether the installed sglang router has policy least_load (its --help lists no --policy choices)",
    );
    await h.r.stop();
  });
});

describe("parsePolicyChoices", () => {
  it("reads argparse's and clap's --policy choices", () => {
    expect(
      parsePolicyChoices(
        "usage: launch_router.py [-h]\n  --policy {random,round_robin,cache_aware,power_of_two}\n                        Load balancing policy",
      ),
    ).toEqual(["random", "round_robin", "cache_aware", "power_of_two"]);
    expect(
      parsePolicyChoices(
        "      --policy <POLICY>\n          Load balancing policy [default: cache_aware] [possible values: random, round_robin, cache_aware, power_of_two, least_load, manual]\n      --port <PORT>",
      ),
    ).toEqual(["random", "round_robin", "cache_aware", "power_of_two", "least_load", "manual"]);
    expect(parsePolicyChoices("usage: router [--port PORT]")).toBeNull();
    expect(parsePolicyChoices("  --policy POLICY   the policy")).toBeNull();
  });
});
