/**
 * @module
 * A service's page: where it is reached, its replicas (registered, desired, the autoscaler's
 * reason), each gateway replica's view of it, and charts of its history over the last hour or day
 * (`GET …/services/:name/metrics`): requests/s, error rate, TTFT and ITL p50/p90, tokens/s and
 * replicas desired vs registered, with the scaling decisions marked on every time axis.
 */
import type { Service } from "../../schema/service-api.ts";
import { METRICS_RANGES, type MetricsRange, type ServiceMetrics } from "../../schema/service-metrics.ts";
import { lineChart } from "./chart.ts";
import { type Html, h } from "./html.ts";
import { ago, badge, num, projectPath, secs, table } from "./layout.ts";

const ms = (x: number) => (x < 1 ? `${Math.round(x * 1000)} ms` : `${x.toFixed(1)} s`);

/**
 * A replica's health as the gateway replicas report it (the worst of them, docs/health.md): its
 * state, an open or half-open circuit breaker, and why it is not serving.
 */
function health(r: { state: string; circuit: string; error: string | null } | null): Html {
  if (!r) return h`<span class="muted">not reported</span>`;
  const circuit = r.circuit === "closed" ? null : h` <span class="badge warn">circuit ${r.circuit}</span>`;
  const why = r.error && r.state !== "healthy" ? h`<div class="muted">${r.error}</div>` : null;
  return h`${badge(r.state)}${circuit}${why}`;
}

export function serviceCharts(m: ServiceMetrics, now: number): Html {
  const range = METRICS_RANGES[m.range];
  const from = now - range.seconds * 1000;
  const times = m.points.map((p) => Date.parse(p.t));
  const base = { times, from, to: now, maxGapMs: range.step * 1000 * 1.5 };
  const markers = m.decisions.map((d) => ({
    at: Date.parse(d.at),
    label: `${d.at.slice(11, 19)} UTC: ${d.role ? `${d.role} ` : ""}${d.from ?? "?"} → ${d.to} replicas (${d.reason})`,
  }));
  const p = m.points;
  const charts = [
    lineChart({
      ...base,
      id: "rps",
      title: "Requests/s",
      format: (x) => num(x, 3),
      series: [{ name: "requests/s", color: "#0b5cad", values: p.map((x) => x.requests_per_second) }],
      markers,
    }),
    lineChart({
      ...base,
      id: "errors",
      title: "Error rate",
      format: (x) => `${num(x * 100, 1)}%`,
      series: [{ name: "errors", color: "#b3261e", values: p.map((x) => x.error_rate) }],
      markers,
    }),
    lineChart({
      ...base,
      id: "ttft",
      title: "Time to first token",
      format: ms,
      series: [
        { name: "p50", color: "#0b5cad", values: p.map((x) => x.ttft.p50) },
        { name: "p90", color: "#b35900", values: p.map((x) => x.ttft.p90) },
      ],
      markers,
    }),
    lineChart({
      ...base,
      id: "itl",
      title: "Inter-token latency",
      format: ms,
      series: [
        { name: "p50", color: "#0b5cad", values: p.map((x) => x.itl.p50) },
        { name: "p90", color: "#b35900", values: p.map((x) => x.itl.p90) },
      ],
      markers,
    }),
    lineChart({
      ...base,
      id: "tokens",
      title: "Tokens/s",
      format: (x) => num(x, 1),
      series: [
        { name: "output", color: "#1e6b34", values: p.map((x) => x.tokens_per_second.output) },
        { name: "input", color: "#5b4bb7", values: p.map((x) => x.tokens_per_second.input) },
      ],
      markers,
    }),
    lineChart({
      ...base,
      id: "replicas",
      title: "Replicas",
      format: (x) => (Number.isInteger(x) ? String(x) : ""),
      series: [
        { name: "registered", color: "#0b5cad", values: p.map((x) => x.replicas.registered), step: true },
        { name: "desired", color: "#b35900", values: p.map((x) => x.replicas.desired), step: true },
      ],
      markers,
    }),
  ];
  return h`<div class="charts">${charts}</div>`;
}

