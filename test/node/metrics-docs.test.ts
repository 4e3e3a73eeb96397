import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentFamilies } from "../../agent/metrics.ts";
import { engineFamilies } from "../../proxy/engine/engine-metrics.ts";
import { FakeClock } from "../../proxy/engine/fake-clock.ts";
import { EngineScraper } from "../../proxy/engine/scraper.ts";
import { HealthChecker } from "../../proxy/health/checker.ts";
import { hostHealthFamilies } from "../../proxy/health/health-metrics.ts";
import { Mesh } from "../../proxy/mesh/mesh.ts";
import { meshFamilies } from "../../proxy/mesh/mesh-metrics.ts";
import { METRICS } from "../../proxy/observe/catalog.ts";
import { renderExposition } from "../../proxy/observe/exposition.ts";
import { ProxyServer } from "../../proxy/server.ts";
import { DEFAULT_SERVER_SETTINGS } from "../../proxy/settings.ts";
import { healthDocument } from "../../schema/health.ts";
import { CACHE_AWARE_DEFAULTS, PREFIX_LOAD_DEFAULTS } from "../../schema/router.ts";
import { type FakeModelServer, startFakeModelServer } from "../fakes/model-server.ts";
import { startPdEngines } from "../fakes/pd-engines.ts";
import { configDocument, DOMAIN } from "../support/config-builder.ts";
import { send } from "../support/http-client.ts";
import { until } from "../support/until.ts";

// docs/metrics.md and docs/grafana/gateplane.json against the code: every metric is documented,
// every dashboard expression is valid PromQL (promtool check rules), and every series the dashboard
// names is in a real exposition — one where the proxy served traffic that makes every series appear.
const root = path.join(import.meta.dirname, "../..");
let exposition: string;
let server: ProxyServer;
let model: FakeModelServer;
let cutting: Server;
let slow: Server;
const held: ServerResponse[] = [];
let busy: Server;
let dir: string;
let pd: Awaited<ReturnType<typeof startPdEngines>>;

