import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ReplicaEngine, Service } from "../schema/service-api.ts";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, testIo } from "../test/support/cli-io.ts";
import { formatPercent, formatSignalAge } from "./service-engine.ts";

// `service get` shows the engine signals the control plane reports per service replica, against the
// fake control plane; a service without any prints as before.

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
  fake.seed({ name: "edge", domain: "example.com", certificate: null, replicas: 2 }, { default: true });
  fake.seedService({ name: "llama", model: "meta-llama/Llama-3.1-8B-Instruct" }, [
    { id: "r1", url: "http://10.0.0.5:8000" },
    { id: "r2", url: "http://10.0.0.6:8000" },
    { id: "r3", url: "http://10.0.0.7:8000" },
    { id: "r4", url: "http://10.0.0.8:8000" },
  ]);
});
afterEach(async () => {
  await fake.stop();
});

const gateplane = async (...argv: string[]) => {
  const result = await runCli(argv, testIo({ env: fake.env }));
  expect(result.stderr).toBe("");
  return result;
};

const engine = (fields: Partial<ReplicaEngine>): ReplicaEngine => ({
  engine: "vllm",
  state: "fresh",
  running: null,
  waiting: null,
  kv_cache_usage: null,
  prefix_cache_hit_rate: null,
  age_seconds: null,
  error: null,
  ...fields,
});

function report() {
  fake.reportEngine(
    "llama",
    "r1",
    engine({ running: 3, waiting: 12, kv_cache_usage: 0.8125, prefix_cache_hit_rate: 0.4, age_seconds: 1.234 }),
  );
  fake.reportEngine(
    "llama",
    "r2",
    engine({ engine: "sglang", state: "stale", running: 1, waiting: 0, kv_cache_usage: 0.1, age_seconds: 14.6 }),
  );
  // A replica's error is the server's text: a terminal escape in it must not reach the terminal.
  fake.reportEngine(
    "llama",
    "r3",
    engine({ engine: null, state: "failed", error: "connect ECONNREFUSED\n\x1b[31mred\x1b[0m" }),
  );
  return fake.reportEngine("llama", "r4", null);
}

describe("service get", () => {
  it("shows each replica's engine state, load, KV and prefix hit rates and age, then the errors", async () => {
    report();
    const { stdout } = await gateplane("service", "get", "llama");
    const lines = stdout.trimEnd().split("\n");
    const at = lines.findIndex((l) => l.startsWith("REPLICA  ENGINE"));
    expect(lines.slice(at - 1, at + 9)).toEqual([
      "",
      "REPLICA  ENGINE  STATE         RUNNING  WAITING  KV     PREFIX HIT  AGE",
      "r1       vllm    fresh         3        12       81.3%  40.0%       1.2s",
      "r2       sglang  stale         1        0        10.0%  -           15s",
      "r3       -       failed        -        -        -      -           -",
      "r4       -       not reported",
      "",
      "Engine errors:",
      "  r3: connect ECONNREFUSED \\x1b[31mred\\x1b[0m",
      "",
    ]);
    expect(stdout).not.toContain("\x1b");
  });

  it("prints nothing of engines for a service none was reported for", async () => {
    const { stdout } = await gateplane("service", "get", "llama");
    expect(stdout).not.toContain("ENGINE");
    expect(stdout).not.toContain("Engine errors");
  });

  it("prints the API's engines unchanged with --json", async () => {
    const reported = report();
    const { stdout } = await gateplane("service", "get", "llama", "--json");
    const body = JSON.parse(stdout) as Service;
    expect(body.replicas.map((r) => r.engine)).toEqual(reported.replicas.map((r) => r.engine));
    expect(body.replicas[0]!.engine!.kv_cache_usage).toBe(0.8125);
  });
});

describe("the engine's numbers", () => {
  it("prints ratios as percents and ages in seconds, minutes past two", () => {
    expect([null, 0, 0.125, 1].map(formatPercent)).toEqual(["-", "0.0%", "12.5%", "100.0%"]);
    expect([null, 0, 1.234, 9.96, 14.6, 119, 120, 600].map(formatSignalAge)).toEqual([
      "-",
      "0.0s",
      "1.2s",
      "10s",
      "15s",
      "119s",
      "2m",
      "10m",
    ]);
  });
});
