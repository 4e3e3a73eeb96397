import { request, type ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { type Handler, startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN, type ServiceSpec } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { until } from "../test/support/until.ts";
import { ENGINE_SCRAPER_USER_AGENT } from "./engine/fetch-metrics.ts";
import { type ProxyHandle, startTunedProxy } from "./index.ts";
import type { ServerSettings } from "./settings.ts";

// Retries and admission control over real sockets (the decisions themselves: admission/*.test.ts).
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function replica(name: string, handler?: Handler): Promise<TestReplica> {
  const r = await startReplica(name, handler);
  cleanups.push(() => r.close());
  return r;
}

async function proxy(services: ServiceSpec[], settings: Partial<ServerSettings> = {}): Promise<ProxyHandle> {
  const p = await startTunedProxy(
    { httpPort: 0, processes: 0, initialConfig: configDocument(1, services), log: () => {} },
    { settings: { drainTimeoutMs: 2_000, ...settings } },
  );
  cleanups.push(() => p.close());
  return p;
}

const HOST = `alpha.${DOMAIN}`;
const answering =
  (status: number, headers: Record<string, string> = {}): Handler =>
  (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify({ error: `status ${status}` }));
    });
  };

/**
 * A replica handler that holds each request until the test calls its entry in `waiting`. The host's
 * engine scrapes of a model service (`proxy/engine/`) are answered at once and not held: a held
 * scrape would count as a request at the replica (and take the test's release).
 */
const holding =
  (waiting: (() => void)[]): Handler =>
  (req, res) => {
    req.resume();
    if (req.headers["user-agent"] === ENGINE_SCRAPER_USER_AGENT) res.writeHead(404).end();
    else waiting.push(() => res.end("done"));
  };

