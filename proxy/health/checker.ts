/**
 * @module
 * The host's active health checks, in the process that owns the routing state (the proxy's parent,
 * or the server itself without child processes): one checker per host, not per child. Every replica
 * of every service whose document `health.check` is set gets `GET <replica url><path>` every
 * `interval_ms` (5 s) while healthy and every `unhealthy_interval_ms` (1 s) otherwise (pending,
 * failing, unhealthy), at most one in flight, each within `timeout_ms` (2 s); 2xx passes.
 *
 * Verdicts: a new replica (`unknown`) is healthy at its first pass (as Envoy treats a host just
 * added) and unhealthy after `unhealthy_threshold` failures; after that it takes
 * `unhealthy_threshold` failures in a row to turn unhealthy and `healthy_threshold` passes in a row
 * to turn healthy again. Every change of verdict or of the last check's outcome goes to `onVerdict`
 * (the parent pushes it to the children's balancers, `Balancer.setActive`).
 *
 * Replicas start at a random point of the first interval (pending ones within 100 ms), waits are
 * jittered ±10 %; time and the network are injected (`engine/scrape-clock.ts`), as the engine
 * scraper's (`engine/scraper.ts`), whose shape this copies.
 */
import type { ConfigDocument, ConfigService } from "../../schema/config-document.ts";
import type { HealthDocument } from "../../schema/health.ts";
import { realClock, type ScrapeClock } from "../engine/scrape-clock.ts";
import { type CheckFetch, checkUrl, fetchHealth } from "./check-fetch.ts";

export type CheckSettings = NonNullable<HealthDocument["check"]>;
export type ActiveVerdictState = "unknown" | "healthy" | "unhealthy";
export const CHECK_RESULTS = ["pass", "fail", "timeout"] as const;
export type CheckResult = (typeof CHECK_RESULTS)[number];

/** What the children's balancers are told about a replica. */
export interface ActiveVerdict {
  service: string;
  id: string;
  url: string;
  verdict: ActiveVerdictState;
  last: "pass" | "fail" | null;
  error: string | null;
}

/** One replica's checks. */
export class ReplicaCheck {
  readonly service: string;
  readonly id: string;
  readonly url: string;
  settings: CheckSettings;
  verdict: ActiveVerdictState = "unknown";
  last: "pass" | "fail" | null = null;
  error: string | null = null;
  /** Passes and failures in a row. */
  passes = 0;
  fails = 0;
  readonly results: Record<CheckResult, number> = { pass: 0, fail: 0, timeout: 0 };
  /** Verdict changes to unhealthy (the metrics' counter). */
  unhealthyTransitions = 0;
  timer: unknown = null;
  controller: AbortController | null = null;
  closed = false;

  constructor(service: string, id: string, url: string, settings: CheckSettings) {
    this.service = service;
    this.id = id;
    this.url = url;
    this.settings = settings;
  }

  view(): ActiveVerdict {
    const { service, id, url, verdict, last, error } = this;
    return { service, id, url, verdict, last, error };
  }
}

export interface HealthCheckerOptions {
  fetch?: CheckFetch;
  clock?: ScrapeClock;
  random?: () => number;
  onVerdict?: (verdict: ActiveVerdict) => void;
  log?: (line: string) => void;
}

const key = (service: string, id: string, url: string) => `${service}\u0000${id}\u0000${url}`;
const sameSettings = (a: CheckSettings, b: CheckSettings) =>
  a.path === b.path &&
  a.interval_ms === b.interval_ms &&
  a.unhealthy_interval_ms === b.unhealthy_interval_ms &&
  a.timeout_ms === b.timeout_ms &&
  a.healthy_threshold === b.healthy_threshold &&
  a.unhealthy_threshold === b.unhealthy_threshold;

export class HealthChecker {
  readonly #fetch: CheckFetch;
  readonly #clock: ScrapeClock;
  readonly #random: () => number;
  readonly #onVerdict: (verdict: ActiveVerdict) => void;
  readonly #log: (line: string) => void;
  /** Service → its replicas' checks by key: a delta follows its services without a walk of every replica. */
  #replicas = new Map<string, Map<string, ReplicaCheck>>();
  #closed = false;

  constructor(options: HealthCheckerOptions = {}) {
    this.#fetch = options.fetch ?? fetchHealth;
    this.#clock = options.clock ?? realClock;
    this.#random = options.random ?? Math.random;
    this.#onVerdict = options.onVerdict ?? (() => {});
    this.#log = options.log ?? (() => {});
  }

