/**
 * @module
 * The built-in balancer: a load-balancing policy (`policies/`: SGLang's cache_aware, power_of_two,
 * random, round_robin, SMG's least_load, Gateplane's prefix_load) over the replicas that are in
 * service, with passive health checks. A replica that fails `maxFailures` times in a row (connect
 * error, 5xx, timeout, a stream cut after its head) is ejected for a back-off that doubles on every
 * ejection in a row and resets on the first success. Replica health (docs/health.md) adds, per
 * service: the host's active checks' verdicts (`setActive`, from `health/checker.ts` in the parent),
 * a circuit breaker per replica (`health/circuit-breaker.ts`), waiting for a first passing check and
 * slow start; a host's processes share their passive failures, ejections and breaker changes
 * (`health/passive-share.ts`: `remoteFailed`, `remoteSucceeded`); all of it is one state per replica (`state`), and the policy only ever sees the
 * replicas that state admits (slow-starting ones with a probability that ramps up), so the policies'
 * contract is untouched. Replica state outlives
 * configuration versions (routes reuse it while a replica's id and URL are unchanged), so a new
 * document neither forgives a broken replica nor loses in-flight counts; the policy (and its prefix
 * tree) carries over while the service's router is unchanged. Where the host shares routing state
 * (`routing-state.ts`), this policy and these counts are the process's own view, used when the
 * host's state cannot answer (`routing-gate.ts`).
 */
import { isIP } from "node:net";
import { HEALTH_SEVERITY, type ReplicaHealth, type ReplicaHealthState } from "../schema/health.ts";
import { CircuitBreaker } from "./health/circuit-breaker.ts";
import type { PassiveEvent } from "./health/passive-share.ts";
import { PASSIVE_HEALTH, type ServiceHealth, sameBreaker } from "./health/service-health.ts";
import type { Policy } from "./policies/index.ts";
import { RoundRobin } from "./policies/round-robin.ts";

export interface HealthPolicy {
  /** Consecutive failures that eject a replica. */
  maxFailures: number;
  /** First ejection length; doubled on each ejection in a row. */
  baseEjectionMs: number;
  maxEjectionMs: number;
}

export const DEFAULT_HEALTH_POLICY: HealthPolicy = { maxFailures: 3, baseEjectionMs: 10_000, maxEjectionMs: 120_000 };

/** One replica endpoint as the proxy dials it. */
export class ReplicaState {
  readonly service: string;
  readonly id: string;
  readonly url: string;
  /** `scheme://host:port`: the key of the connection pool. */
  readonly origin: string;
  /** Path prefix from the replica URL, without a trailing slash ("" for none). */
  readonly pathPrefix: string;
  readonly https: boolean;
  /** `host[:port]` of the replica URL (the Host an HTTPS replica expects). */
  readonly authority: string;
  readonly hostname: string;
  readonly port: number;
  /**
   * TLS server name. undici derives one from the Host header of every request unless given one
   * (an IP-address check per request); for plain HTTP it only has to stay constant.
   */
  readonly servername: string | undefined;

  /** Requests and tunnels dispatched and not yet settled. */
  inFlight = 0;
  /** Consecutive failures since the last success. */
  failures = 0;
  /** When the current ejection began (ms since epoch), 0 while in service. */
  ejectedAt = 0;
  /** When an ejected replica gets traffic again. */
  readmitAt = 0;
  /** Ejections in a row, for the doubling back-off. */
  ejections = 0;
  /** The host's active checks' verdict (`health/checker.ts`); unknown until the first. */
  active: "unknown" | "healthy" | "unhealthy" = "unknown";
  /** The last active check's outcome (a failing one holds back readmission after an ejection). */
  lastCheck: "pass" | "fail" | null = null;
  /** The last failure seen (request or check), cleared by a success. */
  lastError: string | null = null;
  /** Per-replica breaker, when the service has one. */
  breaker: CircuitBreaker | null = null;
  /** When slow start began (0: never admitted since the proxy started). */
  admittedAt = 0;