/** A metric's samples in the proxy's exposition whose labels include `labels`, added up (0 when none). */
async function series(p: ProxyHandle, name: string, labels = ""): Promise<number> {
  const text = await p.exposition();
  const lines = text.split("\n").filter((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return lines.reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

describe("retries over real sockets", () => {
  it("a replica answering 503 (or 429 with Retry-After): its peer serves, the client sees 200, retries counted", async () => {
    const busy = await replica("busy", answering(503));
    const limited = await replica("limited", answering(429, { "retry-after": "30" }));
    const good = await replica("good");
    const p = await proxy([{ name: "alpha", replicas: [busy.url, limited.url, good.url] }]);
    for (let i = 0; i < 9; i++) {
      const res = await send(p.port, { host: HOST, method: "POST", body: `{"n":${i}}` });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body).body).toBe(`{"n":${i}}`);
    }
    expect(busy.seen.length + limited.seen.length).toBeGreaterThan(0);
    expect(good.seen.length).toBe(9);
    await until("the records", async () => (await series(p, "gateplane_requests_total", 'code="2xx"')) === 9);
    expect(await series(p, "gateplane_retries_total")).toBe(busy.seen.length + limited.seen.length);
  });

  it("a connection reset before the response is retried; one after bytes went out is not", async () => {
    const resetting = await replica("resetting", (req) => req.socket.destroy());
    const good = await replica("good");
    const p = await proxy([{ name: "alpha", replicas: [resetting.url, good.url] }]);
    for (let i = 0; i < 4; i++)
      expect((await send(p.port, { host: HOST, method: "POST", body: "x" })).status).toBe(200);
    expect(resetting.seen.length).toBeGreaterThan(0);

    const cutting = await replica("cutting", (_req, res: ServerResponse) => {
      res.writeHead(200, { "content-length": "100" });
      res.write("partial");
      setImmediate(() => res.socket?.destroy());
    });
    const q = await proxy([{ name: "alpha", replicas: [cutting.url, good.url] }]);
    const outcomes = await Promise.all(
      [0, 1, 2, 3].map(() =>
        send(q.port, { host: HOST }).then(
          (r) => r.status,
          () => "cut",
        ),
      ),
    );
    expect(outcomes.filter((o) => o === "cut").length).toBe(cutting.seen.length);
    expect(cutting.seen.length).toBeGreaterThan(0);
  });

  it("a 500 reaches the client as it is (not in the default set); a service can add it", async () => {
    const failing = await replica("failing", answering(500));
    const good = await replica("good");
    const p = await proxy([{ name: "alpha", replicas: [failing.url, good.url] }]);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await send(p.port, { host: HOST })).status);
    expect(statuses.filter((s) => s === 500).length).toBe(failing.seen.length);
    expect(failing.seen.length).toBeGreaterThan(0);

    const q = await proxy([
      {
        name: "alpha",
        replicas: [failing.url, good.url],
        retries: {
          attempts: 3,
          statuses: [500],
          on_reset: true,
          on_timeout: true,
          budget_percent: 20,
          budget_min_per_second: 3,
        },
      },
    ]);
    for (let i = 0; i < 4; i++) expect((await send(q.port, { host: HOST })).status).toBe(200);
  });

  it("a failing fleet: the budget runs out, clients see the replicas' own errors, retries and refusals counted", async () => {
    const a = await replica("a", answering(503));
    const b = await replica("b", answering(503));
    const c = await replica("c", answering(503));
    const p = await proxy([
      {
        name: "alpha",
        replicas: [a.url, b.url, c.url],
        retries: {
          attempts: 3,
          statuses: [503],
          on_reset: true,
          on_timeout: true,
          budget_percent: 20,
          budget_min_per_second: 0,
        },
      },
    ]);
    const requests = 50;
    for (let i = 0; i < requests; i++) {
      const res = await send(p.port, { host: HOST });
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body)).toEqual({ error: "status 503" });
    }
    const attempts = a.seen.length + b.seen.length + c.seen.length;
    // At most 20 % of the requests were retried: the fleet saw at most 1.2 × the traffic.
    expect(attempts - requests).toBeLessThanOrEqual(requests * 0.2);
    expect(attempts - requests).toBeGreaterThan(0);
    await until("the records", async () => (await series(p, "gateplane_requests_total", 'code="5xx"')) === requests);
    expect(await series(p, "gateplane_retries_total")).toBe(attempts - requests);
    expect(await series(p, "gateplane_retries_refused_total", 'reason="budget"')).toBeGreaterThan(0);
  });

  it("a body larger than the replay bound is not retried (and counted so); a smaller one is", async () => {
    const a = await replica("a", answering(503));
    const b = await replica("b", answering(503));
    const p = await proxy([{ name: "alpha", replicas: [a.url, b.url] }], {
      bodyBuffer: { requestBytes: 1024, processBytes: 1 << 20, readTimeoutMs: 5_000 },
    });
    expect((await send(p.port, { host: HOST, method: "POST", body: "x".repeat(4096) })).status).toBe(503);
    expect(a.seen.length + b.seen.length).toBe(1);
    expect((await send(p.port, { host: HOST, method: "POST", body: "x".repeat(512) })).status).toBe(503);
    expect(a.seen.length + b.seen.length).toBe(3);
    await until("the records", async () => (await series(p, "gateplane_requests_total", 'code="5xx"')) === 2);
    expect(await series(p, "gateplane_retries_refused_total", 'reason="body"')).toBe(1);
    expect(await series(p, "gateplane_retries_refused_total", 'reason="replicas"')).toBe(1);
  });

  it("a replica that does not answer within read_timeout: the peer serves", async () => {
    const silent = await replica("silent", () => {});
    const good = await replica("good");
    const p = await proxy([{ name: "alpha", replicas: [silent.url, good.url], read_timeout_ms: 200 }]);
    for (let i = 0; i < 2; i++) expect((await send(p.port, { host: HOST })).status).toBe(200);
    expect(silent.seen.length).toBeGreaterThan(0);
    expect(good.seen.length).toBe(2);
  });
});