  /**
   * Follows a document: replicas that stay (service, id, URL) keep their verdict and schedule (new
   * settings apply from their next check), new ones are checked within 100 ms, those gone stop.
   */
  retain(doc: ConfigDocument | null): void {
    if (this.#closed) return;
    const previous = this.#replicas;
    this.#replicas = new Map();
    for (const s of doc?.services ?? []) this.#follow(s, previous.get(s.name));
    for (const [name, checks] of previous)
      for (const [k, c] of checks) if (this.#replicas.get(name)?.get(k) !== c) this.#stop(c);
  }

  /**
   * Follows a delta (`schema/config-delta.ts`): only the services it changes or removes, as `retain`
   * would follow them; every other replica's checks are left as they are, unvisited.
   */
  retainChanged(changed: readonly ConfigService[], removed: readonly string[]): void {
    if (this.#closed) return;
    for (const name of removed) {
      const checks = this.#replicas.get(name);
      this.#replicas.delete(name);
      for (const c of checks?.values() ?? []) this.#stop(c);
    }
    for (const s of changed) {
      const before = this.#replicas.get(s.name);
      const now = this.#follow(s, before);
      for (const [k, c] of before ?? []) if (now.get(k) !== c) this.#stop(c);
    }
  }

  /** One service's checks: a replica that stays keeps its verdict and schedule, a new one is checked within 100 ms. */
  #follow(s: ConfigService, before: ReadonlyMap<string, ReplicaCheck> | undefined): Map<string, ReplicaCheck> {
    const next = new Map<string, ReplicaCheck>();
    const settings = s.health?.check;
    if (settings) {
      for (const r of s.replicas) {
        const k = key(s.name, r.id, r.url);
        const kept = before?.get(k);
        if (kept) {
          if (!sameSettings(kept.settings, settings)) kept.settings = settings;
          next.set(k, kept);
          continue;
        }
        const c = new ReplicaCheck(s.name, r.id, r.url, settings);
        next.set(k, c);
        this.#schedule(c, this.#random() * Math.min(100, settings.unhealthy_interval_ms));
      }
    }
    // A service that stays keeps its place (`Map.set` on a key there); one without checks has none.
    if (next.size > 0) this.#replicas.set(s.name, next);
    else this.#replicas.delete(s.name);
    return next;
  }

  now(): number {
    return this.#clock.now();
  }

  /** Every replica checked: each service's in its document order (services in document order after a whole document). */
  replicas(): ReplicaCheck[] {
    const out: ReplicaCheck[] = [];
    for (const checks of this.#replicas.values()) for (const c of checks.values()) out.push(c);
    return out;
  }

  /** Every replica's verdict (for a child process that just started). */
  verdicts(): ActiveVerdict[] {
    return this.replicas().map((c) => c.view());
  }

  /** A replica's checks (null: not checked). */
  get(service: string, id: string, url: string): ReplicaCheck | null {
    return this.#replicas.get(service)?.get(key(service, id, url)) ?? null;
  }

  close(): void {
    this.#closed = true;
    for (const checks of this.#replicas.values()) for (const c of checks.values()) this.#stop(c);
    this.#replicas.clear();
  }

  #stop(c: ReplicaCheck): void {
    c.closed = true;
    if (c.timer !== null) this.#clock.clearTimeout(c.timer);
    c.timer = null;
    c.controller?.abort(new Error("the replica left the configuration"));
  }

  #schedule(c: ReplicaCheck, ms: number): void {
    c.timer = this.#clock.setTimeout(() => {
      c.timer = null;
      this.#tick(c);
    }, ms);
  }

  #tick(c: ReplicaCheck): void {
    if (c.closed || c.controller) return;
    const started = this.#clock.now();
    const controller = new AbortController();
    c.controller = controller;
    let timedOut = false;
    const { timeout_ms, path } = c.settings;
    const timer = this.#clock.setTimeout(() => {
      timedOut = true;
      controller.abort(new Error("timeout"));
    }, timeout_ms);
    const url = checkUrl(c.url, path);
    this.#fetch(url, controller.signal)
      .then(
        (status) =>
          status >= 200 && status < 300
            ? this.#outcome(c, "pass", null)
            : this.#outcome(c, "fail", `GET ${url} answered ${status}`),
        (err: Error) =>
          timedOut
            ? this.#outcome(c, "timeout", `GET ${url}: no answer within ${timeout_ms / 1000}s`)
            : this.#outcome(c, "fail", `GET ${url}: ${err.message}`),
      )
      .finally(() => {
        this.#clock.clearTimeout(timer);
        c.controller = null;
        if (c.closed || this.#closed) return;
        const base =
          c.verdict === "healthy" && c.last === "pass" ? c.settings.interval_ms : c.settings.unhealthy_interval_ms;
        const spent = this.#clock.now() - started;
        this.#schedule(c, Math.max(0, base * (0.9 + 0.2 * this.#random()) - spent));
      });
  }

  #outcome(c: ReplicaCheck, result: CheckResult, error: string | null): void {
    if (c.closed) return;
    c.results[result]++;
    const last = result === "pass" ? "pass" : "fail";
    const before = c.verdict;
    const lastBefore = c.last;
    c.last = last;
    c.error = error;
    if (last === "pass") {
      c.passes++;
      c.fails = 0;
      if (before === "unknown" || (before === "unhealthy" && c.passes >= c.settings.healthy_threshold))
        c.verdict = "healthy";
    } else {
      c.fails++;
      c.passes = 0;
      if (before !== "unhealthy" && c.fails >= c.settings.unhealthy_threshold) {
        c.verdict = "unhealthy";
        c.unhealthyTransitions++;
      }
    }
    if (c.verdict !== before)
      this.#log(
        `replica ${c.id} of service ${c.service} is ${c.verdict} by its health checks${error ? ` (${error})` : ""}`,
      );
    if (c.verdict !== before || last !== lastBefore) this.#onVerdict(c.view());
  }
}
