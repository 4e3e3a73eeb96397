import { afterEach, describe, expect, it } from "vitest";
import { startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { Balancer, ReplicaState } from "./balancer.ts";
import { type ProxyHandle, startProxy } from "./index.ts";
import { RequestCounter, summarizeStats } from "./stats.ts";

describe("request counter", () => {
  const T = 1_700_000_000_000;

  it("sums each window over its last N seconds, the current one included", () => {
    const c = new RequestCounter();
    c.record(0.1, T - 299_000);
    c.record(0.2, T - 59_000);
    c.record(0.3, T - 29_000);
    c.record(0.4, T);
    const w = c.windows(T);
    expect(w["30"]).toEqual({ requests: 2, seconds: expect.closeTo(0.7, 9) });
    expect(w["60"]).toEqual({ requests: 3, seconds: expect.closeTo(0.9, 9) });
    expect(w["300"]).toEqual({ requests: 4, seconds: expect.closeTo(1.0, 9) });
    // Thirty seconds on, the newest request is all the 30 s window holds.
    expect(c.windows(T + 29_999)["30"].requests).toBe(1);
    expect(c.windows(T + 30_000)["30"].requests).toBe(0);
    expect(c.windows(T + 300_000)["300"].requests).toBe(0);
  });

  it("reuses a bucket once its second is five minutes old, so memory stays fixed", () => {
    const c = new RequestCounter();
    c.record(1, T);
    c.record(1, T + 300_000);
    expect(c.windows(T + 300_000)["300"]).toEqual({ requests: 1, seconds: 1 });
  });
});

describe("summarizeStats", () => {
  it("sums processes, weights the mean by requests, lists every service, and rounds to milliseconds", () => {
    const w = (requests: number, seconds: number) => ({
      "30": { requests, seconds },
      "60": { requests, seconds },
      "300": { requests, seconds },
    });
    const out = summarizeStats(
      ["alpha", "beta"],
      [
        [{ service: "alpha", windows: w(1, 0.1) }],
        [
          { service: "alpha", windows: w(3, 0.9) },
          { service: "gone", windows: w(5, 5) },
        ],
      ],
    );
    expect(out.map((s) => s.service)).toEqual(["alpha", "beta"]);
    expect(out[0]!.windows["60"]).toEqual({ requests: 4, request_time: 0.25 });
    expect(out[1]!.windows["300"]).toEqual({ requests: 0, request_time: 0 });
    expect(summarizeStats(["a"], [[{ service: "a", windows: w(3, 1) }]])[0]!.windows["30"].request_time).toBe(0.333);
  });
});

describe("balancer", () => {
  const replicas = () => [
    new ReplicaState("svc", "r0", "http://127.0.0.1:1"),
    new ReplicaState("svc", "r1", "http://127.0.0.1:2"),
  ];

  it("ejects after three failures in a row, doubles the ejection, and forgets it on success", () => {
    const log: string[] = [];
    const [r0, r1] = replicas() as [ReplicaState, ReplicaState];
    const b = new Balancer([r0, r1], { maxFailures: 3, baseEjectionMs: 10_000, maxEjectionMs: 25_000 }, (l) =>
      log.push(l),
    );
    b.failed(r1, 0, "ECONNREFUSED");
    b.failed(r1, 0, "ECONNREFUSED");
    b.succeeded(r1);
    b.failed(r1, 0, "HTTP 502");
    b.failed(r1, 0, "HTTP 502");
    expect(r1.ejectedAt).toBe(0);
    b.failed(r1, 1, "HTTP 503");
    expect(r1.readmitAt).toBe(10_001);
    expect([b.pick(2, null), b.pick(3, null), b.pick(4, null)]).toEqual([r0, r0, r0]);
    // Back after the ejection; one more failure ejects it again, for twice as long (capped).
    expect([b.pick(10_001, null), b.pick(10_001, null)]).toContain(r1);
    b.failed(r1, 10_002, "HTTP 500");
    expect(r1.readmitAt).toBe(10_002 + 20_000);
    b.failed(r1, 30_002, "HTTP 500");
    expect(r1.readmitAt).toBe(30_002 + 25_000);
    b.succeeded(r1);
    expect(r1.ejectedAt).toBe(0);
    b.failed(r1, 60_000, "x");
    expect(r1.ejectedAt).toBe(0);
    expect(log.filter((l) => l.includes("ejected"))).toHaveLength(3);
    expect(log.at(-1)).toBe("replica r1 of service svc is back in service");
  });

  it("picks the replica ejected longest ago when all are ejected, skipping ones already tried", () => {
    const [r0, r1] = replicas() as [ReplicaState, ReplicaState];
    const b = new Balancer([r0, r1], { maxFailures: 1, baseEjectionMs: 10_000, maxEjectionMs: 10_000 }, () => {});
    b.failed(r1, 100, "x");
    b.failed(r0, 200, "x");
    expect(b.pick(300, null)).toBe(r1);
    expect(b.pick(300, [r1])).toBe(r0);
    expect(b.pick(300, [r0, r1])).toBeUndefined();
  });
});

describe("stats of a running proxy", () => {
  let replica: TestReplica;
  let proxy: ProxyHandle;

  afterEach(async () => {
    await proxy.close();
    await replica.close();
  });

  it("counts only requests that reached a replica", async () => {
    replica = await startReplica("a", (_req, res) => {
      setTimeout(() => res.end("ok"), 60);
    });
    const dead = await startReplica("dead");
    await dead.close();
    proxy = await startProxy({
      httpPort: 0,
      processes: 0,
      initialConfig: configDocument(1, [
        { name: "alpha", replicas: [replica.url], client_max_body_size: 10 },
        { name: "beta", replicas: [] },
        { name: "gamma", replicas: [dead.url] },
      ]),
    });
    const statuses: number[] = [];
    const hit = async (host: string, options: { body?: string } = {}) =>
      statuses.push((await send(proxy.port, { host: `${host}.${DOMAIN}`, method: "POST", ...options })).status);
    for (let i = 0; i < 3; i++) await hit("alpha");
    await hit("alpha", { body: "more than ten bytes" });
    await hit("beta");
    await hit("gamma");
    await hit("nobody");
    await hit("gateway");
    expect(statuses).toEqual([200, 200, 200, 413, 503, 502, 404, 404]);

    const stats = await proxy.stats();
    expect(stats.map((s) => s.service)).toEqual(["alpha", "beta", "gamma"]);
    const alpha = stats[0]!.windows;
    for (const w of ["30", "60", "300"] as const) expect(alpha[w].requests).toBe(3);
    expect(alpha["30"].request_time).toBeGreaterThanOrEqual(0.05);
    expect(alpha["30"].request_time).toBeLessThan(1);
    // The gateway's own 503 (no replicas) and 502 (unreachable) count as errors of the LLM windows.
    const onlyAnError = {
      duration: { counts: [], sum: 0 },
      ttft: { counts: [], sum: 0 },
      tpot: { counts: [], sum: 0 },
      itl: { counts: [], sum: 0 },
      errors: 1,
      tokens: { input: 0, output: 0, estimated_output: 0 },
    };
    expect(stats[1]!.windows["300"]).toEqual({ requests: 0, request_time: 0, llm: onlyAnError });
    expect(stats[2]!.windows["300"]).toEqual({ requests: 0, request_time: 0, llm: onlyAnError });
    expect(alpha["300"].llm?.duration.counts.reduce((a, b) => a + b)).toBe(3);
    expect(alpha["300"].llm?.errors).toBe(0);

    // A service that leaves the document leaves the report; one that stays keeps its history.
    await proxy.apply(configDocument(2, [{ name: "alpha", replicas: [replica.url] }]));
    expect((await proxy.stats()).map((s) => [s.service, s.windows["60"].requests])).toEqual([["alpha", 3]]);
  });
});
