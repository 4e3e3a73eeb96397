/**
 * The pool's one process served in the parent's own (`in-process-child.ts`): documents and deltas
 * reach it, the host-wide routing state and rate limits answer it over the in-process channel,
 * metrics sum, and a kill is a crash only while it serves.
 */
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { type Echo, startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN, type ServiceSpec } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { startInProcess } from "./in-process-child.ts";
import { startTunedProxy } from "./index.ts";
import type { FromProcess, ToProcess } from "./process-protocol.ts";
import { DEFAULT_SERVER_SETTINGS } from "./settings.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function replica(name: string): Promise<TestReplica> {
  const r = await startReplica(name);
  cleanups.push(() => r.close());
  return r;
}

const servedBy = async (port: number, name: string) => {
  // An API path: the SGLang router serves the engines' API, not any path.
  const res = await send(port, { host: `${name}.${DOMAIN}`, path: "/v1/x" });
  return res.status === 200 ? (JSON.parse(res.body) as Echo).replica : `HTTP ${res.status}`;
};

describe("one proxy process, served in the pool's parent", () => {
  it("serves documents and deltas, routes by the host's state, limits rates and sums metrics", async () => {
    const [a, b, c] = [await replica("a"), await replica("b"), await replica("c")];
    const alpha: ServiceSpec = { name: "alpha", replicas: [a.url] };
    const proxy = await startTunedProxy({ httpPort: 0, processes: 1, initialConfig: configDocument(1, [alpha]) }, {});
    cleanups.push(() => proxy.close());
    // No child: the one serving process is this one.
    expect(proxy.pids()).toEqual([process.pid]);
    expect(await servedBy(proxy.port, "alpha")).toBe("a");

    // A whole document, then a delta on top of it.
    const rr: ServiceSpec = {
      name: "rr",
      replicas: [a.url, b.url, c.url],
      router: { type: "sglang", policy: "round_robin" },
    };
    const limited: ServiceSpec = {
      name: "limited",
      replicas: [a.url],
      rate_limits: [{ prefix: "/", key: { type: "ip_address" }, rps: 1 / 60, burst: 0 }],
    };
    await proxy.apply(configDocument(2, [alpha, rr, limited]));
    await proxy.applyDelta({
      base_version: 2,
      version: 3,
      services: [configDocument(3, [{ name: "alpha", replicas: [b.url] }]).services[0]!],
      removed: [],
    });
    expect(await servedBy(proxy.port, "alpha")).toBe("b");
    expect(proxy.document()?.version).toBe(3);

    // round_robin's counter is the parent's routing state, asked over the channel.
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push(await servedBy(proxy.port, "rr"));
    expect(order).toEqual(["a", "b", "c", "a", "b", "c"]);
    expect(proxy.routingLoads().filter((l) => l.service === "rr")).toHaveLength(3);

    // The bucket is the parent's: one request admitted, the next refused.
    expect(await servedBy(proxy.port, "limited")).toBe("a");
    expect(await servedBy(proxy.port, "limited")).toBe("HTTP 429");

    const requests = (await proxy.metrics()).find((f) => f.name === "gateplane_requests_total");
    const total = (service: string) =>
      (requests?.samples ?? [])
        .filter((s) => s.labels.includes(service) && "value" in s)
        .reduce((n, s) => n + ("value" in s ? s.value : 0), 0);
    expect(total("rr")).toBe(6);
    expect(total("limited")).toBe(2);
    const stats = await proxy.stats();
    expect(stats.find((s) => s.service === "alpha")?.windows["300"].requests).toBe(2);
  });
});

describe("servingChild", () => {
  it("keeps one serving child process when asked, and must be a boolean", async () => {
    const a = await replica("a");
    const proxy = await startTunedProxy(
      {
        httpPort: 0,
        processes: 1,
        servingChild: true,
        initialConfig: configDocument(1, [{ name: "alpha", replicas: [a.url] }]),
      },
      {},
    );
    cleanups.push(() => proxy.close());
    expect(proxy.pids()).toHaveLength(1);
    expect(proxy.pids()).not.toContain(process.pid);
    expect(await servedBy(proxy.port, "alpha")).toBe("a");
    await expect(startTunedProxy({ httpPort: 0, processes: 1, servingChild: "yes" as never }, {})).rejects.toThrow(
      /servingChild: expected true or false/,
    );
  });
});

const init = (): ToProcess => ({
  type: "init",
  settings: { ...DEFAULT_SERVER_SETTINGS, drainTimeoutMs: 1_000 },
  document: null,
  listen: { host: "127.0.0.1", port: 0 },
  shareHandle: false,
  tls: null,
  certificates: [],
  challenges: {},
  stateDir: null,
});

/** The next message of `type` the in-process server sends. */
const next = <T extends FromProcess["type"]>(child: ReturnType<typeof startInProcess>, type: T) =>
  new Promise<Extract<FromProcess, { type: T }>>((resolve) => {
    const listener = (message: FromProcess) => {
      if (message.type !== type) return;
      child.process.off("message", listener);
      resolve(message as Extract<FromProcess, { type: T }>);
    };
    child.process.on("message", listener);
  });

describe("the in-process channel", () => {
  it("delivers in order and never within send, and exits with the code it closes with", async () => {
    const child = startInProcess({ crash: () => expect.fail("no crash") });
    const seen: string[] = [];
    // `started` was sent while starting, and still arrives to a listener attached after.
    child.process.on("message", (message: FromProcess) => seen.push(message.type));
    await next(child, "started");
    const ready = next(child, "ready");
    child.send(init());
    child.send({ type: "stats", id: 1 });
    // Nothing was handled within `send`: the answers come in later microtasks, in order (the
    // server exists once `init` is handled; it listens a turn later).
    expect(seen).toEqual(["started"]);
    await ready;
    expect(seen).toEqual(["started", "stats", "ready"]);
    const exit = once(child.process as unknown as NodeJS.EventEmitter, "exit");
    child.send({ type: "close" });
    expect(await exit).toEqual([0, null]);
    expect(child.process.connected).toBe(false);
    expect(child.process.exitCode).toBe(0);
    // A closed channel drops what is sent.
    child.send({ type: "stats", id: 2 });
  });

  it("makes a kill while serving a crash of the proxy, and a kill while starting an exit", async () => {
    const crashes: string[] = [];
    const serving = startInProcess({ crash: (reason) => crashes.push(reason) });
    await next(serving, "started");
    serving.send(init());
    await next(serving, "ready");
    expect(serving.process.kill("SIGKILL")).toBe(true);
    expect(crashes).toEqual(["the in-process server was killed (SIGKILL) and cannot be replaced in this process"]);
    const closed = once(serving.process as unknown as NodeJS.EventEmitter, "exit");
    serving.send({ type: "close" });
    expect(await closed).toEqual([0, null]);

    const starting = startInProcess({ crash: (reason) => crashes.push(reason) });
    await next(starting, "started");
    const killed = once(starting.process as unknown as NodeJS.EventEmitter, "exit");
    starting.process.kill("SIGKILL");
    expect(await killed).toEqual([null, "SIGKILL"]);
    expect(starting.process.signalCode).toBe("SIGKILL");
    expect(crashes).toHaveLength(1);
  });
});
