/**
 * The host's routing state with 2 proxy processes behind real sockets: cache_aware keeps a shared
 * prefix on one replica whichever process took the connection, round robin cycles globally,
 * power_of_two sees the other process's in-flight requests, the parent's loads return to 0 however
 * exchanges end (and when a process dies holding some), and a parent that does not answer does not
 * stop routing.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { CACHE_AWARE_DEFAULTS } from "../schema/router.ts";
import { endings, startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN, type ServiceSpec } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { until as waitUntil } from "../test/support/until.ts";
import { ENGINE_SCRAPER_USER_AGENT } from "./engine/fetch-metrics.ts";
import { ProcessPool } from "./process-pool.ts";
import { DEFAULT_SERVER_SETTINGS } from "./settings.ts";

const HOST = `llm.${DOMAIN}`;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Replicas that answer with their name; `hold(name)` makes one keep its answers until `release`. */
async function replicas(n: number) {
  const held = new Set<string>();
  let waiting: (() => void)[] = [];
  const served: Record<string, number> = {};
  const list: TestReplica[] = [];
  for (let i = 0; i < n; i++) {
    const name = `r${i}`;
    served[name] = 0;
    const r = await startReplica(name, (req: IncomingMessage, res: ServerResponse) => {
      // The host's engine scrapes are not routed traffic: a replica without engine metrics.
      if (req.headers["user-agent"] === ENGINE_SCRAPER_USER_AGENT) {
        res.writeHead(404).end();
        return;
      }
      req.resume();
      req.on("end", () => {
        served[name]!++;
        const answer = () => res.end(JSON.stringify({ replica: name }));
        if (held.has(name)) waiting.push(answer);
        else answer();
      });
    });
    list.push(r);
    cleanups.push(() => r.close());
  }
  return {
    urls: list.map((r) => r.url),
    served,
    hold: (name: string) => held.add(name),
    release: () => {
      held.clear();
      for (const w of waiting.splice(0)) w();
      waiting = [];
    },
  };
}

/**
 * A pool of 2 processes. They wait up to 30 s for the parent's routing decisions (`routingAnswerMs`;
 * production's 500 ms): these tests are about the parent's decisions, and a parent stalled past
 * 500 ms on a loaded machine lets a process decide alone, by design (placing a prefix elsewhere,
 * seen under load). The test of that fallback passes production's bound.
 */
async function pool(services: ServiceSpec[], log: (line: string) => void = () => {}, routingAnswerMs = 30_000) {
  const processes = await ProcessPool.start({
    host: "127.0.0.1",
    port: 0,
    count: 2,
    settings: { ...DEFAULT_SERVER_SETTINGS, drainTimeoutMs: 1_000, routingAnswerMs },
    document: configDocument(1, services),
    sharing: "handle",
    tlsPort: null,
    certificates: [],
    challenges: {},
    log,
    onHold: () => {},
  });
  cleanups.push(() => processes.close());
  const loads = () => processes.routingLoads().map((l) => l.inFlight);
  /** Requests each process counted (both must have served for a test to mean anything). */
  const perProcess = async () =>
    (await processes.stats()).map((stats) => stats.reduce((n, s) => n + s.windows["300"].requests, 0));
  return { processes, port: processes.port, loads, perProcess };
}

const until = (what: string, check: () => boolean, ms = 10_000) => waitUntil(what, check, ms, 10);
const replicaOf = (body: string) => (JSON.parse(body) as { replica: string }).replica;
const chat = (system: string, question: string) =>
  JSON.stringify({
    model: "llama",
    messages: [
      { role: "system", content: system },
      { role: "user", content: question },
    ],
  });
/** `n` requests at once, each on its own connection, so the kernel spreads them over both processes. */
const burst = (n: number, make: (i: number) => Parameters<typeof send>[1], port: number) =>
  Promise.all(Array.from({ length: n }, (_, i) => send(port, make(i))));

/**
 * Another process with 3 replicas (prints their ports), which, once the file named by its argument
 * holds the proxy's port, waits 300 ms, sends 12 requests at once, prints their statuses and end
 * times, then creates `<file>.done`.
 */
const HELPER = `
const http = require("node:http");
const servers = [0, 1, 2].map((i) => http.createServer((req, res) => { req.resume(); req.on("end", () => res.end("r" + i)); }));
Promise.all(servers.map((s) => new Promise((r) => s.listen(0, "127.0.0.1", r)))).then(() => {
  process.stdout.write(JSON.stringify(servers.map((s) => s.address().port)) + "\\n");
});
const go = process.argv[1];
const poll = setInterval(() => {
  let input;
  try { input = require("node:fs").readFileSync(go, "utf8"); } catch { return; }
  clearInterval(poll);
  setTimeout(() => ask(input), 300);
}, 10);
const ask = (input) => {
  const started = Date.now();
  Promise.all(Array.from({ length: 12 }, () => new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port: Number(input), path: "/v1/x", headers: { host: "${HOST}" }, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, at: Date.now() }));
    });
    req.on("error", (e) => resolve({ status: 0, error: e.message, at: Date.now() }));
    req.end();
  }))).then((replies) => {
    process.stdout.write(JSON.stringify({ started, replies }) + "\\n");
    require("node:fs").writeFileSync(go + ".done", "");
    for (const s of servers) s.close();
  });
};
`;

