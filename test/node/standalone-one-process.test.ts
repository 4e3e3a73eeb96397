/**
 * A standalone proxy with one process serves in its own process (docs/gateway-host.md#one-process),
 * so a crash of its serving code ends the whole proxy: the agent's link (`agent/proxy-link.ts`)
 * must start it again, on the same port, serving the document it stored, and the agent's calls
 * made while it starts must wait for it rather than fail. Its listening socket is its server's own
 * (no parent keeps a copy): an upgrade must still hand it over without a refused connection.
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { attachStandaloneProxy, stopStandaloneProxy } from "../../agent/proxy-link.ts";
import type { ProxyHandle } from "../../proxy/index.ts";
import { type Echo, startReplica } from "../fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../support/config-builder.ts";
import { send } from "../support/http-client.ts";
import { until } from "../support/until.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const pidOf = async (dir: string) => Number((await readFile(path.join(dir, "proxy.pid"), "utf8")).trim()) || null;

/** Node processes whose parent is `pid` (not esbuild's, which a proxy that compiles its bin runs a while). */
const childrenOf = (pid: number) =>
  readdirSync("/proc").filter((entry) => {
    if (!/^\d+$/.test(entry)) return false;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) !== pid) return false;
      return !readFileSync(`/proc/${entry}/cmdline`, "utf8").includes("esbuild");
    } catch {
      return false;
    }
  });

it("a one-process standalone proxy that dies is started again by the agent's link, serving its stored document", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "gp-proxy-crash-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const replica = await startReplica("a");
  cleanups.push(() => replica.close());
  const lines: string[] = [];
  const proxy: ProxyHandle = await attachStandaloneProxy(
    { httpPort: 0, processes: 1, log: (line) => lines.push(line) },
    { stateDir: dir, version: "test", log: (line) => lines.push(line) },
  );
  cleanups.push(() => stopStandaloneProxy(dir));
  cleanups.push(() => proxy.close());
  await proxy.apply(configDocument(1, [{ name: "alpha", replicas: [replica.url] }]));
  const served = async () => {
    const res = await send(proxy.port, { host: `alpha.${DOMAIN}` });
    return res.status === 200 && (JSON.parse(res.body) as Echo).replica === "a";
  };
  expect(await served()).toBe(true);
  const first = await until("the proxy's pid file", () => pidOf(dir));
  // It serves in its own process: no serving child.
  expect(childrenOf(first)).toEqual([]);

  process.kill(first, "SIGKILL");
  await until("the link to see it gone", () =>
    lines.some((l) => l.includes("lost the standalone proxy's control socket")),
  );
  // Called while the new proxy starts: waits for it.
  const stats = await proxy.stats();
  expect(stats.map((s) => s.service)).toEqual(["alpha"]);
  const second = await until("a new proxy's pid file", async () => {
    const pid = await pidOf(dir);
    return pid !== first && pid;
  });
  expect(second).not.toBe(first);
  await until("the stored document served on the same port", served, 10_000);
}, 30_000);

it("a one-process standalone proxy hands its socket over to another version, never refusing a connection", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "gp-proxy-handover-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const replica = await startReplica("a");
  cleanups.push(() => replica.close());
  const attach = (version: string) =>
    attachStandaloneProxy({ httpPort: 0, processes: 1 }, { stateDir: dir, version, log: () => {} });
  const old = await attach("v1");
  cleanups.push(() => stopStandaloneProxy(dir));
  await old.apply(configDocument(1, [{ name: "alpha", replicas: [replica.url] }]));
  const first = await until("the proxy's pid file", () => pidOf(dir));
  await old.close();
  // Requests all along: none may be refused while the sockets change hands.
  let stop = false;
  const statuses: number[] = [];
  const load = (async () => {
    while (!stop)
      statuses.push((await send(old.port, { host: `alpha.${DOMAIN}` }).catch(() => ({ status: 0 }))).status);
  })();
  const upgraded = await attach("v2");
  cleanups.push(() => upgraded.close());
  expect(upgraded.port).toBe(old.port);
  await until("the old proxy gone", () => {
    try {
      process.kill(first, 0);
      return false;
    } catch {
      return true;
    }
  });
  const served = statuses.length;
  await until("requests served by the new proxy", () => statuses.length > served + 5);
  stop = true;
  await load;
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
}, 30_000);
