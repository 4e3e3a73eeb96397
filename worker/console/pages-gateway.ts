/**
 * @module
 * A gateway's page: status, addresses, DNS records to set, router, and per replica its status, the
 * configuration version it applied, its agent (stale when silent past a minute) and certificates.
 */
import type { CertificateState } from "../../schema/agent-protocol.ts";
import type { Gateway, GatewayReplica } from "../../schema/api.ts";
import type { Service } from "../../schema/service-api.ts";
import { type Html, h } from "./html.ts";
import { ago, badge, projectPath, table } from "./layout.ts";

/** An agent silent for longer than this is shown stale (its reports: every 5 s; the API's bound: 60 s). */
export const STALE_AFTER_MS = 60_000;

export function replicaStale(r: GatewayReplica, now = Date.now()): string | null {
  if (r.status !== "running") return null;
  if (!r.agent?.last_seen_at) return "no report from its agent yet";
  const age = now - Date.parse(r.agent.last_seen_at);
  return age > STALE_AFTER_MS ? `stale: last report ${ago(r.agent.last_seen_at, now)}` : null;
}

function certificate(c: CertificateState, now: number): Html {
  const expires = c.not_after ? Date.parse(c.not_after) : null;
  const soon = expires !== null && expires - now < 14 * 86_400_000;
  return h`<li><code>${c.host}</code> ${badge(c.status)}${c.not_after ? h` <span class="${soon ? "warn" : ""}">expires ${c.not_after.slice(0, 10)} (${ago(c.not_after, now)})</span>` : null}${c.last_error ? h` <span class="bad">${c.last_error}</span>` : null}</li>`;
}

export function gatewayPage(project: string, g: Gateway, services: Service[], now = Date.now()): Html {
  const router = g.configuration.router;
  const mine = services.filter((s) => s.gateway === g.name);
  const replicas = g.replicas.map((r) => {
    const stale = replicaStale(r, now);
    const applied = r.config.applied_version;
    const inSync = applied !== null && applied >= r.config.desired_version;
    return h`<tr data-replica="${r.replica_num}">
<th scope="row">${r.replica_num}</th>
<td>${badge(r.status)}${r.status_message ? h`<div class="muted">${r.status_message}</div>` : null}</td>
<td><code>${r.hostname ?? "–"}</code><div class="muted">${r.region}</div></td>
<td><span class="${inSync ? "ok" : "warn"}">${applied ?? "none"} / ${r.config.desired_version}</span>${r.config.error ? h`<div class="bad">${r.config.error}</div>` : null}${(r.config.rejected_services ?? []).map((x) => h`<div class="bad">${x.service}: ${x.error}</div>`)}</td>
<td>${r.agent ? h`${r.agent.version ?? "?"}, seen ${ago(r.agent.last_seen_at, now)}` : "–"}${stale ? h` <span class="badge warn" data-stale="true">${stale}</span>` : null}</td>
<td>${r.routers?.length ? r.routers.map((x) => h`<div>${x.service}: ${x.mode}${x.reason ? h` <span class="muted">(${x.reason})</span>` : null}</div>`) : "–"}</td>
<td>${r.certificates?.length ? h`<ul>${r.certificates.map((c) => certificate(c, now))}</ul>` : "–"}</td>
</tr>`;
  });
  const tags = Object.entries(g.configuration.tags ?? {});
  return h`<p class="crumbs"><a href="${projectPath(project)}">${project}</a> › gateways</p>
<h1>Gateway ${g.name} ${badge(g.to_be_deleted ? "deleting" : g.status)}</h1>
${g.status_message ? h`<p class="warn">${g.status_message}</p>` : null}
<dl class="facts">
<dt>Backend, region</dt><dd>${g.backend}, ${g.region}</dd>
<dt>Address</dt><dd><code>${g.hostname ?? "– (see replicas)"}</code></dd>
<dt>Domain</dt><dd><code>${g.wildcard_domain ?? "–"}</code></dd>
<dt>Default</dt><dd>${g.default ? "yes" : "no"}</dd>
<dt>Router</dt><dd>${router ? `${router.type} (${router.policy})` : "built-in (proxy)"}</dd>
<dt>Tags</dt><dd>${tags.length ? tags.map(([k, v]) => h`<span class="badge muted" data-tag="${k}">${k}=${v}</span> `) : "–"}</dd>
<dt>Created</dt><dd>${g.created_at}</dd>
</dl>
<h2>Replicas</h2>
${table("Gateway replicas", ["#", "Status", "Address", "Config applied / desired", "Agent", "Router", "Certificates"], replicas)}
<h2>DNS records to set</h2>
${table(
  "DNS records",
  ["Name", "Type", "Value"],
  g.dns_records.map(
    (d) => h`<tr><td><code>${d.name}</code></td><td>${d.type}</td><td><code>${d.value}</code></td></tr>`,
  ),
  "None: the gateway has no domain, or no address yet.",
)}
<h2>Services</h2>
${table(
  "Services on this gateway",
  ["Name", "URL", "Replicas"],
  mine.map(
    (s) =>
      h`<tr><td><a href="${projectPath(project, `/services/${encodeURIComponent(s.name)}`)}">${s.name}</a></td><td><code>${s.url}</code></td><td>${s.replicas.length}</td></tr>`,
  ),
)}`;
}
