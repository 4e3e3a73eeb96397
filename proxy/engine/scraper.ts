/**
 * @module
 * The host's engine scraper: in the process that owns the routing state (the proxy's parent, or the
 * server itself without child processes), every replica of every scraped service is asked
 * `GET <replica url>/metrics` every `intervalMs` (2 s), at most one request in flight per replica,
 * each answer within `timeoutMs` (1 s) and `maxBytes` (4 MiB). Replicas start at a random point of
 * the interval and each wait is jittered ±10 %, so a host's scrapes never fall in lockstep.
 *
 * Which replicas: `scrape-targets.ts`. An exposition with neither engine's series, or a 404, makes
 * the replica `unsupported`, asked again every `unsupportedRetryMs` (60 s) so one that starts
 * exporting later is picked up. Each replica's standing is a `ReplicaScrape` (`replica-scrape.ts`);
 * the engines' queue samples for the report are taken by `QueueSampler` (`queue-samples.ts`).
 *
 * A good read is fresh for `staleAfterMs` (3 intervals): one lost scrape keeps the last figures
 * (with the error shown), a replica silent for three intervals loses them, and its policy falls back
 * to the gateway's own in-flight count (`onLoad(…, null)`). Time and the network are injected: tests
 * drive the clock, nothing sleeps.
 */
import type { ConfigDocument, ConfigService } from "../../schema/config-document.ts";
import type { EngineSignals } from "../../schema/engine.ts";
import type { LlmWindowName } from "../../schema/llm-stats.ts";
import type { EngineReport } from "../stats.ts";
import { type EngineReading, missingLoad, ReadingCollector } from "./engine-reading.ts";
import { ExpositionParser, ExpositionSyntaxError } from "./exposition-parser.ts";
import { fetchMetrics, type MetricsFetch, MetricsTooLargeError } from "./fetch-metrics.ts";
import { QueueSampler, type QueueWindow } from "./queue-samples.ts";
import { ReplicaScrape, type ScrapedLoad, type ScrapeResult } from "./replica-scrape.ts";
import { realClock, type ScrapeClock } from "./scrape-clock.ts";
import {
  METRICS_PATH,
  metricsUrl,
  type ScrapeTarget,
  scraped,
  scrapedServices,
  scrapeTargets,
  serviceTargets,
  targetKey,
} from "./scrape-targets.ts";

export const ENGINE_SCRAPE_DEFAULTS = {
  intervalMs: 2_000,
  timeoutMs: 1_000,
  staleAfterMs: 6_000,
  unsupportedRetryMs: 60_000,
  maxBytes: 4 * 1024 * 1024,
  path: METRICS_PATH,
};

export interface EngineScraperOptions {
  fetch?: MetricsFetch;
  clock?: ScrapeClock;
  /** Uniform in [0, 1): the jitter. */
  random?: () => number;
  intervalMs?: number;
  timeoutMs?: number;
  staleAfterMs?: number;
  unsupportedRetryMs?: number;
  maxBytes?: number;
  /** A replica's load: fresh figures, or null when it has none now (stale, failed, unsupported, gone). */
  onLoad?: (service: string, id: string, url: string, load: ScrapedLoad | null) => void;
}

export class EngineScraper implements EngineReport {
  readonly #fetch: MetricsFetch;
  readonly #clock: ScrapeClock;
  readonly #random: () => number;
  readonly #o: typeof ENGINE_SCRAPE_DEFAULTS;
  readonly #onLoad: NonNullable<EngineScraperOptions["onLoad"]>;
  /**
   * Service → its replicas by `targetKey`: a delta's services are followed without a walk of every
   * replica of the host (`retainChanged`), and a service's signals are found without one either.
   */
  #replicas = new Map<string, Map<string, ReplicaScrape>>();
  /** How many replicas are scraped, over every service. */
  #count = 0;
  /** The services whose engines are scraped (some may have no replica now). */
  #services = new Set<string>();
  readonly #queue: QueueSampler;
  #closed = false;

