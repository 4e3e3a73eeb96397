/**
 * @module
 * The host's engine signals as metric families (`observe/catalog.ts`, docs/metrics.md): the figures
 * policies read, only while fresh (a stale number would look current on a dashboard), the state of
 * every scraped replica, the age of its last good read, and its scrapes by result.
 */
import { METRICS, type MetricSpec } from "../observe/catalog.ts";
import type { MetricFamily, ScalarSample } from "../observe/families.ts";
import { SCRAPE_RESULTS } from "./replica-scrape.ts";
import type { EngineScraper } from "./scraper.ts";

const scalar = (spec: MetricSpec, samples: ScalarSample[]): MetricFamily => ({
  name: spec.name,
  help: spec.help,
  type: spec.type as "gauge" | "counter",
  samples,
});

export function engineFamilies(scraper: EngineScraper): MetricFamily[] {
  const now = scraper.now();
  const running: ScalarSample[] = [];
  const waiting: ScalarSample[] = [];
  const kv: ScalarSample[] = [];
  const prefix: ScalarSample[] = [];
  const fresh: ScalarSample[] = [];
  const age: ScalarSample[] = [];
  const scrapes: ScalarSample[] = [];
  for (const r of scraper.replicas()) {
    scraper.refresh(r, now);
    const labels = ["service", r.service, "replica", r.id];
    fresh.push({ labels: [...labels, "state", r.state], value: r.state === "fresh" ? 1 : 0 });
    if (r.load) age.push({ labels, value: Math.max(0, now - r.load.at) / 1000 });
    for (const result of SCRAPE_RESULTS)
      if (r.results[result] > 0) scrapes.push({ labels: [...labels, "result", result], value: r.results[result] });
    if (r.state !== "fresh" || !r.load) continue;
    running.push({ labels, value: r.load.running });
    waiting.push({ labels, value: r.load.waiting });
    if (r.load.kvUsage !== null) kv.push({ labels, value: r.load.kvUsage });
    if (r.prefixHitRate !== null) prefix.push({ labels, value: r.prefixHitRate });
  }
  return [
    scalar(METRICS.engineRunning, running),
    scalar(METRICS.engineWaiting, waiting),
    scalar(METRICS.engineKvCache, kv),
    scalar(METRICS.enginePrefixCache, prefix),
    scalar(METRICS.engineFresh, fresh),
    scalar(METRICS.engineAge, age),
    scalar(METRICS.engineScrapes, scrapes),
  ];
}
