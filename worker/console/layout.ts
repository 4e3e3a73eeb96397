/**
 * @module
 * The console's page shell (skip link, header, project navigation, sign-out, live-refresh
 * `<main>`), its security headers, and the small formatters the pages share.
 */
import { type Html, h, type Value } from "./html.ts";

/** No inline script or style anywhere: scripts and styles come from `/console/assets/` only. */
export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  // Not no-referrer: with it, browsers send `Origin: null` on the same-origin POSTs the CSRF check reads.
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
  "x-frame-options": "DENY",
};

export interface Shell {
  title: string;
  /** The signed-in user; null on the sign-in page. */
  user: string | null;
  project?: { name: string; role: string | null } | null;
  /** Refresh `<main>` from the server every so many ms (0: never). */
  refreshMs?: number;
}

export const projectPath = (project: string, rest = "") => `/console/p/${encodeURIComponent(project)}${rest}`;

export function page(shell: Shell, body: Value): Html {
  const p = shell.project;
  return h`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${shell.title} · Gateplane console</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/console">Gateplane</a>
${
  p
    ? h`<nav aria-label="Project"><ul>
<li><a href="/console">Projects</a></li>
<li><a href="${projectPath(p.name)}">${p.name}</a> <span class="muted">(${p.role ?? "viewer"})</span></li>
<li><a href="${projectPath(p.name, "/events")}">Events</a></li>
<li><a href="${projectPath(p.name, "/webhooks")}">Webhooks</a></li>
</ul></nav>`
    : null
}
${
  shell.user
    ? h`<form method="post" action="/console/sign-out"><span class="muted">Signed in as <strong>${shell.user}</strong></span><button type="submit" class="link">Sign out</button></form>`
    : null
}
</header>
<p id="live-status" role="status" aria-live="polite" class="muted"></p>
<main id="main" tabindex="-1"${shell.refreshMs ? h` data-refresh="${shell.refreshMs}"` : null}>
${body}
</main>
</body>
</html>`;
}

/** "3 min ago" from an ISO time, relative to `now`. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return iso;
  if (s < 0) return `in ${until(-s)}`;
  return `${until(s)} ago`;
}

function until(s: number): string {
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

const STATUS_CLASS: Record<string, string> = {
  running: "ok",
  fresh: "ok",
  healthy: "ok",
  unhealthy: "bad",
  ejected: "bad",
  unsupported: "muted",
  in_sync: "ok",
  issued: "ok",
  delivered: "ok",
  failed: "bad",
  rejected: "bad",
  terminated: "muted",
  dead: "bad",
};

export const badge = (status: string): Html =>
  h`<span class="badge ${STATUS_CLASS[status] ?? "warn"}">${status}</span>`;

/** A table in a horizontally scrolling wrapper (phones), with a caption for screen readers. */
export function table(caption: string, head: readonly string[], rows: readonly Value[], empty = "None yet."): Html {
  if (rows.length === 0) return h`<p class="muted">${empty}</p>`;
  return h`<div class="wrap"><table><caption class="sr-only">${caption}</caption><thead><tr>${head.map((x) => h`<th scope="col">${x}</th>`)}</tr></thead><tbody>${rows}</tbody></table></div>`;
}

export const num = (x: number | null | undefined, digits = 2): string =>
  x === null || x === undefined ? "–" : Number(x.toFixed(digits)).toString();

/** Seconds as ms or s. */
export const secs = (x: number | null | undefined): string =>
  x === null || x === undefined ? "–" : x < 1 ? `${Math.round(x * 1000)} ms` : `${x.toFixed(2)} s`;