  constructor(options: EngineScraperOptions = {}) {
    this.#fetch = options.fetch ?? fetchMetrics;
    this.#clock = options.clock ?? realClock;
    this.#random = options.random ?? Math.random;
    this.#o = {
      ...ENGINE_SCRAPE_DEFAULTS,
      ...Object.fromEntries(Object.entries(options).filter(([k, v]) => k in ENGINE_SCRAPE_DEFAULTS && v !== undefined)),
    };
    this.#onLoad = options.onLoad ?? (() => {});
    this.#queue = new QueueSampler(this.#clock, this.#o.intervalMs, {
      freshWaiting: (now) => this.#freshWaiting(now),
      services: () => this.#services,
      active: () => this.#count > 0,
    });
  }

  /**
   * Follows a document: replicas that stay (service, id and URL) keep their state and schedule, new
   * ones start at a random point of the interval, those gone stop (their request aborted). Fresh
   * loads are handed out again, for a routing state that just made new replica entries.
   */
  retain(doc: ConfigDocument | null): void {
    if (this.#closed) return;
    const previous = this.#replicas;
    this.#replicas = new Map();
    this.#count = 0;
    this.#services = scrapedServices(doc);
    let service: string | null = null;
    let targets: ScrapeTarget[] = [];
    for (const t of scrapeTargets(doc)) {
      if (t.service !== service) {
        if (service !== null) this.#follow(service, targets, previous.get(service));
        service = t.service;
        targets = [];
      }
      targets.push(t);
    }
    if (service !== null) this.#follow(service, targets, previous.get(service));
    for (const [name, replicas] of previous)
      for (const [key, r] of replicas) if (this.#replicas.get(name)?.get(key) !== r) this.#stop(r);
    if (this.#count > 0) this.#queue.start();
  }

  /**
   * Follows a delta (`schema/config-delta.ts`): only the services it changes or removes, as
   * `retain` would follow them; every other replica is left as it is, unvisited.
   */
  retainChanged(changed: readonly ConfigService[], removed: readonly string[]): void {
    if (this.#closed) return;
    for (const name of removed) this.#drop(name);
    for (const s of changed) {
      const before = this.#replicas.get(s.name);
      if (!scraped(s)) {
        this.#services.delete(s.name);
        this.#drop(s.name);
        continue;
      }
      this.#services.add(s.name);
      if (before) this.#count -= before.size;
      const now = this.#follow(s.name, serviceTargets(s), before);
      if (before) for (const [key, r] of before) if (now.get(key) !== r) this.#stop(r);
    }
    if (this.#count > 0) this.#queue.start();
  }

  /** One service's targets: a replica that stays keeps its scrape (its fresh load handed out again), a new one starts. */
  #follow(service: string, targets: readonly ScrapeTarget[], before: ReadonlyMap<string, ReplicaScrape> | undefined) {
    const next = new Map<string, ReplicaScrape>();
    for (const t of targets) {
      const key = targetKey(t.service, t.id, t.url);
      const kept = before?.get(key);
      if (kept && kept.expected === t.expected) {
        next.set(key, kept);
        if (kept.published) this.#onLoad(kept.service, kept.id, kept.url, kept.load);
        continue;
      }
      const r = new ReplicaScrape(t.service, t.id, t.url, t.expected);
      next.set(key, r);
      this.#schedule(r, this.#random() * this.#o.intervalMs);
    }
    // A service that stays keeps its place (`Map.set` on a key there); one without replicas has none.
    if (next.size > 0) this.#replicas.set(service, next);
    else this.#replicas.delete(service);
    this.#count += next.size;
    return next;
  }

  /** A service no longer scraped: its replicas stop. */
  #drop(name: string): void {
    this.#services.delete(name);
    const replicas = this.#replicas.get(name);
    if (!replicas) return;
    this.#replicas.delete(name);
    this.#count -= replicas.size;
    for (const r of replicas.values()) this.#stop(r);
  }

  /** The scraper's clock (ages and staleness are on it). */
  now(): number {
    return this.#clock.now();
  }

  /** Every replica scraped: each service's in its document order (services in document order after a whole document). */
  replicas(): ReplicaScrape[] {
    const out: ReplicaScrape[] = [];
    for (const replicas of this.#replicas.values()) for (const r of replicas.values()) out.push(r);
    return out;
  }

  /** A service's replicas as the agent reports them and the API shows them; null: not scraped. */
  signals(service: string): EngineSignals[] | null {
    if (!this.#services.has(service)) return null;
    const now = this.#clock.now();
    return [...(this.#replicas.get(service)?.values() ?? [])].map((r) => {
      this.refresh(r, now);
      return r.signals(now);
    });
  }

  /** The service's queue samples by window. */
  queue(service: string): Partial<Record<LlmWindowName, QueueWindow>> {
    return this.#queue.windows(service);
  }

  /** Stops every scrape (the proxy closes). */
  close(): void {
    this.#closed = true;
    for (const replicas of this.#replicas.values()) for (const r of replicas.values()) this.#stop(r);
    this.#replicas.clear();
    this.#count = 0;
    this.#queue.close();
  }

  #stop(r: ReplicaScrape): void {
    r.closed = true;
    if (r.timer !== null) this.#clock.clearTimeout(r.timer);
    r.timer = null;
    r.controller?.abort(new Error("the replica left the configuration"));
    if (r.published) this.#onLoad(r.service, r.id, r.url, null);
    r.published = false;
  }

  #schedule(r: ReplicaScrape, ms: number): void {
    r.timer = this.#clock.setTimeout(() => {
      r.timer = null;
      this.#tick(r);
    }, ms);
  }

  /** A fresh read older than the bound goes stale (or failed, when the reads since failed). */
  refresh(r: ReplicaScrape, now: number): void {
    if (r.state !== "fresh" || !r.load || now - r.load.at <= this.#o.staleAfterMs) return;
    r.state = r.error === null ? "stale" : "failed";
    this.#publish(r);
  }

  #publish(r: ReplicaScrape): void {
    const load = r.state === "fresh" ? r.load : null;
    if (load === null && !r.published) return;
    r.published = load !== null;
    this.#onLoad(r.service, r.id, r.url, load);
  }

  #tick(r: ReplicaScrape): void {
    if (r.closed) return;
    const started = this.#clock.now();
    this.refresh(r, started);
    if (r.controller) {
      this.#schedule(r, this.#jitter(this.#o.intervalMs));
      return;
    }
    const controller = new AbortController();
    r.controller = controller;
    let timedOut = false;
    const timeout = this.#clock.setTimeout(() => {
      timedOut = true;
      controller.abort(new Error("timeout"));
    }, this.#o.timeoutMs);
    const collector = new ReadingCollector(r.expected);
    const parser = new ExpositionParser(collector);
    const url = metricsUrl(r.url);
    this.#fetch(url, { signal: controller.signal, maxBytes: this.#o.maxBytes, onChunk: (text) => parser.push(text) })
      .then((status) => {
        if (status === 200) parser.end();
        return status;
      })
      .then(
        (status) => this.#answered(r, status, status === 200 ? collector.reading() : null),
        (err: Error) => {
          // A 200 that is not Prometheus text before any engine series (an app's JSON, a login
          // page) is a replica without engine metrics, not a broken engine.
          if (err instanceof ExpositionSyntaxError && collector.engine === null && !timedOut)
            this.#unsupported(r, `the answer is not a Prometheus exposition (${err.message})`);
          else throw err;
        },
      )
      .then(
        () => {},
        (err: Error) =>
          this.#failed(
            r,
            timedOut
              ? "timeout"
              : err instanceof ExpositionSyntaxError || err instanceof MetricsTooLargeError
                ? "invalid"
                : "failed",
            timedOut ? `no answer within ${this.#o.timeoutMs / 1000}s` : err.message,
          ),
      )
      .finally(() => {
        this.#clock.clearTimeout(timeout);
        r.controller = null;
        if (r.closed || this.#closed) return;
        const base = r.state === "unsupported" ? this.#o.unsupportedRetryMs : this.#o.intervalMs;
        const spent = this.#clock.now() - started;
        this.#schedule(r, Math.max(0, this.#jitter(base) - spent));
      });
  }

  #answered(r: ReplicaScrape, status: number, reading: EngineReading | null): void {
    if (r.closed) return;
    const what = `GET ${metricsUrl(r.url)}`;
    if (status === 404) {
      this.#unsupported(r, `${what} answered 404`);
      return;
    }
    if (status !== 200) {
      this.#failed(r, "failed", `${what} answered ${status}`);
      return;
    }
    if (!reading) {
      const wanted = r.expected === null ? "vllm: or sglang: series" : `${r.expected}: series (engine: ${r.expected})`;
      this.#unsupported(r, `the exposition has no ${wanted}`);
      return;
    }
    const missing = missingLoad(reading);
    if (missing) {
      this.#failed(r, "invalid", `the exposition has no ${missing}`);
      return;
    }
    r.results.ok++;
    r.take(reading, this.#clock.now());
    this.#publish(r);
  }

  #failed(r: ReplicaScrape, result: ScrapeResult, error: string): void {
    if (r.closed) return;
    r.results[result]++;
    r.error = error;
    // A good read still within its bound stays in use: one lost scrape does not drop the figures.
    if (r.state === "fresh" && r.load && this.#clock.now() - r.load.at <= this.#o.staleAfterMs) return;
    r.state = "failed";
    this.#publish(r);
  }

  #unsupported(r: ReplicaScrape, error: string): void {
    if (r.closed) return;
    r.results.unsupported++;
    r.error = error;
    r.state = "unsupported";
    r.engine = null;
    r.load = null;
    this.#publish(r);
  }

  #jitter(ms: number): number {
    return ms * (0.9 + 0.2 * this.#random());
  }

  /** The fresh replicas' waiting counts for the queue sampler (states brought up to date first). */
  *#freshWaiting(now: number): Iterable<readonly [string, number]> {
    for (const replicas of this.#replicas.values())
      for (const r of replicas.values()) {
        this.refresh(r, now);
        if (r.state === "fresh") yield [r.service, r.load!.waiting] as const;
      }
  }
}
