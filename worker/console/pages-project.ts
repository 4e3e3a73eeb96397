/**
 * @module
 * The console's other pages: sign-in, the projects a token may see, a project's gateways and
 * services, its event log (filtered by gateway and type) and its webhooks with their deliveries.
 */
import type { Gateway, GatewayEvent, Project } from "../../schema/api.ts";
import { EVENT_TYPES } from "../../schema/events.ts";
import type { Service } from "../../schema/service-api.ts";
import type { Delivery, Webhook } from "../../schema/webhooks.ts";
import { type Html, h } from "./html.ts";
import { ago, badge, num, projectPath, table } from "./layout.ts";
import { replicaStale } from "./pages-gateway.ts";

export function signInPage(error: string | null): Html {
  return h`<h1>Sign in</h1>
<p>Sign in with an API token (<code>gpt_…</code>, or the admin token). It is kept in an HttpOnly cookie for this console only; sign out to forget it.</p>
<form class="signin" method="post" action="/console/sign-in">
${error ? h`<p class="error" role="alert" id="sign-in-error">${error}</p>` : null}
<label for="token">API token<input id="token" name="token" type="password" autocomplete="current-password" required${error ? h` aria-describedby="sign-in-error"` : null}></label>
<button type="submit">Sign in</button>
</form>`;
}

export function projectsPage(projects: Project[]): Html {
  return h`<h1>Projects</h1>
${table(
  "Projects",
  ["Project", "Your role", "Default gateway", "Created"],
  projects.map(
    (p) =>
      h`<tr><td><a href="${projectPath(p.name)}">${p.name}</a></td><td>${p.role ?? "–"}</td><td>${p.default_gateway ?? "–"}</td><td>${p.created_at.slice(0, 10)}</td></tr>`,
  ),
  "No project you are a member of.",
)}`;
}

export function projectPage(project: Project, gateways: Gateway[], services: Service[], now = Date.now()): Html {
  return h`<h1>Project ${project.name}</h1>
${project.role === "member" ? h`<p class="muted">Read-only: your role in this project is member.</p>` : null}
<h2>Gateways</h2>
${table(
  "Gateways",
  ["Name", "Status", "Backend", "Address", "Replicas", "Default"],
  gateways.map((g) => {
    const running = g.replicas.filter((r) => r.status === "running").length;
    const stale = g.replicas.some((r) => replicaStale(r, now));
    return h`<tr><td><a href="${projectPath(project.name, `/gateways/${encodeURIComponent(g.name)}`)}">${g.name}</a></td><td>${badge(g.to_be_deleted ? "deleting" : g.status)}</td><td>${g.backend}, ${g.region}</td><td><code>${g.hostname ?? "–"}</code></td><td>${running}/${g.replicas.length} running${stale ? h` <span class="badge warn">stale</span>` : null}</td><td>${g.default ? "✓" : ""}</td></tr>`;
  }),
  "No gateway.",
)}
<h2>Services</h2>
${table(
  "Services",
  ["Name", "Gateway", "Replicas", "Requests/s (60 s)", "Scaling"],
  services.map((s) => {
    const w = s.traffic?.windows["60"];
    return h`<tr><td><a href="${projectPath(project.name, `/services/${encodeURIComponent(s.name)}`)}">${s.name}</a></td><td>${s.gateway}</td><td>${s.replicas.length}${s.scaling ? h` / ${s.scaling.desired_replicas ?? "–"} desired` : null}</td><td>${w ? num(w.requests_per_second, 3) : "–"}</td><td>${s.scaling?.reason ?? "–"}</td></tr>`;
  }),
  "No service.",
)}`;
}

export function eventsPage(
  project: string,
  events: GatewayEvent[],
  filters: { gateway: string; type: string },
  gateways: string[],
): Html {
  const option = (value: string, selected: string, label = value) =>
    h`<option value="${value}"${value === selected ? h` selected` : null}>${label}</option>`;
  return h`<h1>Events</h1>
<form class="filters" method="get" action="${projectPath(project, "/events")}">
<label for="f-gateway">Gateway<select id="f-gateway" name="gateway">${option("", filters.gateway, "any")}${gateways.map((g) => option(g, filters.gateway))}</select></label>
<label for="f-type">Type<select id="f-type" name="type">${option("", filters.type, "any")}${EVENT_TYPES.map((t) => option(t, filters.type))}</select></label>
<button type="submit">Filter</button>
</form>
${table(
  "Events, newest first",
  ["Time", "Gateway", "Message", "Type", "Actor"],
  [...events]
    .reverse()
    .map(
      (e) =>
        h`<tr data-event="${e.id}"><td title="${e.created_at}">${ago(e.created_at)}</td><td>${e.gateway_name ?? "–"}</td><td>${e.message}${e.data ? h`<div class="muted"><code>${JSON.stringify(e.data)}</code></div>` : null}</td><td>${e.type ?? "–"}</td><td>${e.actor ?? "–"}</td></tr>`,
    ),
  "No event matches.",
)}`;
}

export function webhooksPage(project: string, hooks: { hook: Webhook; deliveries: Delivery[] }[]): Html {
  return h`<p class="crumbs"><a href="${projectPath(project)}">${project}</a> › webhooks</p>
<h1>Webhooks</h1>
${hooks.length === 0 ? h`<p class="muted">No webhook. <code>gateplane webhook create</code> adds one.</p>` : null}
${hooks.map(
  ({ hook, deliveries }) => h`<section aria-labelledby="wh-${hook.id}">
<h2 id="wh-${hook.id}"><code>${hook.url}</code> ${badge(hook.enabled ? "enabled" : "disabled")}</h2>
<dl class="facts">
<dt>Description</dt><dd data-field="description">${hook.description ?? "–"}</dd>
<dt>Events</dt><dd>${hook.events.join(", ") || "all"}</dd>
<dt>Health</dt><dd>${hook.consecutive_failures} failures in a row${hook.last_success_at ? h`, last success ${ago(hook.last_success_at)}` : null}${hook.disabled_reason ? h` <span class="bad">${hook.disabled_reason}</span>` : null}</dd>
</dl>
<h3>Last deliveries</h3>
${table(
  `Deliveries of ${hook.url}`,
  ["Event", "State", "Attempts", "Last status", "Last error", "Created"],
  deliveries.map(
    (d) =>
      h`<tr><td>${d.event_type}${d.gateway ? h` <span class="muted">${d.gateway}</span>` : null}</td><td>${badge(d.state)}</td><td>${d.attempts}</td><td>${d.last_status ?? "–"}</td><td>${d.last_error ?? ""}${d.response_excerpt ? h`<div class="muted"><code>${d.response_excerpt}</code></div>` : null}</td><td>${ago(d.created_at)}</td></tr>`,
  ),
  "No delivery yet.",
)}
</section>`,
)}`;
}
