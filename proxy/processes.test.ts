import { readdirSync, readFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type Echo, startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { alive } from "../test/support/stack.ts";
import { until as waitUntil } from "../test/support/until.ts";
import { ProxyProcessError, startTunedProxy, type TunedProxyHandle } from "./index.ts";
import { LEAN_HEAP_FLAGS } from "./process-fork.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function replica(name: string): Promise<TestReplica> {
  const r = await startReplica(name);
  cleanups.push(() => r.close());
  return r;
}

/** `n` requests, each on a new connection so the kernel may hand it to any process. */
async function servedBy(port: number, host: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await send(port, { host });
    out.push(res.status === 200 ? (JSON.parse(res.body) as Echo).replica : `HTTP ${res.status}`);
  }
  return out;
}

/** Children of this process running the proxy's child entry (`process-main.ts`, or its bundle). */
function proxyChildren(): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        return ppid === process.pid && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("process-main");
      } catch {
        return false;
      }
    })
    .map(Number);
}

const until = (what: string, check: () => boolean, ms = 8_000) => waitUntil(what, check, ms);

describe("proxy processes", () => {
  it("serve on one port, apply every document, sum stats, and come back with the current document", async () => {
    const a = await replica("a");
    const b = await replica("b");
    const log: string[] = [];
    const proxy: TunedProxyHandle = await startTunedProxy(
      {
        httpPort: 0,
        processes: 2,
        initialConfig: configDocument(1, [{ name: "alpha", replicas: [a.url] }]),
        log: (l) => log.push(l),
      },
      { sharing: "handle" },
    );
    cleanups.push(() => proxy.close());
    const [first, second] = proxy.pids() as [number, number];
    expect(proxy.pids()).toHaveLength(2);

    expect(await servedBy(proxy.port, `alpha.${DOMAIN}`, 10)).toEqual(Array(10).fill("a"));
    const stats = await proxy.stats();
    expect(stats[0]!.windows["30"].requests).toBe(10);

    await proxy.apply(
      configDocument(2, [
        { name: "alpha", replicas: [b.url] },
        { name: "beta", replicas: [a.url] },
      ]),
    );
    // Kill one process: the other serves alone, and must already run version 2.
    process.kill(first, "SIGKILL");
    await until("the first process to be replaced", () => proxy.pids().length === 2 && !proxy.pids().includes(first));
    expect(await servedBy(proxy.port, `alpha.${DOMAIN}`, 5)).toEqual(Array(5).fill("b"));
    // Now kill the other: the replacement serves alone, and must have started with version 2.
    process.kill(second, "SIGKILL");
    await until("the second process to be replaced", () => proxy.pids().length === 2 && !proxy.pids().includes(second));
    expect(await servedBy(proxy.port, `alpha.${DOMAIN}`, 5)).toEqual(Array(5).fill("b"));
    expect(await servedBy(proxy.port, `beta.${DOMAIN}`, 2)).toEqual(["a", "a"]);
    expect(log.filter((l) => /proxy process \d+ exited \(SIGKILL\); restarting/.test(l))).toHaveLength(2);

    const pids = proxy.pids();
    // Replacements too run with the heap flags that keep a process near its live size.
    for (const pid of pids) {
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).toEqual(
        expect.arrayContaining([...LEAN_HEAP_FLAGS]),
      );
    }
    await proxy.close();
    expect(pids.filter(alive)).toEqual([]);
    // Four serving processes start and four stop, one after another, each waited for by polling its
    // state (no fixed sleep): 1.6 s alone, 8 s in a quiet `npm test`, 10–19 s in a paired run and
    // twice past 30 s (timed step by step under load, every start and request grows with it).
  }, 60_000);

  it("work with node:cluster sharing too", async () => {
    const a = await replica("a");
    const b = await replica("b");
    const proxy = await startTunedProxy(
      { httpPort: 0, processes: 2, initialConfig: configDocument(1, [{ name: "alpha", replicas: [a.url] }]) },
      { sharing: "cluster" },
    );
    cleanups.push(() => proxy.close());
    expect(await servedBy(proxy.port, `alpha.${DOMAIN}`, 4)).toEqual(Array(4).fill("a"));
    await proxy.apply(configDocument(2, [{ name: "alpha", replicas: [b.url] }]));
    expect(await servedBy(proxy.port, `alpha.${DOMAIN}`, 4)).toEqual(Array(4).fill("b"));
    const pids = proxy.pids();
    await proxy.close();
    expect(pids.filter(alive)).toEqual([]);
  });

  it("carry a delta to every process, and a replacement starts with the merged document", async () => {
    const a = await replica("a");
    const b = await replica("b");
    const doc1 = configDocument(1, [
      { name: "alpha", replicas: [a.url] },
      { name: "beta", replicas: [a.url] },
    ]);
    const proxy = await startTunedProxy({ httpPort: 0, processes: 2, initialConfig: doc1 }, {});
    cleanups.push(() => proxy.close());
    const doc2 = configDocument(2, [
      { name: "alpha", replicas: [b.url] },
      { name: "beta", replicas: [a.url] },
      { name: "gamma", replicas: [b.url] },
    ]);
    const changed = doc2.services.filter((s) => s.name !== "beta");
    await proxy.applyDelta({ base_version: 1, version: 2, services: changed, removed: [] });
    expect(proxy.document()).toEqual(doc2);
    // Each request on a new connection: both processes answer, and both run version 2.
    expect(await servedBy(proxy.port, `alpha.${DOMAIN}`, 6)).toEqual(Array(6).fill("b"));
    expect(await servedBy(proxy.port, `gamma.${DOMAIN}`, 4)).toEqual(Array(4).fill("b"));
    expect(await servedBy(proxy.port, `beta.${DOMAIN}`, 4)).toEqual(Array(4).fill("a"));

    // Refused in the parent, changing nothing: a gap, and a service on a host another one keeps.
    await expect(proxy.applyDelta({ base_version: 1, version: 3, services: [], removed: ["beta"] })).rejects.toThrow(
      /base_version: 1 is not the version in force \(2\)/,
    );
    const clash = { ...changed[0]!, name: "delta", host: doc2.services[1]!.host };
    await expect(proxy.applyDelta({ base_version: 2, version: 3, services: [clash], removed: [] })).rejects.toThrow(
      /services\[0\]\.host: .* is already the host of service beta/,
    );

    await proxy.applyDelta({ base_version: 2, version: 3, services: [], removed: ["alpha"] });
    const [first] = proxy.pids() as [number, number];
    process.kill(first, "SIGKILL");
    await until("the process to be replaced", () => proxy.pids().length === 2 && !proxy.pids().includes(first));
    expect(await servedBy(proxy.port, `alpha.${DOMAIN}`, 4)).toEqual(Array(4).fill("HTTP 404"));
    expect(await servedBy(proxy.port, `gamma.${DOMAIN}`, 4)).toEqual(Array(4).fill("b"));
  });

  // With 2, the serving processes are forked: one that cannot listen says why and exits, and Node
  // can emit its exit before that message (the pool then waits for the channel to close).
  it.each([1, 2])(
    "fail to start with a clear error when the port is taken, leaving no process behind (%i process(es))",
    async (processes) => {
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
      cleanups.push(() => new Promise((resolve) => taken.close(resolve)));
      const port = (taken.address() as AddressInfo).port;
      const err = await startTunedProxy({ httpPort: port, processes }, {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProxyProcessError);
      expect((err as Error).message).toMatch(/failed to start: listen EADDRINUSE/);
      await until("no proxy process left", () => proxyChildren().length === 0, 3_000);
    },
  );

  it("reject a document in the parent without disturbing the processes", async () => {
    const a = await replica("a");
    const proxy = await startTunedProxy(
      { httpPort: 0, processes: 2, initialConfig: configDocument(1, [{ name: "alpha", replicas: [a.url] }]) },
      {},
    );
    cleanups.push(() => proxy.close());
    await expect(proxy.apply(configDocument(2, [{ name: "alpha", replicas: ["not a url"] }]))).rejects.toThrow(
      /configuration version 2 rejected: services\[0\]\.replicas\[0\]\.url/,
    );
    expect(await servedBy(proxy.port, `alpha.${DOMAIN}`, 3)).toEqual(["a", "a", "a"]);
  });
});
