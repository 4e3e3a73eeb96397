/**
 * @module
 * Which service (or the OpenAI-compatible entrypoint) a request is for, from its normalized host
 * and its path. A service's own host and `gateway.<domain>` route as they always did. The gateway's
 * bare address — a host that is an IP literal or `localhost`, as a client reaches it when
 * `*.localhost` names do not resolve (most resolvers outside curl and browsers) — serves:
 *  - `/v1`, `/v1/…`: the entrypoint, exactly as on `gateway.<domain>`;
 *  - `/proxy/services/<project>/<service>/…`: that service with the prefix stripped (the form of
 *    dstack's in-server service proxy), exactly as on its own host (auth, limits, everything).
 * Anything else there stays unrouted (404).
 */
import { isIPv4, isIPv6 } from "node:net";
import type { RoutingTable, ServiceRoute } from "./routes.ts";

export type HostRouting =
  /** `host`: the host the request counts as on (its certificate means HTTPS; see the redirect). */
  | { kind: "service"; route: ServiceRoute; host: string; path: string }
  | { kind: "entrypoint"; host: string; path: string };

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
  if (host !== "" && host === table.entrypointHost) return { kind: "entrypoint", host, path };
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
