/**
 * @module
 * The built-in balancer: a load-balancing policy (`policies/`: SGLang's cache_aware, power_of_two,
 * random, round_robin, SMG's least_load, Gateplane's prefix_load) over the replicas that are in
 * service, with passive health checks. A replica that fails `maxFailures` times in a row (connect
 * error or 5xx) is ejected for a back-off that doubles on every ejection in a row and resets on the first success. Replica state outlives
 * configuration versions (routes reuse it while a replica's id and URL are unchanged), so a new
 * document neither forgives a broken replica nor loses in-flight counts; the policy (and its prefix
 * tree) carries over while the service's router is unchanged. Where the host shares routing state
 * (`routing-state.ts`), this policy and these counts are the process's own view, used when the
 * host's state cannot answer (`routing-gate.ts`).
 */
import { isIP } from "node:net";
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
  readonly #health: HealthPolicy;
  readonly #log: (line: string) => void;

  constructor(
    replicas: readonly ReplicaState[],
    health: HealthPolicy,
    log: (line: string) => void,
    policy: Policy<ReplicaState> = new RoundRobin(),
  ) {
    this.replicas = replicas;
    this.policy = policy;
    this.#health = health;
    this.#log = log;
  }

  /**
   * The replicas a policy may choose from: those in service (or whose ejection ran out), minus
   * `tried`. When every one of those is ejected, the one ejected longest ago alone: a slim chance
   * beats a certain failure. Empty when a retry has tried them all.
   */
  candidates(now: number, tried: readonly ReplicaState[] | null): readonly ReplicaState[] {
    const replicas = this.replicas;
    let candidates: ReplicaState[] | null = null;
    for (let i = 0; i < replicas.length; i++) {
      const replica = replicas[i]!;
      const usable = (replica.ejectedAt === 0 || now >= replica.readmitAt) && !tried?.includes(replica);
      // Copy only once some replica is left out: the common case hands the policy the list itself.
      if (!usable) candidates ??= replicas.slice(0, i);
      else if (candidates !== null) candidates.push(replica);
    }
    const usable = candidates ?? replicas;
    if (usable.length > 0) return usable;
    let best: ReplicaState | undefined;
    for (const replica of replicas) {
      if (tried?.includes(replica)) continue;
      if (best === undefined || replica.ejectedAt < best.ejectedAt) best = replica;
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

  succeeded(replica: ReplicaState): void {
    if (replica.ejectedAt !== 0) this.#log(`replica ${replica.id} of service ${replica.service} is back in service`);
    replica.failures = 0;
    replica.ejections = 0;
    replica.ejectedAt = 0;
  }

  failed(replica: ReplicaState, now: number, reason: string): void {
    replica.failures++;
    const probing = replica.ejectedAt !== 0 && now >= replica.readmitAt;
    if (probing || (replica.ejectedAt === 0 && replica.failures >= this.#health.maxFailures)) {
      const { baseEjectionMs, maxEjectionMs } = this.#health;
      const ms = Math.min(baseEjectionMs * 2 ** replica.ejections, maxEjectionMs);
      replica.ejections++;
      replica.ejectedAt = now;
      replica.readmitAt = now + ms;
      this.#log(
        `replica ${replica.id} of service ${replica.service} ejected for ${Math.round(ms / 1000)}s after ${replica.failures} failures in a row (last: ${reason})`,
      );
    }
  }
}
