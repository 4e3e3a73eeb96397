/**
 * @module
 * `npm run bench:control-plane [-- --sizes 100,1000,10000 --sample 50 --replicas 2 --concurrency 4
 * --gateways 1000 --step-timeout 120]`: the control plane as one gateway grows (issue 17). Starts the
 * `npm start` stack in a temporary directory, creates one local gateway, and grows it to each size:
 * services applied through the API the CLI uses (plan, apply, replica registration) with bounded
 * concurrency, then `--sample` more one by one, measured. Per size: apply + registration latency,
 * propagation (registration → first request through the gateway's proxy that reaches the replica),
 * the host's agent + proxy RSS (from /proc), the cost of a proxied request for an existing service
 * beside a direct one, and listing every service page by page. Then `--gateways` gateways are listed
 * page by page (catalog rows: see `seedCatalogGateways`). Prints one table beside the figures the
 * issue measured before incremental configuration, and stops everything it started.
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { ControlPlane } from "../cli/api-client.ts";
import { ControlPlaneError, NetworkError } from "../cli/errors.ts";
import { startStack } from "../local-host/stack.ts";
import { nextCursor } from "../schema/paging.ts";
import type { Spec } from "../schema/plan-envelope.ts";
import { freePort, hosts, ROOT, until } from "../test/support/stack.ts";
import {
  get,
  hostRssBytes,
  keepAlive,
  REPLICA_BODY,
  replicaServer,
  seedCatalogGateways,
} from "./control-plane-host.ts";
import { renderTable } from "./report.ts";

const USAGE =
  "usage: npm run bench:control-plane -- [--sizes 100,1000,10000] [--sample 50] [--replicas 1|2] [--concurrency 4] [--gateways 1000] [--list-passes 5] [--step-timeout 120]";
const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "100,1000,10000" },
    sample: { type: "string", default: "50" },
    replicas: { type: "string", default: "2" },
    concurrency: { type: "string", default: "4" },
    gateways: { type: "string", default: "1000" },
    "list-passes": { type: "string", default: "5" },
    "step-timeout": { type: "string", default: "120" },
  },
});
const int = (name: string, text: string, min: number, max: number) => {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    process.stderr.write(`--${name}: expected an integer from ${min} to ${max}, got "${text}"\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
};
const SAMPLE = int("sample", values.sample, 1, 1000);
const SIZES = values.sizes.split(",").map((s) => int("sizes", s.trim(), SAMPLE, 100_000));
const REPLICAS = int("replicas", values.replicas, 1, 2);
const CONCURRENCY = int("concurrency", values.concurrency, 1, 32);
const GATEWAYS = int("gateways", values.gateways, 0, 100_000);
/**
 * How many times the gateways are listed page by page: 1,000 gateways are 10 pages, whose p99 is
 * their slowest; over several passes the p99 is a percentile, not one page that met a busy moment.
 */
const LIST_PASSES = int("list-passes", values["list-passes"], 1, 100);
const STEP_TIMEOUT_MS = int("step-timeout", values["step-timeout"], 1, 3600) * 1000;
if (SIZES.some((s, i) => i > 0 && s <= SIZES[i - 1]!)) {
  process.stderr.write(`--sizes: expected increasing sizes\n${USAGE}\n`);
  process.exit(2);
}

const GATEWAY = "bench";
const PAGE = 100;
const progress = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const pct = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))]!;
};

/** `fn`, or an error naming the step and the size once `STEP_TIMEOUT_MS` passed. */
async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `${what}: no result within ${STEP_TIMEOUT_MS / 1000} s (raise --step-timeout, or measure smaller --sizes)`,
          ),
        ),
      STEP_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const dir = await mkdtemp(path.join(tmpdir(), "gp-bench-cp-"));
