/**
 * @module
 * What incremental configuration costs on a host with many services (issue 17): `npm run
 * bench:config-delta [-- services] [--processes N]` (default 10,000 services × 2 replicas, a mix of
 * routers; as many serving processes as cores, the agent's default).
 *
 * 1. Memory, per process of a real host: the agent (this process, run with the agent's heap flags
 *    as the local host daemon starts it, `package.json`: the applier's merged document and its
 *    indexes, the store, the control-socket link), the standalone proxy's parent
 *    (`gateplane-proxy`: routing state, rate limits, engine scraper, document) and its serving
 *    processes (as many as cores, the agent's default; with `--processes 1` the parent serves
 *    itself); the RSS of each and the sum (issue 17's
 *    target), after the document applied, after 200 deltas, and 20 s later without a change.
 * 2. Propagation: a one-service delta registering a replica (a local server) → its first routed
 *    request, through the serving processes (p50, p95).
 * 2b. CPU per delta, per process (the agent, the proxy's parent, each serving process: /proc/<pid>/stat
 *    over 200 one-service deltas back to back, then 20 deltas 500 ms apart, no requests meanwhile) and
 *    the delta's ACK time, at 1,000 services (a host of its own, started first) and at N: a
 *    one-service delta must cost the same at both.
 * 3. Per-change cost in this process: checking and applying a one-service delta to the routing
 *    table against validating and building the whole document.
 * 4. A routing decision's table lookup at 100 services and at N (it must not grow with them).
 *
 * Nothing leaves the host: the made-up replicas are loopback addresses that are never scraped or
 * checked, and only the registered local server gets requests.
 */
import { mkdir, readFile, rm } from "node:fs/promises";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { availableParallelism } from "node:os";
import { ConfigApplier } from "../agent/config-applier.ts";
import { ConfigStore } from "../agent/config-store.ts";
import { isolateDelta } from "../agent/isolate-delta.ts";
import { isolateServices } from "../agent/isolate-services.ts";
import { attachStandaloneProxy, stopStandaloneProxy } from "../agent/proxy-link.ts";
import { deltaProblems, indexDocument } from "../proxy/config-merge.ts";
import { routeByHost } from "../proxy/route-request.ts";
import { buildRoutingTable, EMPTY_TABLE, parseDocument } from "../proxy/routes.ts";
import { updateRoutingTable } from "../proxy/routes-delta.ts";
import { DEFAULT_SERVER_SETTINGS } from "../proxy/settings.ts";
import { StatsRegistry } from "../proxy/stats.ts";
import type { ConfigDelta } from "../schema/config-delta.ts";
import { fakeDocument, fakeService } from "../test/fakes/config-documents.ts";
import { commandName, cpuSeconds, processTree, rssBytes } from "./procfs.ts";

const args = process.argv.slice(2);
const processesAt = args.indexOf("--processes");
const processesArg = processesAt === -1 ? null : args.splice(processesAt, 2)[1];
if (processesArg !== null && !/^[1-9]\d*$/.test(processesArg ?? "")) {
  throw new Error(`--processes: expected a number of serving processes ≥ 1, got "${processesArg}"`);
}
const N = Number(args[0] ?? 10_000);
const MiB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const time = <T>(f: () => T): [T, number] => {
  const t = performance.now();
  const out = f();
  return [out, performance.now() - t];
};

/** The body of `GET /` on the proxy for `host` ("" on any failure). */
const get = (port: number, host: string) =>
  new Promise<string>((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/", headers: { host } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve(res.statusCode === 200 ? body : ""));
    });
    req.on("error", () => resolve(""));
    req.end();
  });

console.log(`${N} services × 2 replicas, document ${MiB(Buffer.byteLength(JSON.stringify(fakeDocument(N))))}`);

// ── 1, 2 and 2b: the agent (this process) and the standalone proxy, as on a real host ──
/**
 * Serial one-service deltas (a made-up replica registered each), `gapMs` apart: CPU ms per delta per
 * process (the work a delta leaves for after its ACK, a persisted write, counted too), ACK times.
 */