describe("admission control over real sockets", () => {
  it("max_concurrency with a queue: one runs, one waits then runs, the next is refused 429 with Retry-After", async () => {
    const waiting: (() => void)[] = [];
    const slow = await replica("slow", holding(waiting));
    const p = await proxy([
      {
        name: "alpha",
        replicas: [slow.url],
        model: { name: "m", format: "openai", prefix: "/v1" },
        admission: { max_concurrency: 1, queue_size: 1, queue_timeout_ms: 10_000, priority_header: null },
      },
    ]);
    const first = send(p.port, { host: HOST });
    await until("the first at the replica", () => waiting.length === 1);
    const second = send(p.port, { host: HOST });
    await until("the second queued", async () => (await series(p, "gateplane_admission_queue_depth")) === 1);
    const third = await send(p.port, { host: HOST });
    expect(third.status).toBe(429);
    expect(third.headers["retry-after"]).toBe("1");
    expect(JSON.parse(third.body).error).toMatchObject({ type: "requests", code: "queue_full" });
    expect(slow.seen.length).toBe(1);
    waiting.shift()!();
    expect((await first).status).toBe(200);
    await until("the second at the replica", () => waiting.length === 1);
    waiting.shift()!();
    expect((await second).status).toBe(200);
    expect(await series(p, "gateplane_admission_refused_total", 'reason="full"')).toBe(1);
    expect(await series(p, "gateplane_admission_queue_wait_seconds_count")).toBe(1);
  });

  it("a wait past queue_timeout is a 503 with Retry-After", async () => {
    const waiting: (() => void)[] = [];
    const slow = await replica("slow", holding(waiting));
    const p = await proxy([
      {
        name: "alpha",
        replicas: [slow.url],
        admission: { max_concurrency: 1, queue_size: 5, queue_timeout_ms: 100, priority_header: "x-priority" },
      },
    ]);
    const first = send(p.port, { host: HOST });
    await until("the first at the replica", () => waiting.length === 1);
    const late = await send(p.port, { host: HOST, headers: { "x-priority": "system" } });
    expect(late.status).toBe(503);
    expect(late.headers["retry-after"]).toBe("1");
    expect(JSON.parse(late.body).error).toMatch(/waited too long/);
    waiting.shift()!();
    expect((await first).status).toBe(200);
    expect(await series(p, "gateplane_admission_refused_total", 'reason="timeout"')).toBe(1);
    expect(await series(p, "gateplane_admission_queue_depth")).toBe(0);
  });

  it("a client that leaves the queue frees its place", async () => {
    const waiting: (() => void)[] = [];
    const slow = await replica("slow", holding(waiting));
    const p = await proxy([
      {
        name: "alpha",
        replicas: [slow.url],
        admission: { max_concurrency: 1, queue_size: 1, queue_timeout_ms: 10_000, priority_header: null },
      },
    ]);
    const first = send(p.port, { host: HOST });
    await until("the first at the replica", () => waiting.length === 1);
    const leaving = request({ host: "127.0.0.1", port: p.port, headers: { host: HOST } });
    leaving.on("error", () => {});
    leaving.end();
    await until("the second queued", async () => (await series(p, "gateplane_admission_queue_depth")) === 1);
    leaving.destroy();
    await until("the queue empty", async () => (await series(p, "gateplane_admission_queue_depth")) === 0);
    // Its place is free: the next request waits instead of a 429, and gets the slot.
    const next = send(p.port, { host: HOST });
    await until("the next queued", async () => (await series(p, "gateplane_admission_queue_depth")) === 1);
    waiting.shift()!();
    expect((await first).status).toBe(200);
    await until("the next at the replica", () => waiting.length === 1);
    waiting.shift()!();
    expect((await next).status).toBe(200);
    expect(slow.seen.length).toBe(2);
  });
});