function listen(s: Server): Promise<string> {
  return new Promise((resolve) =>
    s.listen(0, "127.0.0.1", () => {
      const address = s.address();
      resolve(`http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`);
    }),
  );
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-metrics-docs-"));
  model = await startFakeModelServer("m", { promptTokens: 3, metrics: { engine: "vllm" } });
  // A replica that promises more than it sends: the response is cut.
  cutting = createServer((_req, res) => {
    res.writeHead(200, { "content-length": "100" });
    res.write("partial");
    setImmediate(() => res.destroy());
  });
  const cuttingUrl = await listen(cutting);
  // A replica that answers when told (admission: one runs, one waits and times out, one is refused)…
  slow = createServer((_req, res) => held.push(res));
  const slowUrl = await listen(slow);
  // …and one that is always unavailable (its 503 is retried, but the service has no other replica).
  busy = createServer((_req, res) => {
    res.writeHead(503);
    res.end("busy");
  });
  const busyUrl = await listen(busy);
  // A prefill/decode pair (docs/pd.md): the PD series.
  pd = await startPdEngines({ prefill: 1, decode: 1 });
  const doc = configDocument(1, [
    {
      name: "chat",
      replicas: [{ id: "r1", url: model.url }],
      model: { name: "llama", format: "openai", prefix: "/v1" },
    },
    {
      name: "routed",
      replicas: [
        { id: "dead", url: "http://127.0.0.1:1" },
        { id: "live", url: model.url },
      ],
      router: { type: "sglang", policy: "round_robin" },
    },
    {
      name: "cached",
      replicas: [{ id: "r1", url: model.url }],
      router: { type: "sglang", policy: "cache_aware", ...CACHE_AWARE_DEFAULTS },
    },
    {
      name: "prefixed",
      replicas: [{ id: "r1", url: model.url }],
      router: { type: "sglang", policy: "prefix_load", ...PREFIX_LOAD_DEFAULTS },
    },
    { name: "asleep", replicas: [], hold: { timeout_ms: 1 } },
    {
      name: "limited",
      replicas: [model.url],
      rate_limits: [{ prefix: "/", key: { type: "ip_address" }, rps: 1 / 60, burst: 0 }],
    },
    { name: "cut", replicas: [cuttingUrl] },
    { name: "busy", replicas: [busyUrl] },
    {
      name: "admitted",
      replicas: [slowUrl],
      admission: { max_concurrency: 1, queue_size: 1, queue_timeout_ms: 20, priority_header: null },
    },
    {
      name: "pd",
      router: {
        type: "sglang",
        policy: "cache_aware",
        pd_disaggregation: true,
        prefill_policy: "cache_aware",
        decode_policy: "power_of_two",
        ...CACHE_AWARE_DEFAULTS,
      },
      replicas: [
        { id: "p1", url: pd.prefill[0]!.url, role: "prefill", bootstrap_port: pd.prefill[0]!.bootstrapPort! },
        { id: "d1", url: pd.decode[0]!.url, role: "decode" },
      ],
    },
    {
      name: "queued",
      replicas: [slowUrl],
      admission: { max_concurrency: 1, queue_size: 0, queue_timeout_ms: 0, priority_header: null },
    },
  ]);
  server = new ProxyServer(DEFAULT_SERVER_SETTINGS, () => {});
  server.apply(doc);
  const port = await server.listen({ host: "127.0.0.1", port: 0 });
  const post = (host: string, body: object) =>
    send(port, { host: `${host}.${DOMAIN}`, path: "/v1/chat/completions", method: "POST", body: JSON.stringify(body) });
  await post("chat", { stream: true, stream_options: { include_usage: true } });
  await post("chat", { stream: true });
  // Round robin over a dead and a live replica: one of two requests tries the dead one first.
  for (let i = 0; i < 2; i++) await post("routed", { messages: [] });
  await post("cached", { messages: [{ role: "user", content: "hello" }] });
  await post("prefixed", { messages: [{ role: "user", content: "hello" }] });
  // PD: decode fails once (the pair is tried again), then the pair answers.
  pd.decode[0]!.fail(1, 503);
  expect((await post("pd", { messages: [{ role: "user", content: "hello" }] })).status).toBe(200);
  expect((await post("asleep", {})).status).toBe(503);
  await post("limited", {});
  expect((await post("limited", {})).status).toBe(429);
  expect((await send(port, { host: `busy.${DOMAIN}` })).status).toBe(503);
  // One runs (held by the replica), the next waits past its 20 ms and gets 503; with no queue, 429.
  const running = send(port, { host: `admitted.${DOMAIN}` });
  await until("the first at the replica", () => held.length === 1);
  expect((await send(port, { host: `admitted.${DOMAIN}` })).status).toBe(503);
  const other = send(port, { host: `queued.${DOMAIN}` });
  await until("the other at the replica", () => held.length === 2);
  expect((await send(port, { host: `queued.${DOMAIN}` })).status).toBe(429);
  for (const res of held.splice(0)) res.end("ok");
  expect((await running).status).toBe(200);
  expect((await other).status).toBe(200);
  await send(port, { host: `cut.${DOMAIN}` }).catch(() => {});
  const agent = agentFamilies({
    configVersion: 1,
    rejected: [{ service: "bad", error: "x", kept: false }],
    certificates: [
      {
        host: `chat.${DOMAIN}`,
        status: "issued",
        not_after: new Date(Date.now() + 86_400_000).toISOString(),
        issued_at: null,
        renew_at: null,
        last_error: null,
        last_error_at: null,
        next_attempt_at: null,
      },
    ],
    connected: true,
    linkChangedAt: Date.now(),
    version: "test",
  });
  // Records are made as responses close: wait until the cut one (the last) is in.
  await until("the cut response's record", () =>
    server.metrics().some((f) => f.name === METRICS.incomplete.name && f.samples.length > 0),
  );
  // The engine signals of the model services' replicas: two scrapes with a request between them
  // (the prefix-cache hit ratio is a rate between scrapes).
  const clock = new FakeClock();
  const engines = new EngineScraper({ clock, random: () => 0 });
  engines.retain(doc);
  await clock.advance(0);
  await until("the engine scraped", () => engines.signals("chat")?.[0]?.state === "fresh");
  await fetch(`${model.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "llama", prompt: "hi" }),
  }).then((r) => r.text());
  const before = model.scrapes;
  await clock.advance(2000);
  await until(
    "the engine scraped again",
    () => model.scrapes > before && engines.signals("chat")?.[0]?.prefix_cache_hit_rate !== null,
  );
  // The host's active health checks of the same replicas (a fake network that answers 200).
  const checks = new HealthChecker({ clock, random: () => 0, fetch: async () => 200 });
  checks.retain({ ...doc, services: doc.services.map((s) => ({ ...s, health: healthDocument(null, true) })) });
  await clock.advance(0);
  // The mesh's counters, as the host's routing process exports them.
  const mesh = new Mesh();
  mesh.routed("cached", "x".repeat(64), "r1");
  mesh.take();
  exposition = renderExposition(
    hostHealthFamilies(
      [...server.metrics(), ...engineFamilies(engines), ...meshFamilies(mesh.counts), ...agent],
      checks,
    ),
  );
  engines.close();
  checks.close();
});

afterAll(async () => {
  await server?.close();
  await model?.close();
  await pd?.close();
  cutting?.closeAllConnections();
  await new Promise((r) => cutting?.close(r));
  for (const s of [slow, busy]) {
    s?.closeAllConnections();
    await new Promise((r) => s?.close(r));
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The metric names of an exposition's samples (`_bucket`, `_sum`, `_count` included). */
const sampleNames = (text: string) =>
  new Set(
    text
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]),
  );

describe("the metrics documentation", () => {
  it("documents every metric of the catalog, and a real exposition has each of them", () => {
    return readFile(path.join(root, "docs/metrics.md"), "utf8").then((page) => {
      const names = sampleNames(exposition);
      for (const spec of Object.values(METRICS)) {
        expect(page, spec.name).toContain(`\`${spec.name}\``);
        const sample = spec.type === "histogram" ? `${spec.name}_bucket` : spec.name;
        expect(names.has(sample), `${sample} in the exposition`).toBe(true);
      }
      const check = spawnSync("promtool", ["check", "metrics"], { input: exposition, encoding: "utf8" });
      expect(`${check.stdout}${check.stderr}`).toBe("");
    });
  });

  it("ships a Grafana dashboard whose every expression is valid PromQL over series that exist", async () => {
    const dashboard = JSON.parse(await readFile(path.join(root, "docs/grafana/gateplane.json"), "utf8")) as {
      panels: { targets?: { expr: string }[] }[];
      templating: { list: { definition: string }[] };
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.length).toBeGreaterThan(20);
    // Grafana's variables, as Grafana fills them in.
    const promql = exprs.map((e) => e.replaceAll("$__rate_interval", "5m").replaceAll("$service", ".*"));
    const rules = [
      "groups:",
      "  - name: gateplane-dashboard",
      "    rules:",
      ...promql.flatMap((expr, i) => [
        `      - record: gateplane:dashboard_expr_${i}`,
        `        expr: ${JSON.stringify(expr)}`,
      ]),
      "",
    ].join("\n");
    const file = path.join(dir, "dashboard-rules.yml");
    await writeFile(file, rules);
    const check = spawnSync("promtool", ["check", "rules", file], { encoding: "utf8" });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
    expect(check.stdout).toContain(`SUCCESS: ${promql.length} rules found`);

    const names = sampleNames(exposition);
    const used = new Set(
      [...exprs, ...dashboard.templating.list.map((v) => v.definition)].flatMap((e) =>
        // Metric names: what is left once label matchers and grouping clauses are taken out.
        [
          ...e
            .replace(/\b(?:by|without)\s*\([^)]*\)/g, "")
            .replace(/\{[^}]*\}/g, "")
            .replace(/label_values\((\w+),[^)]*\)/g, "$1")
            .matchAll(/\b(?:gen_ai|gateplane)_[a-z_]+\b/g),
        ].map((m) => m[0]),
      ),
    );
    expect(used.size).toBeGreaterThan(15);
    for (const name of used) expect(names.has(name), `${name} in a real exposition`).toBe(true);
  });
});