export function servicePage(project: string, s: Service, m: ServiceMetrics, now = Date.now()): Html {
  const model = s.configuration.model;
  const scaling = s.scaling;
  const self = projectPath(project, `/services/${encodeURIComponent(s.name)}`);
  const ranges = (Object.keys(METRICS_RANGES) as MetricsRange[]).map((r) =>
    r === m.range ? h`<strong aria-current="true">${r}</strong>` : h`<a href="${self}?range=${r}">${r}</a>`,
  );
  const w = s.traffic?.windows["60"];
  return h`<p class="crumbs"><a href="${projectPath(project)}">${project}</a> › services</p>
<h1>Service ${s.name}</h1>
<dl class="facts">
<dt>Gateway</dt><dd><a href="${projectPath(project, `/gateways/${encodeURIComponent(s.gateway)}`)}">${s.gateway}</a></dd>
<dt>URL</dt><dd><code>${s.url}</code></dd>
${model ? h`<dt>Model</dt><dd data-field="model"><code>${model.name}</code>${s.model_url ? h` at <code>${s.model_url}</code>` : null}</dd>` : null}
<dt>Configuration</dt><dd>version ${s.config_version}, updated ${ago(s.updated_at, now)}</dd>
<dt>Replicas</dt><dd>${s.replicas.length} registered${scaling ? h`, <strong>${scaling.desired_replicas ?? "–"}</strong> desired` : h` <span class="muted">(no autoscaling)</span>`}</dd>
${scaling ? h`<dt>Scaling</dt><dd>${scaling.reason ?? "no decision yet"}${scaling.last_change_at ? h` <span class="muted">(changed ${ago(scaling.last_change_at, now)})</span>` : null}</dd>` : null}
<dt>Last minute</dt><dd>${w ? h`${num(w.requests_per_second, 3)} req/s, errors ${w.error_rate === null ? "–" : `${num(w.error_rate * 100, 1)}%`}, TTFT p50 ${secs(w.ttft.p50)} p90 ${secs(w.ttft.p90)}, ITL p50 ${secs(w.itl.p50)}` : h`<span class="warn">no fresh report from every gateway replica</span>`}</dd>
</dl>
<h2>History</h2>
<nav class="ranges" aria-label="Time range">${ranges}</nav>
${serviceCharts(m, now)}
<h2>Replicas</h2>
${table(
  "Registered replicas: their health and engines as the gateway replicas last reported them",
  ["Id", "URL", "Registered", "Health", "Engine", "Running", "Waiting", "KV cache"],
  s.replicas.map((r) => {
    // What the gateway read of the replica's model server (`engine-signals.md`); a stale or failed
    // read is shown as such, never as the last numbers.
    const e = r.engine ?? null;
    const fresh = e?.state === "fresh";
    const cell = (x: number | null | undefined) => (fresh && x !== null && x !== undefined ? num(x, 0) : "–");
    return h`<tr><td><code>${r.id}</code></td><td><code>${r.url}</code></td><td>${ago(r.registered_at, now)}</td><td>${health(r.health ?? null)}</td><td>${e ? h`${e.engine ?? ""} ${badge(e.state)}` : h`<span class="muted">not reported</span>`}</td><td>${cell(e?.running)}</td><td>${cell(e?.waiting)}</td><td>${fresh && e?.kv_cache_usage !== null && e?.kv_cache_usage !== undefined ? `${num(e.kv_cache_usage * 100, 0)}%` : "–"}</td></tr>`;
  }),
  "No replica registered.",
)}
<h2>On each gateway replica</h2>
${table(
  "The service on each gateway replica",
  ["#", "Config", "Requests/s (60 s)", "Errors", "TTFT p50", "Report"],
  s.gateway_replicas.map((r) => {
    const t = r.traffic?.windows["60"];
    return h`<tr><th scope="row">${r.replica_num}</th><td>${badge(r.state)} <span class="muted">document ${r.applied_version ?? "–"}</span>${r.error ? h`<div class="bad">${r.error}</div>` : null}</td><td>${t ? num(t.requests_per_second, 3) : "–"}</td><td>${t ? t.errors : "–"}</td><td>${t ? secs(t.ttft.p50) : "–"}</td><td>${t ? "fresh" : h`<span class="badge warn" data-stale="true">stale or none</span>`}</td></tr>`;
  }),
)}`;
}
