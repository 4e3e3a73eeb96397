/**
 * Rate limits with proxy processes: the host admits the configured total, not one allowance per
 * process. Over a 3 s run at 3× the rate, requests spread over two processes are admitted as ONE
 * bucket fed the same sending times would admit them (within 5 %), which is rps × 3 + burst when
 * the sender keeps its pace. Comparing with the bucket rather than with rps × 3 + burst alone keeps
 * the check about the gateway: on a loaded machine the sender falls behind and then catches up in a
 * burst, which a correct limiter must refuse. (Longer runs, against nginx's limit_req with the same
 * traffic, are `npm run bench:ratelimit`'s: 10 s by default.)
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { until } from "../test/support/until.ts";
import { startTunedProxy, type TunedProxyHandle } from "./index.ts";
import { DEFAULT_OBSERVE_LIMITS } from "./observe/sinks.ts";
import { verdictAdmitted, Zone } from "./rate-limit-store.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function limitedProxy(rps: number, burst: number, stateDir?: string): Promise<TunedProxyHandle> {
  const replica = await startReplica("r");
  cleanups.push(() => replica.close());
  const services = [
    {
      name: "svc",
      replicas: [replica.url],
      rate_limits: [{ prefix: "/", key: { type: "ip_address" as const }, rps, burst }],
    },
  ];
  const proxy = await startTunedProxy(
    { httpPort: 0, processes: 2, stateDir, validatedDocuments: true, initialConfig: configDocument(1, services) },
    { settings: { observe: { ...DEFAULT_OBSERVE_LIMITS, accessLogFlushMs: 0 } } },
  );
  cleanups.push(() => proxy.close());
  if (stateDir) {
    // Every request's arrival, as the process that took it stamped it (`time`, to the millisecond).
    await proxy.apply({
      ...configDocument(2, services),
      observability: {
        metrics: { public: false },
        access_log: { destination: "file", max_size: 1024 ** 2, max_files: 2 },
        tracing: null,
      },
    });
  }
  return proxy;
}

function get(port: number, agent: Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, agent, headers: { host: `svc.${DOMAIN}` } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0));
    req.end();
  });
}

/** Open sockets of a process (its accepted client connections among them). */
function sockets(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
    } catch {
      return false;
    }
  }).length;
}

describe("rate limits across proxy processes", () => {
  it("64 connections spread over 2 processes share one allowance", async () => {
    const proxy = await limitedProxy(1 / 60, 1);
    const pids = proxy.pids();
    const baseline = pids.map(sockets);
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    cleanups.push(async () => agent.destroy());
    const statuses = await Promise.all(Array.from({ length: 64 }, () => get(proxy.port, agent)));
    // Both processes hold some of the (kept-alive) client connections: both answered.
    const accepted = pids.map((pid, i) => sockets(pid) - baseline[i]!);
    expect(accepted.every((n) => n > 0)).toBe(true);
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);
    expect(statuses.filter((s) => s === 429)).toHaveLength(62);
  });

  it("3 s at 3× the rate admits what one bucket admits, within 5 %", { timeout: 60_000 }, async () => {
    const rps = 100;
    const burst = 20;
    const stateDir = mkdtempSync(path.join(tmpdir(), "gp-ratelimit-"));
    cleanups.push(async () => rmSync(stateDir, { recursive: true, force: true }));
    const proxy = await limitedProxy(rps, burst, stateDir);
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    cleanups.push(async () => agent.destroy());
    // Paced on absolute times, so a late timer is caught up rather than stretching the run.
    const seconds = 3;
    const total = 3 * rps * seconds;
    const start = performance.now();
    const answers: Promise<number>[] = [];
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / (3 * rps);
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      answers.push(get(proxy.port, agent));
    }
    const statuses = await Promise.all(answers);
    const admitted = statuses.filter((s) => s === 200).length;
    const refused = statuses.filter((s) => s === 429).length;
    expect(admitted + refused).toBe(total);
    // The reference: ONE nginx bucket (rate-limit-store.ts, pinned to nginx's arithmetic by its own
    // tests) fed the arrival times both processes logged, in order. One allowance per process would
    // admit about twice as many. (Fed the times the test sent them, it would also count the delays
    // of a loaded machine between sending and arrival, which bunch requests the limiter rightly refuses.)
    const arrivals = await until("a line for every request", () => {
      const file = path.join(stateDir, "access.log");
      const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
      return lines.length >= total ? lines.map((l) => Date.parse((JSON.parse(l) as { time: string }).time)) : null;
    });
    const reference = new Zone({ id: "reference", rate: rps * 1000, burst: burst * 1000 }, 1);
    let expected = 0;
    for (const at of arrivals.sort((a, b) => a - b)) if (verdictAdmitted(reference.take("client", at))) expected++;
    expect(Math.abs(admitted - expected) / expected).toBeLessThanOrEqual(0.05);
    // Never more than one allowance for the whole host over the time the requests arrived (the
    // limiter's clock: on a loaded machine they arrive over longer than the sending took).
    const arrived = (arrivals.at(-1)! - arrivals[0]!) / 1000;
    expect(admitted).toBeLessThanOrEqual((rps * Math.max(seconds, arrived) + burst) * 1.05);
  });
});