const servers: Server[] = [];
let stack: Awaited<ReturnType<typeof startStack>> | null = null;
let stopping = false;
let interrupted = false;
async function cleanUp(): Promise<void> {
  if (stopping) return;
  stopping = true;
  keepAlive.destroy();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await stack?.stop().catch((e: unknown) => progress(`stopping the stack: ${(e as Error).message}`));
  await rm(dir, { recursive: true, force: true });
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping everything the benchmark started`);
    // A stack still starting is stopped once it is up (startStack cannot be cut short).
    interrupted = true;
    if (stack !== null) void cleanUp().then(() => process.exit(130));
  });
}

/** Answers that say "busy, try again" (a 5xx without our error shape, a dropped connection). */
const transient = (e: unknown) =>
  e instanceof NetworkError || (e instanceof ControlPlaneError && (e.status === 502 || e.status === 503));

/** Retries so far: the table shows them, since a retried apply's time includes the failed attempt. */
const retries = new Map<number, number>();

/** `fn` again after a transient failure, up to 3 times with a growing pause. */
async function retrying<T>(size: number, what: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!transient(e) || attempt > 3) throw e;
      retries.set(size, (retries.get(size) ?? 0) + 1);
      progress(`  ${what}: ${(e as Error).message}; retrying (${attempt}/3)`);
      await new Promise((r) => setTimeout(r, 1000 * 2 ** (attempt - 1)));
    }
  }
}

interface SizeRow {
  services: number;
  applyMs: number[];
  propagationMs: number[];
  rssBytes: number;
  proxiedUs: number;
  directUs: number;
  pages: number[];
  /** One unpaged `GET …/services` (every service in one answer, as before paging). */
  wholeMs: number;
}

try {
  progress(`starting the local stack in ${dir}`);
  stack = await startStack({ dir, port: await freePort(), quiet: true });
  if (interrupted) throw new Error("interrupted");
  const project = stack.project;
  const api = new ControlPlane({ url: stack.url, token: stack.token }, STEP_TIMEOUT_MS);
  const replicas = await Promise.all(Array.from({ length: REPLICAS }, () => replicaServer()));
  servers.push(...replicas.map((r) => r.server));

  progress(`creating the local gateway ${GATEWAY}`);
  const gatewaySpec: Spec = {
    configuration: { type: "gateway", name: GATEWAY, backend: "local", domain: "localhost" },
    configuration_path: null,
  };
  const gwPlan = await api.plan(project, gatewaySpec);
  await api.apply(project, { spec: gatewaySpec, current_resource: gwPlan.current_resource }, false);
  const gateway = await until(
    "the gateway running with its agent registered",
    async () => {
      const g = await api.get(project, GATEWAY);
      return g.status === "running" && g.replicas[0]?.agent && g.replicas[0].hostname ? g : null;
    },
    STEP_TIMEOUT_MS,
    100,
  );
  const proxyPort = Number(gateway.replicas[0]!.hostname!.split(":").at(-1));
  const instance = (await hosts(stack)).find((h) => h.state === "running" && h.pid !== null);
  if (!instance) throw new Error("the local host daemon reports no running host");
  const instanceDir = path.join(stack.dir, "hosts", "instances", instance.instance_id);

  /** Applies service `i` and registers its replicas; the time of the first registration's start. */
  async function addService(i: number): Promise<{ applyMs: number; registeredAt: number; name: string }> {
    const name = `s${i}`;
    const spec: Spec = {
      configuration: { type: "service", name, gateway: GATEWAY, https: false, auth: false },
      configuration_path: null,
    };
    const started = performance.now();
    const plan = await api.planService(project, spec);
    await api.applyService(project, { spec, current_resource: plan.current_resource }, false);
    const registeredAt = performance.now();
    await api.putServiceReplica(project, name, { id: "r0", url: replicas[0]!.url });
    const applyMs = performance.now() - started;
    for (let r = 1; r < replicas.length; r++) {
      await api.putServiceReplica(project, name, { id: `r${r}`, url: replicas[r]!.url });
    }
    return { applyMs, registeredAt, name };
  }

  async function routedAt(name: string): Promise<number> {
    for (;;) {
      const answer = await get(proxyPort, `${name}.localhost`);
      if (answer.status === 200 && answer.body === REPLICA_BODY) return performance.now();
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** Mean µs per request over `n` sequential keep-alive requests. */
  async function perRequestUs(port: number, host: string, n = 1000): Promise<number> {
    for (let i = 0; i < 50; i++) await get(port, host); // warm
    const started = performance.now();
    for (let i = 0; i < n; i++) await get(port, host);
    return ((performance.now() - started) / n) * 1000;
  }

  async function listPages(what: "services" | "gateways", expected: number): Promise<number[]> {
    const times: number[] = [];
    let cursor: string | null = null;
    let items = 0;
    do {
      const q = new URLSearchParams({ limit: String(PAGE), ...(cursor ? { cursor } : {}) });
      const started = performance.now();
      const res = await fetch(`${stack!.url}/api/v1/projects/${project}/${what}?${q}`, {
        headers: { authorization: `Bearer ${stack!.token}` },
      });
      const body = (await res.json()) as Record<string, unknown[]>;
      times.push(performance.now() - started);
      if (!res.ok) throw new Error(`GET ${what}: ${res.status} ${JSON.stringify(body)}`);
      items += body[what]!.length;
      cursor = nextCursor(res.headers);
    } while (cursor !== null);
    if (items !== expected) throw new Error(`listing ${what} page by page gave ${items}, expected ${expected}`);
    return times;
  }

  const rows: SizeRow[] = [];
  let count = 0;
  for (const size of SIZES) {
    const fillTo = size - SAMPLE;
    const fillStarted = performance.now();
    if (count < fillTo) progress(`filling to ${fillTo} services (concurrency ${CONCURRENCY})`);
    let next = count;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < fillTo) {
          const i = next++;
          await step(`apply of service ${i} while filling to ${fillTo}`, () =>
            retrying(size, `service ${i}`, () => addService(i)),
          );
          if (i % 100 === 99)
            progress(`  ${i + 1} services (${((performance.now() - fillStarted) / 1000).toFixed(0)} s)`);
        }
      }),
    );
    count = Math.max(count, fillTo);
    progress(`measuring ${SAMPLE} applies at ${count} → ${size} services`);
    const row: SizeRow = {
      wholeMs: 0,
      services: size,
      applyMs: [],
      propagationMs: [],
      rssBytes: 0,
      proxiedUs: 0,
      directUs: 0,
      pages: [],
    };
    for (let k = 0; k < SAMPLE; k++) {
      const added = await step(`apply + registration of service ${count} (at ${size} services)`, () =>
        retrying(size, `service ${count}`, () => addService(count)),
      );
      count++;
      row.applyMs.push(added.applyMs);
      const routed = await step(`propagation of ${added.name} to the proxy (at ${size} services)`, () =>
        routedAt(added.name),
      );
      row.propagationMs.push(routed - added.registeredAt);
    }
    row.rssBytes = await hostRssBytes(instance.pid!, instanceDir);
    row.proxiedUs = await step("proxied requests", () => perRequestUs(proxyPort, "s0.localhost"));
    row.directUs = await step("direct requests", () =>
      perRequestUs(Number(new URL(replicas[0]!.url).port), "s0.localhost"),
    );
    row.pages = await step(`listing ${size} services page by page`, () => listPages("services", size));
    row.wholeMs = await step(`listing ${size} services in one answer`, async () => {
      const started = performance.now();
      const res = await fetch(`${stack!.url}/api/v1/projects/${project}/services`, {
        headers: { authorization: `Bearer ${stack!.token}` },
      });
      await res.arrayBuffer();
      return performance.now() - started;
    });
    rows.push(row);
    progress(
      `${size} services: apply+registration p50 ${pct(row.applyMs, 0.5).toFixed(0)} ms, propagation p95 ${pct(row.propagationMs, 0.95).toFixed(0)} ms`,
    );
  }

  const gatewayPages: number[] = [];
  if (GATEWAYS > 1) {
    progress(`adding ${GATEWAYS - 1} catalog gateways and listing ${GATEWAYS} page by page`);
    const template = (await api.get(project, GATEWAY)) as unknown as { name: string; id: string };
    await step("seeding catalog gateways", () =>
      seedCatalogGateways(ROOT, path.join(dir, "wrangler"), path.join(dir, "gateways.sql"), template, GATEWAYS - 1),
    );
    for (let pass = 1; pass <= LIST_PASSES; pass++) {
      const times = await step(`listing ${GATEWAYS} gateways page by page (pass ${pass})`, () =>
        listPages("gateways", GATEWAYS),
      );
      gatewayPages.push(...times);
    }
  }

  const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`);
  const lines: string[][] = [
    [
      "",
      "services",
      "apply+reg p50",
      "apply+reg p95",
      "propagation p50",
      "propagation p95",
      "agent+proxy RSS",
      "proxied µs/req",
      "direct µs/req",
      "list pages",
      "page p99",
      "whole list",
      "retried",
    ],
  ];
  for (const r of rows) {
    lines.push([
      "measured",
      r.services.toLocaleString("en-US"),
      ms(pct(r.applyMs, 0.5)),
      ms(pct(r.applyMs, 0.95)),
      ms(pct(r.propagationMs, 0.5)),
      ms(pct(r.propagationMs, 0.95)),
      `${(r.rssBytes / 1024 / 1024).toFixed(0)} MiB`,
      r.proxiedUs.toFixed(0),
      r.directUs.toFixed(0),
      String(r.pages.length),
      ms(pct(r.pages, 0.99)),
      ms(r.wholeMs),
      String(retries.get(r.services) ?? 0),
    ]);
  }
  // The figures (adding services one by one, apply + one replica registration each).
  for (const [n, p50, p95] of [
    [250, "158 ms", ""],
    [500, "215 ms", ""],
    [750, "396 ms", ""],
    [1000, "434 ms", ""],
    [1250, "783 ms", "1.9 s"],
  ] as const) {
    lines.push(["today (issue 17)", n.toLocaleString("en-US"), p50, p95, "", "", "", "", "", "", "", "", ""]);
  }
  lines.push([
    "target",
    "100–10,000",
    "≤ 100 ms",
    "≤ 300 ms",
    "",
    "≤ 1 s",
    "≤ 300 MiB",
    "flat",
    "",
    "",
    "≤ 200 ms",
    "",
    "",
  ]);
  console.log(
    `control plane, one local gateway, ${REPLICAS} replica(s) per service, ${SAMPLE} measured applies per size, pages of ${PAGE} (load average ${loadavg()[0]!.toFixed(2)})`,
  );
  console.log(renderTable(lines, 2));
  if (gatewayPages.length > 0) {
    console.log(
      `\nlisting ${GATEWAYS.toLocaleString("en-US")} gateways page by page, ${LIST_PASSES} passes: ${gatewayPages.length} pages, p50 ${ms(pct(gatewayPages, 0.5))}, p99 ${ms(pct(gatewayPages, 0.99))} (target p99 ≤ 200 ms)`,
    );
  }
} catch (e) {
  progress(`failed: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  await cleanUp();
  // What a failed step left running (a fill's other applies, a propagation poll) must not keep the
  // process alive after the stack is gone.
  process.exit();
}
