import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { configDocument, memoryLog, type Replica, startReplica } from "../../test/support/agent-fixtures.ts";
import { routerPorts } from "../../test/support/ports.ts";
import { until } from "../../test/support/until.ts";
import { parseRouterHelp, routerHelp } from "./detect.ts";
import { tunableFlags } from "./router-process.ts";
import { SglangRouters } from "./routers.ts";
import type { ServiceRouterTiming } from "./service-router.ts";

// The policy an external router gets, through the real launcher path: the agent reads the installed
// router's `--help` (the fake prints argparse's help of SMG's launch_router, or of the last PyPI
// sglang-router with `--fake-version 0.3.2`), passes least_load and SMG's `--least-load-*` tunables
// when the help lists them, and keeps the service built-in, saying why, when it does not.

const FAKE = path.resolve(import.meta.dirname, "../../test/fakes/sglang-router.mjs");
const fakeCommand = (...args: string[]) => [process.execPath, FAKE, ...args];
const TIMING: ServiceRouterTiming = {
  startupTimeoutMs: 30_000,
  probeIntervalMs: 20,
  syncIntervalMs: 50,
  pendingAddTimeoutMs: 10_000,
  unresponsiveAfter: 3,
  backoff: { initialMs: 50, maxMs: 200 },
  stableAfterMs: 60_000,
  stopGraceMs: 3_000,
  requestTimeoutMs: 3_000,
  addTimeoutMs: 10_000,
};
const TUNED = {
  least_load_kv_pressure_weight: 0.3,
  least_load_default_throughput: 1500,
  least_load_mean_prefill_tokens: 512,
};

let replica: Replica;
let routers: SglangRouters | null;

beforeEach(async () => {
  replica = await startReplica("one");
  routers = null;
});

afterEach(async () => {
  await routers?.stop();
  await replica.close();
});

function leastLoad(): ConfigDocument {
  const doc = configDocument(1, replica.url);
  doc.services[0]!.router = { type: "sglang", policy: "least_load", ...TUNED };
  return doc;
}

function start(command: string[]) {
  routers = new SglangRouters({
    detect: async () => ({ installed: true, command, source: "test" }),
    ports: routerPorts(),
    timing: TIMING,
    log: memoryLog(),
    applyToProxy: async () => {},
  });
  return routers;
}

describe("the external router's policy, detected from its --help", () => {
  it("reads SMG's choices and tunables from the fake's help, and the old router's from its own", async () => {
    const smg = await routerHelp(fakeCommand());
    expect(smg.policies).toContain("least_load");
    expect(tunableFlags({ type: "sglang", policy: "least_load", ...TUNED }, smg.flags)).toEqual([
      "--least-load-kv-pressure-weight",
      "0.3",
      "--least-load-default-throughput",
      "1500",
      "--least-load-mean-prefill-tokens",
      "512",
    ]);
    const old = await routerHelp(fakeCommand("--fake-version", "0.3.2"));
    expect(old.policies).toEqual(["random", "round_robin", "cache_aware", "power_of_two"]);
    expect(tunableFlags({ type: "sglang", policy: "least_load", ...TUNED }, old.flags)).toEqual([]);
    // A router that lists least_load but not a tunable's flag gets only the ones it lists.
    const partial = parseRouterHelp("  --policy {least_load}\n  --least-load-mean-prefill-tokens N\n");
    expect(tunableFlags({ type: "sglang", policy: "least_load", ...TUNED }, partial.flags)).toEqual([
      "--least-load-mean-prefill-tokens",
      "512",
    ]);
  });

  it("launches SMG's router with least_load and its --least-load-* tunables", async () => {
    const r = start(fakeCommand());
    await r.apply(leastLoad());
    const port = await until(
      "external mode",
      () => {
        const mode = r.router("llama")?.mode;
        return mode?.mode === "external" ? mode.port : null;
      },
      30_000,
      20,
    );
    expect(r.reports()).toEqual([{ service: "llama", mode: "external", reason: null }]);
    const state = (await (await fetch(`http://127.0.0.1:${port}/_fake/state`)).json()) as {
      argv: string[];
      policy: string;
    };
    expect(state.policy).toBe("least_load");
    expect(state.argv.join(" ")).toMatch(
      / --policy least_load .*--least-load-kv-pressure-weight 0\.3 --least-load-default-throughput 1500 --least-load-mean-prefill-tokens 512$/,
    );
    // Through the router to the replica.
    const res = await fetch(`http://127.0.0.1:${port}/v1/models`);
    expect(res.status).toBe(200);
  });

  it("keeps least_load built-in on the last PyPI router, naming its choices", async () => {
    const r = start(fakeCommand("--fake-version", "0.3.2"));
    await r.apply(leastLoad());
    expect(r.reports()).toEqual([
      {
        service: "llama",
        mode: "built-in",
        reason:
          "the installed sglang router has no policy least_load (its --policy choices: random, round_robin, cache_aware, power_of_two)",
      },
    ]);
    expect(r.router("llama")).toBeNull();
  });
});
