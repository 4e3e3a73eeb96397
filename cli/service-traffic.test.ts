import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Service } from "../schema/service-api.ts";
import type { LlmWindows } from "../schema/traffic.ts";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, testIo } from "../test/support/cli-io.ts";
import { llmWindow, type Observed } from "../test/support/llm-windows.ts";
import { formatErrorRate, formatLatency, formatRate } from "./service-traffic.ts";

// `service get` and `service list -v` show the traffic the control plane reports, against the fake
// control plane, which computes it with the Worker's functions (`schema/traffic.ts`).

describe("the traffic's numbers", () => {
  it("prints latencies in ms under a second, in seconds above", () => {
    expect([null, undefined, 0.0004, 0.0025, 0.035, 0.9994, 0.9996, 1.234, 12.34, 60].map(formatLatency)).toEqual([
      "-",
      "-",
      "0.4ms",
      "2.5ms",
      "35ms",
      "999ms",
      "1.00s",
      "1.23s",
      "12.3s",
      "60.0s",
    ]);
  });

  it("prints rates with three significant digits, error rates as percents", () => {
    expect([0, 0.017, 1.667, 12.34, 1300.4].map(formatRate)).toEqual(["0", "0.02", "1.67", "12.3", "1300"]);
    expect([null, 0, 0.03, 1].map(formatErrorRate)).toEqual(["-", "0.0%", "3.0%", "100.0%"]);
  });
});

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
  fake.seed({ name: "edge", domain: "example.com", certificate: null, replicas: 2 }, { default: true });
  fake.seedService({ name: "llama", model: "meta-llama/Llama-3.1-8B-Instruct" });
  fake.seedService({ name: "quiet" });
});
afterEach(async () => {
  await fake.stop();
});

const gateplane = async (...argv: string[]) => {
  const result = await runCli(argv, testIo({ env: fake.env }));
  expect(result.stderr).toBe("");
  return result;
};

const spread = (n: number, from: number, step: number) => Array.from({ length: n }, (_, i) => from + i * step);
const FAST: Observed = {
  duration: spread(60, 0.5, 0.01),
  ttft: spread(60, 0.03, 0.0005),
  tpot: spread(60, 0.009, 0.00001),
  itl: spread(60, 0.008, 0.00002),
  errors: 0,
  tokens: { input: 60_000, output: 6_000 },
};
const SLOW: Observed = {
  duration: spread(60, 3, 0.05),
  ttft: spread(60, 1.1, 0.005),
  tpot: spread(60, 0.04, 0.0001),
  itl: spread(60, 0.035, 0.0001),
  errors: 6,
  tokens: { input: 12_000, output: 3_000, estimated_output: 300 },
};
/** The same observations in the 60- and 300-s windows; nothing in the last 30 s. */
const windows = (o: Observed): LlmWindows => ({ "60": { llm: llmWindow(o) }, "300": { llm: llmWindow(o) } });

describe("service get", () => {
  it("shows the 60-s window over every gateway replica, then each replica's", async () => {
    fake.reportTraffic("llama", 0, windows(FAST));
    fake.reportTraffic("llama", 1, windows(SLOW));
    const { stdout } = await gateplane("service", "get", "llama");
    const lines = stdout.trimEnd().split("\n");
    expect(lines.slice(2)).toEqual([
      "",
      "Traffic   last 60s, all gateway replicas",
      "Requests  2.00/s (120), errors 5.0%",
      "Tokens/s  in 1200, out 150 (300 of 9000 output tokens estimated)",
      "",
      "LATENCY   P50    P90    P99",
      // Prometheus's histogram_quantile over the merged buckets: the 60th of 120 TTFTs is the
      // fast replica's last (its bucket 40–60 ms ends there); the 108th is in the slow one's 1–2.5 s.
      "TTFT      60ms   2.20s  2.47s",
      "ITL       10ms   45ms   50ms",
      "TPOT      10ms   45ms   50ms",
      "DURATION  1.28s  6.63s  9.88s",
      "",
      "REPLICA  REQ/S  ERRORS  TTFT P50  TTFT P90  TTFT P99  ITL P90  TOK/S IN  TOK/S OUT",
      "0        1.00   0.0%    45ms      57ms      60ms      9.8ms    1000      100",
      "1        1.00   10.0%   1.75s     2.35s     2.48s     48ms     200       50.0",
    ]);
  });

  it("takes another window with --window, and shows a window without requests as such", async () => {
    fake.reportTraffic("llama", 0, windows(FAST));
    fake.reportTraffic("llama", 1, windows(SLOW));
    const five = await gateplane("service", "get", "llama", "--window", "300s");
    expect(five.stdout).toContain("Traffic   last 300s, all gateway replicas\nRequests  0.40/s (120), errors 5.0%\n");
    const thirty = await gateplane("service", "get", "llama", "--window", "30");
    expect(thirty.stdout).toContain("Requests  0/s (0), errors -\n");
    expect(thirty.stdout).toContain("TTFT      -    -    -\n");
  });

  it("shows what one replica reported before the other did", async () => {
    fake.reportTraffic("llama", 1, windows(SLOW));
    const { stdout } = await gateplane("service", "get", "llama");
    expect(stdout).toContain(
      "\nTraffic (last 60s): not reported yet by every running gateway replica\n\nREPLICA  REQ/S",
    );
    expect(stdout).toMatch(/\n1 +1\.00 +10\.0% +1\.75s/);
  });

  it("prints the API's traffic unchanged with --json", async () => {
    const reported = fake.reportTraffic("llama", 0, windows(FAST));
    fake.reportTraffic("llama", 1, windows(SLOW));
    const { stdout } = await gateplane("service", "get", "llama", "--json");
    const body = JSON.parse(stdout) as Service;
    expect(body.traffic).toEqual(reported.traffic);
    expect(body.traffic!.windows["60"].requests).toBe(120);
    expect(body.gateway_replicas.map((r) => r.traffic?.windows["60"].requests)).toEqual([60, 60]);
  });

  it("refuses a window the agents do not report", async () => {
    const { code, stderr } = await runCli(["service", "get", "llama", "--window", "120"], testIo({ env: fake.env }));
    expect(code).toBe(2);
    expect(stderr).toBe("gateplane service get: --window must be 30, 60 or 300 (seconds), got '120'\n");
    expect(fake.requests).toEqual([]);
  });
});

describe("service list -v", () => {
  it("adds TTFT P90 and TOK/S OUT once a service's traffic is reported", async () => {
    const before = await gateplane("service", "list", "-v");
    expect(before.stdout.split("\n")[0]).toMatch(/ MODEL +CREATED$/);
    fake.reportTraffic("llama", 0, windows(FAST));
    fake.reportTraffic("llama", 1, windows(SLOW));
    const { stdout } = await gateplane("service", "list", "-v");
    const [header, llama, quiet] = stdout.trimEnd().split("\n");
    expect(header).toMatch(/ MODEL +CREATED +TTFT P90 +TOK\/S OUT$/);
    expect(llama).toMatch(/ meta-llama\/Llama-3\.1-8B-Instruct +\d+ sec ago +2\.20s +150$/);
    expect(quiet).toMatch(/ \d+ sec ago +- +-$/);
    const five = await gateplane("service", "list", "-v", "--window", "300");
    expect(five.stdout.split("\n")[1]).toMatch(/ 2\.20s +30\.0$/);
    // Without -v the table is as it was.
    expect((await gateplane("service", "list")).stdout.split("\n")[0]).toMatch(/ CONFIG$/);
  });
});
