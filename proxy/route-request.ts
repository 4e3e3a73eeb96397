/**
 * @module
 * Where a request goes, decided from its head alone: `routeRequest` is a pure function of the
 * request line and headers, the routing table in force and the process's HTTPS state. It neither
 * reads a body nor writes an answer, and it changes nothing: what the request's forwarded head must
 * become (the absolute-form authority) is part of the decision, applied by the caller
 * (`dispatch.ts`), which also acts on the rest of it.
 *
 * Which service (or the OpenAI-compatible entrypoint) a request is for comes from its normalized
 * host and its path. A service's own host and `gateway.<domain>` route as they always did. The
 * gateway's bare address — a host that is an IP literal or `localhost`, as a client reaches it when
 * `*.localhost` names do not resolve (most resolvers outside curl and browsers) — serves:
 *  - `/v1`, `/v1/…`: the entrypoint, exactly as on `gateway.<domain>`;
 *  - `/proxy/services/<project>/<service>/…`: that service with the prefix stripped (the form of
 *    dstack's in-server service proxy), exactly as on its own host (auth, limits, everything).
 * Anything else there stays unrouted (404).
 */
import type { IncomingHttpHeaders } from "node:http";
import { isIPv4, isIPv6 } from "node:net";
import { authDenial } from "./auth.ts";
import { isPreflight } from "./cors.ts";
import type { RequestHead } from "./headers.ts";
import { normalizeHost, type RoutingTable, type ServiceRoute, sglangPathAllowed } from "./routes.ts";

/** What routing reads of a request (a `node:http` `IncomingMessage` has all of it). */
export interface RequestLine {
  readonly url?: string;
  readonly method?: string;
  readonly rawHeaders: readonly string[];
  readonly headers: IncomingHttpHeaders;
}

/** What routing reads of the process: the table in force, its header bound, its HTTPS listener. */
export interface RoutingView {
  readonly table: RoutingTable;
  readonly maxHeadersCount: number;
  /** Port of the HTTPS listener (the `Location` of redirects omits 443); null: no HTTPS listener. */
  readonly httpsPort: number | null;
  /** Whether a certificate is served for this (normalized) host. */
  hasCertificate(host: string): boolean;
}

export type Routed =
  /**
   * Forward to the service. `authority`: an absolute-form target's authority, which replaces the
   * Host (`useTargetAuthority`) for what the replica receives; null: keep the head's.
   */
  | { route: ServiceRoute; path: string; authority: string | null }
  /** The OpenAI-compatible entrypoint (`openai-entrypoint.ts`); `authority` as above. */
  | { special: "entrypoint"; table: RoutingTable; path: string; authority: string | null }
  /** A CORS preflight to a model service. */
  | { special: "preflight"; table: RoutingTable; path: string }
  /** `GET /metrics` on the gateway's own address, when its document makes them public (`observe/public-metrics.ts`). */
  | { special: "metrics"; table: RoutingTable; path: string }
  /** A service scaled to zero: wait for a replica (`hold.ts`). */
  | { hold: ServiceRoute; cors: boolean }
  /** Answered by the proxy itself; `service`: the service it was for, when one was found. */
  | { status: number; message: string; json: boolean; cors?: boolean; challenge?: boolean; service?: ServiceRoute }
  /** Plain HTTP to a host we hold a certificate for. */
  | { redirect: string };

/**
 * Origin-form targets pass as they are; absolute-form ones name the host themselves (RFC 9112 §3.2.2):
 * that authority replaces the Host header, for routing and for what the replica receives alike.
 */