  constructor(service: string, id: string, url: string) {
    const parsed = new URL(url);
    this.service = service;
    this.id = id;
    this.url = url;
    this.https = parsed.protocol === "https:";
    this.hostname = parsed.hostname.startsWith("[") ? parsed.hostname.slice(1, -1) : parsed.hostname;
    this.port = parsed.port ? Number(parsed.port) : this.https ? 443 : 80;
    this.origin = parsed.origin;
    this.authority = parsed.host;
    this.pathPrefix = parsed.pathname.replace(/\/+$/, "");
    this.servername = this.https && isIP(this.hostname) ? undefined : this.hostname;
  }
}

export class Balancer {
  readonly replicas: readonly ReplicaState[];
  readonly policy: Policy<ReplicaState>;
  readonly service: ServiceHealth;
  readonly #health: HealthPolicy;
  readonly #log: (line: string) => void;
  readonly #random: () => number;
  /** Where this process's passive-health changes go for the host's other processes (`health/passive-share.ts`); null: alone. */
  readonly #share: ((event: PassiveEvent) => void) | null;

  constructor(
    replicas: readonly ReplicaState[],
    health: HealthPolicy,
    log: (line: string) => void,
    policy: Policy<ReplicaState> = new RoundRobin(),
    service: ServiceHealth = PASSIVE_HEALTH,
    random: () => number = Math.random,
    share: ((event: PassiveEvent) => void) | null = null,
  ) {
    this.#share = share;
    this.replicas = replicas;
    this.policy = policy;
    this.service = service;
    this.#health = health;
    this.#log = log;
    this.#random = random;
    for (const r of replicas) {
      if (!sameBreaker(r.breaker?.settings ?? null, service.breaker))
        r.breaker = service.breaker ? new CircuitBreaker(service.breaker) : null;
    }
  }

  /** A replica's one state at `now` (docs/health.md). */
  state(r: ReplicaState, now: number): ReplicaHealthState {
    const s = this.service;
    if (s.checked && r.active === "unhealthy") return "unhealthy";
    if (r.ejectedAt !== 0 && (now < r.readmitAt || (s.checked && r.lastCheck === "fail"))) return "ejected";
    const circuit = r.breaker?.state(now) ?? "closed";
    if (circuit !== "closed") return "ejected";
    if (s.waitHealthy && r.active === "unknown") return "unknown";
    if (s.slowStartMs > 0) {
      // A passive ejection that ran out starts slow start at its end.
      if (r.ejectedAt !== 0 && r.admittedAt < r.readmitAt) r.admittedAt = r.readmitAt;
      if (r.admittedAt !== 0 && now - r.admittedAt < s.slowStartMs) return "slow_start";
    }
    return "healthy";
  }

  /** The replica's share while slow-starting: from 10 % (Envoy's min_weight_percent) up to 1 over `slowStartMs`. */
  weight(r: ReplicaState, now: number): number {
    const ms = this.service.slowStartMs;
    if (ms <= 0 || r.admittedAt === 0) return 1;
    return Math.min(1, Math.max(0.1, (now - r.admittedAt) / ms));
  }