/** A thread that sets the shared flag and wakes its waiter once `workerData.file` exists. */
const WAKER = `
const { existsSync } = require("node:fs");
const { workerData } = require("node:worker_threads");
const flag = new Int32Array(workerData.buffer);
const poll = setInterval(() => {
  if (!existsSync(workerData.file)) return;
  clearInterval(poll);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}, 5);
`;

describe("routing state shared by 2 proxy processes", () => {
  it("cache_aware: requests sharing a prefix land on one replica whichever process took them", async () => {
    const fleet = await replicas(3);
    const { port, loads, perProcess } = await pool([
      { name: "llm", replicas: fleet.urls, router: { type: "sglang", policy: "cache_aware", ...CACHE_AWARE_DEFAULTS } },
    ]);
    const systems = ["alpha", "beta", "gamma", "delta"].map(
      (n) => `You are agent ${n}. ${`Rules of ${n}. `.repeat(60)}`,
    );
    const where = new Map<string, Set<string>>(systems.map((s) => [s, new Set()]));
    // Two waves of 48 concurrent connections: 4 prefixes × 12 questions each.
    for (let wave = 0; wave < 2; wave++) {
      const replies = await burst(
        48,
        (i) => ({
          host: HOST,
          method: "POST",
          path: "/v1/chat/completions",
          body: chat(systems[i % 4]!, `question ${wave}-${i}`),
        }),
        port,
      );
      for (const [i, r] of replies.entries()) where.get(systems[i % 4]!)!.add(replicaOf(r.body));
    }
    expect((await perProcess()).every((n) => n > 0)).toBe(true);
    // One replica per prefix. With a tree and loads per process, each process would place each
    // prefix on its own (a random least-loaded replica on its first miss).
    for (const [, seen] of where) expect(seen.size).toBe(1);
    expect(loads()).toEqual([0, 0, 0]);
  });

  it("round_robin: one counter for the host (30 requests over 3 replicas → 10 each, in order)", async () => {
    const fleet = await replicas(3);
    const { port, perProcess } = await pool([
      { name: "llm", replicas: fleet.urls, router: { type: "sglang", policy: "round_robin" } },
    ]);
    const replies = await burst(30, () => ({ host: HOST, path: "/v1/x" }), port);
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(fleet.served).toEqual({ r0: 10, r1: 10, r2: 10 });
    // One at a time, the sequence itself is the global one.
    const order: string[] = [];
    for (let i = 0; i < 9; i++) order.push(replicaOf((await send(port, { host: HOST, path: "/v1/x" })).body));
    expect(order).toEqual(["r0", "r1", "r2", "r0", "r1", "r2", "r0", "r1", "r2"]);
    expect((await perProcess()).every((n) => n > 0)).toBe(true);
  });

  it("power_of_two: a process sees the requests the other process has in flight", async () => {
    const fleet = await replicas(2);
    const { port, loads, perProcess } = await pool([
      { name: "llm", replicas: fleet.urls, router: { type: "sglang", policy: "power_of_two" } },
    ]);
    // r0 keeps every request it gets; r1 answers at once. The first request on r0 stays in flight,
    // so with host-wide loads every later decision (from either process) compares 1 with 0 → r1.
    // With state per process, each would send its own first tie to r0.
    fleet.hold("r0");
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      let finished = false;
      const reply = send(port, { host: HOST, path: "/v1/x" }).finally(() => {
        finished = true;
      });
      // Wait until this request either finished or is held by r0.
      const held = fleet.served.r0!;
      await until("an answer or a held request", () => finished || fleet.served.r0! > held);
      if (!finished) pending.push(reply);
      // A process hands a load back right after the answer, not before it: wait for the parent to see it.
      else await until("r1's load released", () => loads()[1] === 0);
    }
    expect(fleet.served.r0).toBe(1);
    expect(fleet.served.r1).toBe(39);
    expect(loads()).toEqual([1, 0]);
    expect((await perProcess()).every((n) => n > 0)).toBe(true);
    fleet.release();
    await Promise.all(pending);
    await until("loads back to 0", () => loads().every((n) => n === 0));
  });

  it("in-flight returns to 0 in the parent after completions, errors, client aborts, [DONE] and a dead process", async () => {
    const sse = endings(5_000);
    const r = await startReplica("sse", sse.handler);
    cleanups.push(() => r.close());
    const { port, loads, processes } = await pool([
      { name: "llm", replicas: [r.url], router: { type: "sglang", policy: "power_of_two" } },
    ]);
    const ok = await burst(20, (i) => ({ host: HOST, path: i % 2 ? "/v1/ok" : "/v1/error" }), port);
    expect(ok.map((x) => x.status).sort()).toEqual([...Array(10).fill(200), ...Array(10).fill(500)]);
    await until("completions and errors released", () => loads()[0] === 0);
    await Promise.all(
      Array.from({ length: 6 }, () => send(port, { host: HOST, path: "/v1/broken" }).catch(() => null)),
    );
    await until("broken responses released", () => loads()[0] === 0);
    // Client aborts while the replica thinks, on several connections (both processes): each is
    // destroyed once all six are in flight.
    const slowRequests = Array.from({ length: 6 }, () => {
      const req = request({ host: "127.0.0.1", port, path: "/v1/slow", setHost: false, headers: { host: HOST } });
      const aborted = new Promise<void>((resolve) => req.on("error", () => resolve()));
      req.end();
      return { req, aborted };
    });
    await until("aborted requests in flight", () => loads()[0] === 6);
    for (const { req } of slowRequests) req.destroy();
    await Promise.all(slowRequests.map((r) => r.aborted));
    await until("aborts released", () => loads()[0] === 0);
    // SSE: released at [DONE] while the stream is still open.
    const chunks: string[] = [];
    const streamed = new Promise<void>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port, path: "/v1/sse", setHost: false, headers: { host: HOST } },
        (res) => {
          res.on("data", (c: Buffer) => chunks.push(c.toString()));
          res.on("end", resolve);
        },
      );
      req.on("error", reject);
      req.end();
    });
    await until("first event", () => chunks.length > 0);
    expect(loads()).toEqual([1]);
    sse.done();
    await until("[DONE]", () => chunks.join("").includes("data: [DONE]"));
    await until("released at [DONE]", () => loads()[0] === 0);
    sse.release();
    await streamed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(loads()).toEqual([0]);
    // A process killed while holding requests: the parent gives its loads back.
    const slow = Array.from({ length: 6 }, () => send(port, { host: HOST, path: "/v1/slow" }).catch(() => null));
    await until("slow requests in flight", () => loads()[0] === 6);
    for (const pid of processes.pids()) process.kill(pid, "SIGKILL");
    await until("a dead process's loads released", () => loads()[0] === 0);
    await Promise.all(slow);
  });

  it("routes when the parent does not answer, then settles the loads it decided late", {
    timeout: 30_000,
  }, async () => {
    // Replicas and client are another process: this one (the children's parent) is about to stop answering.
    const dir = mkdtempSync(path.join(tmpdir(), "router-processes-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const go = path.join(dir, "port");
    const helper = spawn(process.execPath, ["-e", HELPER, go], { stdio: ["ignore", "pipe", "inherit"] });
    cleanups.push(async () => {
      if (helper.exitCode === null) helper.kill("SIGKILL");
    });
    let out = "";
    helper.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise((resolve) => helper.on("exit", resolve));
    await until("helper replicas", () => out.includes("\n"));
    const ports = JSON.parse(out.split("\n")[0]!) as number[];
    const log: string[] = [];
    const { port, loads } = await pool(
      [
        {
          name: "llm",
          replicas: ports.map((p) => `http://127.0.0.1:${p}`),
          router: { type: "sglang", policy: "round_robin" },
        },
      ],
      (line) => log.push(line),
      DEFAULT_SERVER_SETTINGS.routingAnswerMs,
    );
    // This thread's event loop is about to stop; another thread wakes it once the helper has all
    // its answers (or after 15 s, when the assertions below fail).
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const waker = new Worker(WAKER, { eval: true, workerData: { buffer: flag.buffer, file: `${go}.done` } });
    cleanups.push(() => waker.terminate());
    // Synchronously: this process's event loop is about to stop. Written aside and renamed: the
    // helper polls for the file, and a read between its creation and its write saw it empty (port
    // 0: every request went to port 80).
    writeFileSync(`${go}.tmp`, String(port));
    renameSync(`${go}.tmp`, go);
    // Block this process's event loop (without burning CPU); the helper starts asking after 300 ms.
    const blockedAt = Date.now();
    Atomics.wait(flag, 0, 0, 15_000);
    const unblockedAt = Date.now();
    await exited;
    const result = JSON.parse(out.split("\n")[1]!) as {
      started: number;
      replies: { status: number; at: number; error?: string }[];
    };
    // An error names itself (status 0 alone said nothing of what happened to the connection).
    expect(result.replies.map((r) => r.error ?? r.status)).toEqual(Array(12).fill(200));
    // Every answer came while the parent was blocked (each after the children's 500 ms bound).
    expect(result.started).toBeGreaterThanOrEqual(blockedAt);
    for (const reply of result.replies) expect(reply.at).toBeLessThan(unblockedAt);
    // The parent then decides the questions it had missed; the processes hand those leases back.
    await until("the outage logged", () => log.length > 0);
    await until("late decisions released", () => loads().every((n) => n === 0));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(loads()).toEqual([0, 0, 0]);
    // Logged once per outage by each process that waited (one or both), not once per request.
    const outage = log.filter((l) => l.includes("routing state did not answer in time"));
    expect(outage.length).toBeGreaterThanOrEqual(1);
    expect(outage.length).toBeLessThanOrEqual(2);
    expect(outage[0]).toContain("routing with this process's own state meanwhile");
  });
});
