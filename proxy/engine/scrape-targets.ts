/**
 * @module
 * Which replicas a configuration document has the host scrape, and where. `engine: vllm | sglang`
 * always; `engine: none` never; no `engine:` detects the engine from the exposition, for LLM
 * services only (a `model:` or a `router:`) — an arbitrary HTTP service is not asked for a
 * `/metrics` it never offered.
 */
import type { ConfigDocument, ConfigService } from "../../schema/config-document.ts";
import type { Engine } from "../../schema/engine.ts";

export const METRICS_PATH = "/metrics";

export interface ScrapeTarget {
  service: string;
  id: string;
  url: string;
  /** The service's `engine:`; null: detect. */
  expected: "vllm" | "sglang" | null;
}

/** A replica scrape's identity: a new URL is a new replica (its state starts over). */
export const targetKey = (service: string, id: string, url: string) => `${service}\u0000${id}\u0000${url}`;

/** Whether a service's engines are scraped: `engine: vllm | sglang`, or none set on an LLM service. */
export function scraped(s: ConfigService): boolean {
  const engine = s.engine ?? null;
  return engine === null ? s.model !== null || s.router !== null : engine !== "none";
}

/** The services whose engines are scraped, replicas or not. */
export function scrapedServices(doc: ConfigDocument | null): Set<string> {
  return new Set((doc?.services ?? []).filter(scraped).map((s) => s.name));
}

/** The replicas a document asks to scrape, with their expected engine (null: detect). */
export function scrapeTargets(doc: ConfigDocument | null): ScrapeTarget[] {
  return (doc?.services ?? []).flatMap(serviceTargets);
}

/** One service's replicas to scrape (none when its engines are not scraped). */
export function serviceTargets(s: ConfigService): ScrapeTarget[] {
  if (!scraped(s)) return [];
  const expected = (s.engine ?? null) as Exclude<Engine, "none"> | null;
  return s.replicas.map((r) => ({ service: s.name, id: r.id, url: r.url, expected }));
}

/** `<replica url>/metrics`: the replica's own path prefix kept, as its API is reached under it. */
export function metricsUrl(replicaUrl: string, path = METRICS_PATH): string {
  return replicaUrl.replace(/\/+$/, "") + path;
}