async function cpuPerDelta(
  applier: ConfigApplier,
  n: number,
  firstVersion: number,
  proxyPid: number,
  servingPids: () => number[],
  count: number,
  gapMs = 0,
) {
  const serving = servingPids();
  const pids = [proxyPid, ...serving];
  const cpu0 = pids.map(cpuSeconds);
  const agent0 = process.cpuUsage();
  const acks: number[] = [];
  let version = firstVersion;
  for (let i = 0; i < count; i++) {
    const name = `s${String((i * 53 + 7) % n).padStart(5, "0")}`;
    const service = fakeService(name, { replicas: 2 });
    const changed = {
      ...service,
      replicas: [...service.replicas, { id: `${name}-cpu${i}`, url: "http://127.0.0.2:9" }],
    };
    const delta: ConfigDelta = { base_version: version, version: version + 1, services: [changed], removed: [] };
    const t = performance.now();
    const outcome = await applier.offerDelta(delta, "bench");
    if (outcome.kind !== "applied") throw new Error(`delta not applied: ${JSON.stringify(outcome)}`);
    acks.push(performance.now() - t);
    version++;
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  // Work a delta left for after its ACK (a persisted write, a child's GC) counts too.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const agentUs = process.cpuUsage(agent0);
  const perDelta = (seconds: number) => (seconds * 1000) / count;
  return {
    version,
    agent: (agentUs.user + agentUs.system) / 1000 / count,
    parent: perDelta(cpuSeconds(proxyPid) - cpu0[0]!),
    serving: serving.map((pid, i) => perDelta(cpuSeconds(pid) - cpu0[i + 1]!)),
    ackP50: pct(acks, 0.5),
    ackP95: pct(acks, 0.95),
  };
}
type CpuFigures = Awaited<ReturnType<typeof cpuPerDelta>>;
const showCpu = (n: number, label: string, c: CpuFigures) =>
  console.log(
    `CPU per one-service delta at ${n} services, ${label}: agent ${ms(c.agent)}, proxy parent ${ms(c.parent)}, serving processes ${c.serving.length > 0 ? c.serving.map(ms).join(" + ") : "none (the parent serves)"}; ACK p50 ${ms(c.ackP50)} p95 ${ms(c.ackP95)}`,
  );
/** 200 deltas back to back, then 20 deltas 500 ms apart (each then gets a persisted write of its own). */
async function cpuFigures(
  applier: ConfigApplier,
  n: number,
  version: number,
  proxyPid: number,
  servingPids: () => number[],
) {
  const burst = await cpuPerDelta(applier, n, version, proxyPid, servingPids, 200);
  const spaced = await cpuPerDelta(applier, n, burst.version, proxyPid, servingPids, 20, 500);
  return { burst, spaced };
}

/** A host of `n` services; `full`: memory and propagation too (else only the CPU per delta). */
async function host(n: number, full: boolean): Promise<{ burst: CpuFigures; spaced: CpuFigures }> {
  const upstream = createServer((_req, res) => res.end("new replica"));
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const stateDir = `/tmp/gp-bench-delta-${process.pid}-${n}`;
  await mkdir(stateDir, { recursive: true });
  // The agent's default: as many serving processes as cores (agent/args.ts).
  const processes = processesArg === null ? availableParallelism() : Number(processesArg);
  const proxy = await attachStandaloneProxy(
    { httpPort: 0, processes, log: () => {} },
    { stateDir, version: "bench", log: () => {} },
  );
  // The proxy writes its pid file just after its control socket listens, so it may not be there yet.
  const proxyPid = await (async () => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const pid = Number((await readFile(`${stateDir}/proxy.pid`, "utf8").catch(() => "")).trim());
      if (pid > 0) return pid;
      if (Date.now() > deadline) throw new Error(`no ${stateDir}/proxy.pid within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  // A run that fails must not leave the proxy it started serving: it is detached, nothing else stops it.
  process.on("exit", () => {
    try {
      process.kill(proxyPid);
    } catch {
      // Stopped already.
    }
  });
  /** The proxy's serving processes: its Node children (not a compiler service the loader may run). */
  const servingPids = () => processTree(proxyPid).filter((pid) => pid !== proxyPid && commandName(pid) !== "esbuild");
  const store = new ConfigStore(stateDir);
  const applier = new ConfigApplier({
    apply: (d) => proxy.apply(d),
    applyDelta: (delta) => proxy.applyDelta(delta),
    store,
    initial: null,
    log: { info: () => {}, warn: () => {}, error: console.error },
  });
  // The document is made here and not kept: an agent holds what the applier keeps of it, no more.
  const [firstVersion, wholeMs] = await (async () => {
    const first = fakeDocument(n);
    const t = performance.now();
    const outcome = await applier.offer(first, "bench");
    if (outcome.kind !== "applied") throw new Error(`not applied: ${JSON.stringify(outcome)}`);
    return [first.version, performance.now() - t] as const;
  })();
  await store.idle();
  const rss = () => {
    gc();
    const agent = rssBytes(process.pid);
    const parent = rssBytes(proxyPid);
    const serving = servingPids().map(rssBytes);
    return { agent, parent, serving, total: agent + parent + serving.reduce((a, b) => a + b, 0) };
  };
  const stop = async () => {
    await proxy.close();
    await stopStandaloneProxy(stateDir);
    await new Promise((resolve) => upstream.close(resolve));
    await rm(stateDir, { recursive: true, force: true });
  };
  if (!full) {
    const cpu = await cpuFigures(applier, n, firstVersion, proxyPid, servingPids);
    await store.idle();
    await stop();
    return cpu;
  }
  const before = rss();
  console.log(`whole document applied (validated, ${processes} serving processes, persisted) in ${ms(wholeMs)}`);

  const propagation: number[] = [];
  const applyDeltas: number[] = [];
  let version = firstVersion;
  for (let i = 0; i < 200; i++) {
    const name = `s${String((i * 37) % n).padStart(5, "0")}`;
    const service = fakeService(name, { replicas: 2 });
    const registered = { ...service, replicas: [...service.replicas, { id: `${name}-new`, url: upstreamUrl }] };
    // Only the new replica should answer: the made-up ones are unreachable, so route to it alone.
    const alone = i % 10 === 0 ? { ...registered, replicas: [{ id: `${name}-new`, url: upstreamUrl }] } : registered;
    const delta: ConfigDelta = { base_version: version, version: version + 1, services: [alone], removed: [] };
    const t = performance.now();
    const outcome = await applier.offerDelta(delta, "bench");
    if (outcome.kind !== "applied") throw new Error(`delta not applied: ${JSON.stringify(outcome)}`);
    applyDeltas.push(performance.now() - t);
    version++;
    if (alone !== registered) {
      const deadline = Date.now() + 10_000;
      while ((await get(proxy.port, alone.host)) !== "new replica") {
        if (Date.now() > deadline) throw new Error(`${alone.name}: no routed request within 10 s`);
      }
      propagation.push(performance.now() - t);
    }
  }
  await store.idle();
  const after = rss();
  // What a host settles at once configuration stops changing (V8 collects old garbage when idle).
  const IDLE_S = 20;
  await new Promise((resolve) => setTimeout(resolve, IDLE_S * 1000));
  const idle = rss();
  console.log(
    `one-service delta through the applier to ${processes} processes (ACK ready): p50 ${ms(pct(applyDeltas, 0.5))}, p95 ${ms(pct(applyDeltas, 0.95))} (${applyDeltas.length} deltas)`,
  );
  console.log(
    `registration → first routed request: p50 ${ms(pct(propagation, 0.5))}, p95 ${ms(pct(propagation, 0.95))} (${propagation.length} registrations)`,
  );
  const show = (label: string, r: ReturnType<typeof rss>) =>
    console.log(
      `RSS ${label}: agent ${MiB(r.agent)}, proxy parent ${MiB(r.parent)}, serving processes ${r.serving.length > 0 ? r.serving.map(MiB).join(" + ") : "none (the parent serves)"}; total ${MiB(r.total)}`,
    );
  show("after the whole document", before);
  show("after 200 deltas", after);
  show(`${IDLE_S} s later, no change meanwhile`, idle);
  const cpu = await cpuFigures(applier, n, version, proxyPid, servingPids);
  await store.idle();
  await stop();
  return cpu;
}

const cpuSmall = await host(1_000, false);
const cpuLarge = await host(N, true);
for (const [label, key] of [
  ["back to back", "burst"],
  ["500 ms apart", "spaced"],
] as const) {
  showCpu(1_000, label, cpuSmall[key]);
  showCpu(N, label, cpuLarge[key]);
}

// ── 3: per-change cost in this process ──
const doc = fakeDocument(N);
const deps = { stats: new StatsRegistry(), health: DEFAULT_SERVER_SETTINGS.health, log: () => {} };
const [, parseMs] = time(() => parseDocument(doc));
const [, isolateMs] = time(() => isolateServices(doc, null));
const [table, buildMs] = time(() => buildRoutingTable(doc, EMPTY_TABLE, deps));
const [, rebuildMs] = time(() => buildRoutingTable({ ...doc, version: 2 }, table, deps));
const state = indexDocument(doc);
let current = table;
const check: number[] = [];
const apply: number[] = [];
for (let i = 0; i < 100; i++) {
  const name = `s${String((i * 101) % N).padStart(5, "0")}`;
  const delta: ConfigDelta = {
    base_version: state.doc.version,
    version: state.doc.version + 1,
    services: [fakeService(name, { replicas: 3, router: i % 5 })],
    removed: [],
  };
  const [isolated, isolateOneMs] = time(() => isolateDelta(delta, state));
  if (!isolated.ok) throw new Error(isolated.error);
  const [, problemsMs] = time(() => deltaProblems(state, delta));
  check.push(isolateOneMs + problemsMs);
  const [, mergeMs] = time(() => state.apply(delta));
  const [updated, updateMs] = time(() => updateRoutingTable(current, delta, deps));
  apply.push(mergeMs + updateMs);
  current = updated.table;
}
console.log(
  `whole document: validate ${ms(parseMs)} (per-service isolation ${ms(isolateMs)}), build table ${ms(buildMs)}, rebuild on top of the previous ${ms(rebuildMs)}`,
);
console.log(
  `one-service delta: validate p50 ${ms(pct(check, 0.5))} p95 ${ms(pct(check, 0.95))}; merge + table p50 ${ms(pct(apply, 0.5))} p95 ${ms(pct(apply, 0.95))}`,
);

// ── 4: a routing decision's lookup does not grow with the services (a map by host) ──
const lookupNs = (t: typeof table, hosts: string[]) => {
  const rounds = 2_000_000;
  let found = 0;
  for (let i = 0; i < 200_000; i++) if (routeByHost(t, hosts[i % hosts.length]!, "/v1/chat/completions")) found++;
  const start = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) if (routeByHost(t, hosts[i % hosts.length]!, "/v1/chat/completions")) found++;
  if (found === 0) throw new Error("no host routed");
  return Number(process.hrtime.bigint() - start) / rounds;
};
const small = buildRoutingTable(fakeDocument(100), EMPTY_TABLE, deps);
// The same 100 hosts looked up in both tables, so only the table's size differs.
const hosts = [...small.byHost.keys()];
const lookups = [lookupNs(small, hosts), lookupNs(current, hosts), lookupNs(small, hosts), lookupNs(current, hosts)];
console.log(
  `route lookup by host: ${lookups[2]!.toFixed(0)} ns at 100 services, ${lookups[3]!.toFixed(0)} ns at ${N} (first rounds ${lookups[0]!.toFixed(0)} / ${lookups[1]!.toFixed(0)} ns)`,
);
