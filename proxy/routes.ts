/**
 * @module
 * Configuration document → routing table: which service owns each Host, with its balancer, limits
 * and counters. A table is immutable once built; applying a document builds a new one and swaps it
 * in, so requests that started under the old table finish on it. Replica health and in-flight
 * counts carry over to the new table for replicas whose id and URL did not change; rate-limit
 * rules are compiled here once per document, and their zones (ids from the rules' content) keep
 * their buckets across documents that keep the rule.
 */

import * as v from "valibot";
import { ConfigDocument, type ConfigService } from "../schema/config-document.ts";
import { formatIssue, fromValibot } from "../schema/issues.ts";
import { sameJson } from "../schema/json.ts";
import { type ServiceResilience, serviceResilience } from "./admission/service-resilience.ts";
import { TokenSet } from "./auth.ts";
import { Balancer, type HealthPolicy, ReplicaState } from "./balancer.ts";
import { ConfigRejectedError } from "./errors.ts";
import { normalizeHost } from "./headers.ts";
import type { PassiveEvent } from "./health/passive-share.ts";
import { serviceHealth } from "./health/service-health.ts";
import type { MetricsRegistry } from "./observe/registry.ts";
import type { ServiceMeter } from "./observe/service-meter.ts";
import { buildPdRoute, type PdRoute } from "./pd/pd-route.ts";
import { createFallbackPolicy, createPolicy } from "./policies/index.ts";
import { compileRateLimits, type RateLimitRule, rateLimitProblems } from "./rate-limit.ts";
import type { ZoneSpec } from "./rate-limit-store.ts";
import { sharesState } from "./routing-state.ts";
import type { RequestCounter, StatsRegistry } from "./stats.ts";
import { Origins, TableIndex } from "./table-index.ts";

export { normalizeHost } from "./headers.ts";

/** What a service serves through the OpenAI-compatible entrypoint. */
export interface ModelRoute {
  readonly name: string;
  /** Path prefix of the OpenAI API on the replicas, without a trailing slash (`/v1`, or `` for `/`). */
  readonly prefix: string;
}

export interface ServiceRoute {
  readonly name: string;
  readonly project: string;
  readonly host: string;
  /** Set for services with a `model`: listed and routed by the entrypoint, and CORS-enabled. */
  readonly model: ModelRoute | null;
  /** Requests need a project member's token (`auth.ts`). */
  readonly auth: boolean;
  /** Largest request body in bytes; 0 = no limit (nginx's `client_max_body_size 0`). */
  readonly maxBodySize: number;
  /** Idle limit while waiting for the replica's headers and between body chunks (and on tunnels). */
  readonly readTimeoutMs: number;
  /** `Strict-Transport-Security` value sent on this service's HTTPS responses, or null. */
  readonly hsts: string | null;
  /** `rate_limits`, longest prefix first (`rate-limit.ts`). */
  readonly rateLimits: readonly RateLimitRule[];
  /** Router services (`router: sglang`) expose only what SGLang serves ({@link sglangPathAllowed}). */
  readonly sglangPathsOnly: boolean;
  /** Scales to zero: with no replica, a request waits this long for one (`hold.ts`); null = 503 at once. */
  readonly holdTimeoutMs: number | null;
  readonly balancer: Balancer;
  /** The effective router the balancer's policy was made for (null = round robin). */
  readonly router: ConfigService["router"];
  readonly counter: RequestCounter;
  /** This process's metrics of the service (null when metrics are off). */
  readonly metrics: ServiceMeter | null;
  /** `usage: include`: streamed completions are asked for their usage (`observe/include-usage.ts`). */
  readonly usageInclude: boolean;
  /** Retries and admission control (`admission/service-resilience.ts`). */
  readonly resilience: ServiceResilience;
  /** Prefill/decode disaggregation (`pd/pd-route.ts`); null: every replica serves whole requests. */
  readonly pd: PdRoute | null;
}