function requestTarget(
  url: string,
  head: RequestHead,
): { host: string | undefined; path: string; authority: string | null } | null {
  if (url.startsWith("/")) return { host: head.host, path: url, authority: null };
  if (!/^https?:\/\//i.test(url)) return null;
  try {
    const parsed = new URL(url);
    return { host: parsed.host, path: `${parsed.pathname}${parsed.search}`, authority: parsed.host };
  } catch {
    return null;
  }
}

/** The decision for one request; `secure`: it came over TLS. */
export function routeRequest(req: RequestLine, head: RequestHead, secure: boolean, view: RoutingView): Routed {
  if (head.framingError) return { status: 400, message: `bad request: ${head.framingError}`, json: false };
  if (req.rawHeaders.length > 2 * view.maxHeadersCount) {
    return { status: 431, message: "too many header fields", json: false };
  }
  const target = requestTarget(req.url ?? "", head);
  if (!target) return { status: 400, message: "bad request target", json: false };
  const { authority } = target;
  const host = normalizeHost(target.host ?? "");
  if (!secure && view.httpsPort !== null && view.hasCertificate(host)) {
    const port = view.httpsPort === 443 ? "" : `:${view.httpsPort}`;
    return { redirect: `https://${host}${port}${target.path}` };
  }
  const table = view.table;
  const routed = routeByHost(table, host, target.path);
  if (!routed) return { status: 404, message: `no service for host ${host.slice(0, 253) || "(none)"}`, json: false };
  // Reached on the bare address: plain HTTP to what has a certificate goes where its own host would send it.
  if (routed.host !== host && !secure && view.httpsPort !== null && view.hasCertificate(routed.host)) {
    const port = view.httpsPort === 443 ? "" : `:${view.httpsPort}`;
    return { redirect: `https://${routed.host}${port}${routed.path}` };
  }
  if (routed.kind === "entrypoint") return { special: "entrypoint", table, path: routed.path, authority };
  if (routed.kind === "metrics") return { special: "metrics", table, path: routed.path };
  const { route, path } = routed;
  const cors = route.model !== null;
  if (route.sglangPathsOnly && !sglangPathAllowed(path)) {
    return {
      status: 403,
      message: `path not served by service ${route.name}'s router`,
      json: true,
      cors,
      service: route,
    };
  }
  if (cors && isPreflight(req)) return { special: "preflight", table, path };
  const denied = authDenial(route, table, req.headers.authorization);
  if (denied) return { ...denied, json: true, cors, service: route };
  const empty = route.balancer.replicas.length === 0;
  if (empty && route.holdTimeoutMs === null) {
    return { status: 503, message: `service ${route.name} has no replicas`, json: true, cors, service: route };
  }
  if (route.maxBodySize > 0 && head.contentLength > route.maxBodySize) {
    return {
      status: 413,
      message: `request body larger than client_max_body_size (${route.maxBodySize} bytes)`,
      json: true,
      cors,
      service: route,
    };
  }
  if (empty) return { hold: route, cors };
  return { route, path, authority };
}

export type HostRouting =
  /** `host`: the host the request counts as on (its certificate means HTTPS; see the redirect). */
  | { kind: "service"; route: ServiceRoute; host: string; path: string }
  | { kind: "entrypoint"; host: string; path: string }
  /** The gateway's own metrics (only when the document makes them public). */
  | { kind: "metrics"; host: string; path: string };

const SERVICE_PREFIX = /^\/proxy\/services\/([^/?#]+)\/([^/?#]+)(.*)$/s;

/** Whether a normalized host (no port, lower case) names the server itself rather than a service. */
export function isBareAddress(host: string): boolean {
  if (host === "localhost" || isIPv4(host)) return true;
  return host.startsWith("[") && host.endsWith("]") && isIPv6(host.slice(1, -1));
}

/** Services by `<project>/<name>`, built once per table (tables are immutable). */
const byProjectCache = new WeakMap<RoutingTable, Map<string, ServiceRoute>>();

function serviceOf(table: RoutingTable, project: string, name: string): ServiceRoute | undefined {
  let byProject = byProjectCache.get(table);
  if (!byProject) {
    byProject = new Map();
    for (const route of table.byHost.values()) byProject.set(`${route.project}/${route.name}`, route);
    byProjectCache.set(table, byProject);
  }
  return byProject.get(`${project}/${name}`);
}

/** `host` is normalized (`normalizeHost`); `path` is the request target's path and query. Null: 404. */
export function routeByHost(table: RoutingTable, host: string, path: string): HostRouting | null {
  const route = table.byHost.get(host);
  if (route) return { kind: "service", route, host, path };
  const entrypoint = host !== "" && host === table.entrypointHost;
  if (table.metricsPublic && (entrypoint || isBareAddress(host)) && /^\/metrics(\?|$)/.test(path)) {
    return { kind: "metrics", host, path };
  }
  if (entrypoint) return { kind: "entrypoint", host, path };
  if (!isBareAddress(host)) return null;
  if (path === "/v1" || /^\/v1[/?]/.test(path)) {
    return { kind: "entrypoint", host: table.entrypointHost ?? host, path };
  }
  const match = SERVICE_PREFIX.exec(path);
  if (!match) return null;
  const [, project, name, rest] = match as unknown as [string, string, string, string];
  if (rest !== "" && !rest.startsWith("/") && !rest.startsWith("?")) return null;
  const service = serviceOf(table, project, name);
  if (!service) return null;
  return { kind: "service", route: service, host: service.host, path: rest.startsWith("/") ? rest : `/${rest}` };
}