  /** 1: take it; 0: leave it out; 2: out for now (slow start's draw), the first fallback. */
  #admits(r: ReplicaState, now: number): 0 | 1 | 2 {
    const state = this.state(r, now);
    if (state === "healthy") return 1;
    if (state === "slow_start") return this.#random() < this.weight(r, now) ? 1 : 2;
    // A half-open breaker lets one request at a time through (this process's).
    if (state === "ejected" && r.breaker?.state(now) === "half_open" && r.inFlight === 0) return 1;
    return 0;
  }

  /**
   * The replicas a policy may choose from: those the health state admits (slow-starting ones by a
   * draw weighted by their ramp), minus `tried`. When none is: the slow-starting ones left out by
   * the draw; when none of those either, the least bad replica alone (pending its first check before
   * ejected before unhealthy, then the one ejected longest ago): a slim chance beats a certain
   * failure. Empty when a retry has tried them all.
   */
  candidates(now: number, tried: readonly ReplicaState[] | null): readonly ReplicaState[] {
    const replicas = this.replicas;
    let candidates: ReplicaState[] | null = null;
    let deferred: ReplicaState[] | null = null;
    for (let i = 0; i < replicas.length; i++) {
      const replica = replicas[i]!;
      const admits = tried?.includes(replica) ? 0 : this.#admits(replica, now);
      if (admits === 2) {
        deferred ??= [];
        deferred.push(replica);
      }
      // Copy only once some replica is left out: the common case hands the policy the list itself.
      if (admits !== 1) candidates ??= replicas.slice(0, i);
      else if (candidates !== null) candidates.push(replica);
    }
    const usable = candidates ?? replicas;
    if (usable.length > 0) return usable;
    if (deferred) return deferred;
    let best: ReplicaState | undefined;
    let bestRank = 0;
    for (const replica of replicas) {
      if (tried?.includes(replica)) continue;
      const rank = HEALTH_SEVERITY[this.state(replica, now)];
      if (best === undefined || rank < bestRank || (rank === bestRank && replica.ejectedAt < best.ejectedAt)) {
        best = replica;
        bestRank = rank;
      }
    }
    return best ? [best] : [];
  }

  /** This process's own choice (its policy state and in-flight counts); `text` is the routing text (the tree policies). */
  pick(now: number, tried: readonly ReplicaState[] | null, text = ""): ReplicaState | undefined {
    const candidates = this.candidates(now, tried);
    return candidates.length === 0 ? undefined : this.policy.select(candidates, text, now);
  }

  /** The replica with this id (the host's routing state answers with ids). */
  byId(id: string): ReplicaState | undefined {
    for (const replica of this.replicas) if (replica.id === id) return replica;
    return undefined;
  }

  succeeded(replica: ReplicaState, now = Date.now()): void {
    // Only a success that changes something is shared: the hot path of a healthy replica sends nothing.
    const changes = replica.failures !== 0 || replica.ejectedAt !== 0;
    if (replica.ejectedAt !== 0) this.#log(`replica ${replica.id} of service ${replica.service} is back in service`);
    replica.failures = 0;
    replica.ejections = 0;
    replica.ejectedAt = 0;
    replica.lastError = null;
    const closed = replica.breaker?.success(now) ?? false;
    if (closed) {
      replica.admittedAt = now;
      this.#log(`replica ${replica.id} of service ${replica.service}: circuit closed`);
    }
    if (this.#share && (changes || closed))
      this.#share({ kind: "success", service: replica.service, id: replica.id, url: replica.url, at: now, closed });
  }

  failed(replica: ReplicaState, now: number, reason: string): void {
    replica.failures++;
    replica.lastError = reason;
    const probing = replica.ejectedAt !== 0 && now >= replica.readmitAt;
    let ejection: { at: number; until: number; ejections: number } | null = null;
    if (probing || (replica.ejectedAt === 0 && replica.failures >= this.#health.maxFailures)) {
      this.#eject(replica, now, reason);
      ejection = { at: now, until: replica.readmitAt, ejections: replica.ejections };
    }
    let opened: string | null = null;
    if (replica.breaker?.failure(now, reason)) {
      opened = replica.breaker.reason;
      this.#log(
        `replica ${replica.id} of service ${replica.service}: circuit open for ${Math.round(replica.breaker.settings.openMs / 1000)}s: ${opened}`,
      );
    }
    this.#share?.({
      kind: "failure",
      service: replica.service,
      id: replica.id,
      url: replica.url,
      at: now,
      reason,
      ejection,
      opened,
    });
  }

  #eject(replica: ReplicaState, now: number, reason: string, where = ""): void {
    const { baseEjectionMs, maxEjectionMs } = this.#health;
    const ms = Math.min(baseEjectionMs * 2 ** replica.ejections, maxEjectionMs);
    replica.ejections++;
    replica.ejectedAt = now;
    replica.readmitAt = now + ms;
    this.#log(
      `replica ${replica.id} of service ${replica.service} ejected for ${Math.round(ms / 1000)}s after ${replica.failures} failures in a row${where} (last: ${reason})`,
    );
  }

  /**
   * A failure another process of the host saw (`health/passive-share.ts`): it counts toward the
   * failures in a row here too, so the host ejects at `maxFailures` failures in total, whichever
   * processes saw them; an ejection or breaker opening it caused holds here until the same end.
   * It counts toward the breaker's failures in a row too, not toward its error rate (whose window
   * needs every success, which processes do not share).
   */
  remoteFailed(replica: ReplicaState, event: Extract<PassiveEvent, { kind: "failure" }>, now = Date.now()): void {
    replica.failures++;
    replica.lastError = event.reason;
    const e = event.ejection;
    if (e) {
      if (replica.ejectedAt === 0 || replica.readmitAt < e.until)
        this.#log(
          `replica ${replica.id} of service ${replica.service} ejected until ${new Date(e.until).toISOString()} by another proxy process (last: ${event.reason})`,
        );
      replica.ejectedAt = e.at;
      replica.readmitAt = e.until;
      replica.ejections = e.ejections;
    } else if (replica.ejectedAt === 0 && replica.failures >= this.#health.maxFailures) {
      this.#eject(replica, now, event.reason, " on this host");
    }
    const breaker = replica.breaker;
    if (!breaker) return;
    if (event.opened) {
      breaker.openFrom(event.at, event.opened);
      this.#log(`replica ${replica.id} of service ${replica.service}: circuit opened by another proxy process`);
    } else if (breaker.remoteFailure(now, event.reason)) {
      this.#log(`replica ${replica.id} of service ${replica.service}: circuit open: ${breaker.reason}`);
    }
  }

  /** A success another process saw that changed the replica's state: the failures in a row end, an ejection ends, its breaker closes. */
  remoteSucceeded(replica: ReplicaState, event: Extract<PassiveEvent, { kind: "success" }>, now = Date.now()): void {
    if (replica.ejectedAt !== 0)
      this.#log(`replica ${replica.id} of service ${replica.service} is back in service (another proxy process)`);
    replica.failures = 0;
    replica.ejections = 0;
    replica.ejectedAt = 0;
    replica.lastError = null;
    replica.breaker?.remoteSuccess();
    if (event.closed && replica.breaker?.closeFrom(now)) replica.admittedAt = event.at;
  }

  /**
   * The host's active checks' verdict for a replica (and the last check's outcome). Turning healthy
   * again (from unhealthy) starts slow start and also ends a passive ejection (the checks saw it
   * down and back), so a recovered replica is back within the healthy threshold's checks.
   */
  setActive(
    replica: ReplicaState,
    verdict: "unknown" | "healthy" | "unhealthy",
    last: "pass" | "fail" | null,
    error: string | null,
    now = Date.now(),
  ): void {
    const before = replica.active;
    replica.active = verdict;
    replica.lastCheck = last;
    if (error !== null) replica.lastError = error;
    if (verdict !== "healthy" || before === "healthy") return;
    // Slow start is for a replica coming back, not a new one (docs/health.md): a new replica takes
    // its full share at its first pass. Ramping new replicas would hand the policy a random subset
    // of a fleet just scaled out for 30 s, moving conversations off the replica holding their prefix.
    if (before === "unhealthy") {
      replica.admittedAt = now;
      replica.failures = 0;
      replica.ejections = 0;
      replica.ejectedAt = 0;
      replica.lastError = null;
      this.#log(`replica ${replica.id} of service ${replica.service} passes its health checks again`);
    }
  }

  /** Each replica's health as this process sees it (the report, the API, metrics). */
  report(now: number): ReplicaHealth[] {
    return this.replicas.map((r) => ({
      replica: r.id,
      state: this.state(r, now),
      circuit: r.breaker?.state(now) ?? "closed",
      last_check: r.lastCheck,
      error: r.lastError,
    }));
  }
}