export interface RoutingTable {
  /** Document version, 0 before the first document. */
  readonly version: number;
  /** Services by name. */
  readonly byName: ReadonlyMap<string, ServiceRoute>;
  /** Services by normalized host. */
  readonly byHost: ReadonlyMap<string, ServiceRoute>;
  /** `gateway.<domain>`, reserved for the OpenAI-compatible entrypoint. */
  readonly entrypointHost: string | null;
  /** Model services by model name (the first service wins when two declare the same name). */
  readonly byModel: ReadonlyMap<string, ServiceRoute>;
  /** Unix seconds reported as the models' `created` (the document's `generated_at`). */
  readonly createdAt: number;
  /** The origins of every replica (`table-index.ts`). */
  readonly origins: Origins;
  /** The services' names in the document's order (made when read, after a delta). */
  readonly services: readonly string[];
  /** The project members' tokens, for services with `auth`. */
  readonly tokens: TokenSet;
  /** Every rate-limit zone of the document (made when read: a delta follows its own services' zones). */
  readonly zones: readonly ZoneSpec[];
  /** What the table derives from its routes, which a delta changes in place (`table-index.ts`). */
  readonly index: TableIndex;
  /** `observability.metrics.public`: `GET /metrics` on the gateway's address, with a service token. */
  readonly metricsPublic: boolean;
}

export const EMPTY_TABLE: RoutingTable = {
  version: 0,
  byName: new Map(),
  byHost: new Map(),
  entrypointHost: null,
  byModel: new Map(),
  createdAt: 0,
  origins: new Origins(),
  services: [],
  tokens: new TokenSet([]),
  zones: [],
  index: new TableIndex(),
  metricsPublic: false,
};

/**
 * `usage:` of a service: "include" or "as_requested" (the default, also when absent: a document
 * handed over as validated by a caller that predates the field).
 */
export const usageInclude = (service: ConfigService): boolean => service.usage === "include";

/** `observability.metrics.public` of a document (false when absent, as above). */
export const metricsPublic = (doc: Pick<ConfigDocument, "observability">): boolean =>
  doc.observability?.metrics?.public === true;

/**
 * Whether a router service exposes `path` (with its query): `/generate`, `/v1/…` and `/chat/completions`,
 * as dstack's gateway did; everything else (the router's worker API, `/flush_cache`, metrics…) is 403.
 * Dot segments and encoded slashes are refused too, so `/v1/../add_worker` cannot reach what it names.
 */
export function sglangPathAllowed(path: string): boolean {
  const end = path.search(/[?#]/);
  const pathname = end === -1 ? path : path.slice(0, end);
  if (/%2f|%5c|\\/i.test(pathname)) return false;
  const segments = pathname.split("/").map((s) => s.replace(/%2e/gi, "."));
  if (segments.some((s) => s === "." || s === "..")) return false;
  const under = (prefix: string) => pathname === prefix || pathname.startsWith(`${prefix}/`);
  return under("/generate") || pathname.startsWith("/v1/") || under("/chat/completions");
}

const HOST_PATTERN = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

function urlProblem(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `invalid URL ${JSON.stringify(url)}`;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    return `expected an http or https URL, got ${JSON.stringify(url)}`;
  if (parsed.username || parsed.password) return "credentials in a replica URL are not supported";
  if (parsed.search || parsed.hash) return "a replica URL takes no query or fragment";
  return null;
}

/** Problems valibot cannot see: clashing hosts and names, unusable URLs and limits. */
export function documentProblems(doc: ConfigDocument): string[] {
  const problems: string[] = [];
  const hosts = new Map<string, number>();
  const names = new Map<string, number>();
  const entrypoint = entrypointProblems(doc, problems);
  doc.services.forEach((service, i) => {
    const at = `services[${i}]`;
    const host = normalizeHost(service.host);
    problems.push(...serviceProblems(service, at, entrypoint));
    const sameHost = hosts.get(host);
    if (sameHost !== undefined) problems.push(`${at}.host: ${host} is already the host of services[${sameHost}]`);
    else hosts.set(host, i);
    const sameName = names.get(service.name);
    if (sameName !== undefined)
      problems.push(`${at}.name: ${service.name} is already the name of services[${sameName}]`);
    else names.set(service.name, i);
  });
  return problems;
}

/** The entrypoint's host (normalized), or null; pushes its problem when it is not a host name. */
export function entrypointProblems(head: Pick<ConfigDocument, "entrypoint">, problems: string[]): string | null {
  const entrypoint = head.entrypoint ? normalizeHost(head.entrypoint.host) : null;
  if (head.entrypoint && !HOST_PATTERN.test(entrypoint ?? "")) {
    problems.push(`entrypoint.host: expected a host name, got ${JSON.stringify(head.entrypoint.host)}`);
  }
  return entrypoint;
}

/** One service's own problems (its host, rate limits, replicas), the clashes with others aside. */
export function serviceProblems(service: ConfigService, at: string, entrypoint: string | null): string[] {
  const problems: string[] = [];
  const host = normalizeHost(service.host);
  if (!HOST_PATTERN.test(host)) problems.push(`${at}.host: expected a host name, got ${JSON.stringify(service.host)}`);
  else if (host === entrypoint) problems.push(`${at}.host: ${host} is reserved for the entrypoint`);
  // Numbers (body size, timeouts, HSTS, hold) are bounded by the document's schema (`schema/limits.ts`).
  problems.push(...rateLimitProblems(service.rate_limits, at));
  const ids = new Set<string>();
  service.replicas.forEach((replica, j) => {
    if (ids.has(replica.id)) problems.push(`${at}.replicas[${j}].id: ${replica.id} appears twice`);
    ids.add(replica.id);
    const problem = urlProblem(replica.url);
    if (problem) problems.push(`${at}.replicas[${j}].url: ${problem}`);
  });
  return problems;
}

/** The rate-limit zones of a validated document (the parent process keeps the host's buckets without a routing table). */
export function documentZones(doc: ConfigDocument | null): ZoneSpec[] {
  return doc ? doc.services.flatMap((service) => compileRateLimits(service).map((rule) => rule.zone)) : [];
}

/** Validates a document completely (schema, then cross-field rules) or throws {@link ConfigRejectedError}. */
export function parseDocument(input: unknown): ConfigDocument {
  const result = v.safeParse(ConfigDocument, input);
  const version =
    typeof input === "object" && input !== null && typeof (input as { version?: unknown }).version === "number"
      ? (input as { version: number }).version
      : null;
  if (!result.success) throw new ConfigRejectedError(version, fromValibot(result.issues).map(formatIssue));
  const problems = documentProblems(result.output);
  if (problems.length > 0) throw new ConfigRejectedError(result.output.version, problems);
  return result.output;
}

export interface TableDeps {
  stats: StatsRegistry;
  /** This process's metrics, already following `doc` (null when they are off). */
  metrics?: MetricsRegistry | null;
  health: HealthPolicy;
  log: (line: string) => void;
  /** The processes serving the host (`settings.processShares`), which split admission limits; default 1. */
  shares?: number;
  /** Where passive-health changes go for the host's other processes (`health/passive-share.ts`); absent: alone. */
  share?: (event: PassiveEvent) => void;
}

const replicaKey = (id: string, url: string) => `${id}\u0000${url}`;

/** Builds the table for a validated document, reusing `previous`'s replica state where it still applies. */
export function buildRoutingTable(doc: ConfigDocument, previous: RoutingTable, deps: TableDeps): RoutingTable {
  const byName = new Map<string, ServiceRoute>();
  const byHost = new Map<string, ServiceRoute>();
  const byModel = new Map<string, ServiceRoute>();
  for (const service of doc.services) {
    const route = buildRoute(service, previous.byName.get(service.name), deps);
    byName.set(route.name, route);
    byHost.set(route.host, route);
    if (route.model && !byModel.has(route.model.name)) byModel.set(route.model.name, route);
  }
  const index = new TableIndex();
  for (const route of byHost.values()) index.add(route);
  return {
    version: doc.version,
    byName,
    byHost,
    byModel,
    ...tableEnvelope(doc),
    origins: index.origins,
    services: doc.services.map((s) => s.name),
    zones: routeZones(byHost.values()),
    index,
  };
}

/** What a table takes from a document's envelope (a whole document's, or a delta's new `head`). */
export function tableEnvelope(
  head: Pick<ConfigDocument, "entrypoint" | "generated_at" | "service_tokens" | "observability">,
): Pick<RoutingTable, "entrypointHost" | "createdAt" | "tokens" | "metricsPublic"> {
  const generatedAt = Date.parse(head.generated_at);
  return {
    entrypointHost: head.entrypoint ? normalizeHost(head.entrypoint.host) : null,
    createdAt: Number.isFinite(generatedAt) ? Math.floor(generatedAt / 1000) : Math.floor(Date.now() / 1000),
    tokens: new TokenSet(head.service_tokens),
    metricsPublic: metricsPublic(head),
  };
}

/** The rate-limit zones of `routes`. */
export function routeZones(routes: Iterable<ServiceRoute>): ZoneSpec[] {
  const zones: ZoneSpec[] = [];
  for (const route of routes) for (const rule of route.rateLimits) zones.push(rule.zone);
  return zones;
}

/** One service's route; `before` is its route in the table in force, whose replica and policy state it keeps. */
export function buildRoute(service: ConfigService, before: ServiceRoute | undefined, deps: TableDeps): ServiceRoute {
  const known = new Map<string, ReplicaState>();
  if (before) for (const r of before.balancer.replicas) known.set(replicaKey(r.id, r.url), r);
  const replicas = service.replicas.map(
    (r) => known.get(replicaKey(r.id, r.url)) ?? new ReplicaState(service.name, r.id, r.url),
  );
  // The policy keeps its state (round-robin counter, prefix tree) while the router is unchanged.
  let policy = before && sameJson(before.router, service.router) ? before.balancer.policy : null;
  if (policy) policy.retain(replicas);
  // The host's routing state decides for a policy with shared state; this one only when it does not answer.
  else if (service.router && sharesState(service.router)) policy = createFallbackPolicy(service.router, replicas);
  else policy = createPolicy(service.router, replicas);
  const health = serviceHealth(service.health);
  return {
    name: service.name,
    project: service.project,
    host: normalizeHost(service.host),
    model: service.model ? { name: service.model.name, prefix: service.model.prefix.replace(/\/+$/, "") } : null,
    auth: service.auth,
    maxBodySize: service.client_max_body_size,
    readTimeoutMs: service.read_timeout_ms,
    hsts: service.hsts
      ? `max-age=${service.hsts.max_age}${service.hsts.include_subdomains ? "; includeSubDomains" : ""}`
      : null,
    balancer: new Balancer(replicas, deps.health, deps.log, policy, health, Math.random, deps.share ?? null),
    router: service.router,
    rateLimits: compileRateLimits(service),
    sglangPathsOnly: service.router?.type === "sglang",
    holdTimeoutMs: service.hold?.timeout_ms ?? null,
    counter: deps.stats.counter(service.name),
    metrics: deps.metrics?.service(service.name) ?? null,
    usageInclude: usageInclude(service),
    resilience: serviceResilience(service, before?.resilience, deps.shares ?? 1),
    pd: buildPdRoute(service, replicas, before?.pd ?? null, before?.router ?? null, (members, policy) => {
      return new Balancer(members, deps.health, deps.log, policy, health, Math.random, deps.share ?? null);
    }),
  };
}
