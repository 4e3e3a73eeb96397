/**
 * @module
 * What every exchange in one process shares: the connection pools, settings, the log, the
 * rate-limit store and the routing gate (here or in the parent process), the sinks of the requests'
 * records, and the exchanges still running (requests and tunnels), which a closing server waits on
 * and, past its drain bound, cuts.
 */
import { BodyBudget, type BodyBufferSettings } from "./body-budget.ts";
import type { ExchangeSink } from "./observe/exchange-record.ts";
import type { MetricsRegistry } from "./observe/registry.ts";
import type { RateLimitGate } from "./rate-limit-gate.ts";
import type { RoutingGate } from "./routing-gate.ts";
import type { UpstreamPools } from "./upstream-pools.ts";

export interface ContextSettings {
  /** Retries of an upgrade that did not reach a replica, on other replicas (HTTP: the service's `retries`). */
  maxRetries: number;
  /** Dialing a replica for a tunnel (pooled requests use the pool's own setting). */
  connectTimeoutMs: number;
  proto: "http" | "https";
  /** Request bodies read before dialling a replica (`body-buffer.ts`). */
  body: BodyBufferSettings;
}

export class ProxyContext {
  readonly pools: UpstreamPools;
  readonly settings: ContextSettings;
  readonly log: (line: string) => void;
  readonly rateLimits: RateLimitGate;
  readonly routing: RoutingGate;
  /** The bytes request bodies being buffered hold in this process. */
  readonly bodies: BodyBudget;
  /** Upgraded connections, which outlive any server-side bookkeeping. */
  readonly tunnels = new Set<{ destroy(): void }>();
  /**
   * Who reads each request's record once it is over (`observe/exchange-record.ts`): the metrics
   * registry, and the access log and span exporter of the document's `observability`
   * (`observe/sinks.ts` keeps its own entries here as documents change). Empty: requests are not
   * observed at all.
   */
  readonly sinks: ExchangeSink[] = [];
  /** This process's metrics (null when they are off: `settings.metrics`). */
  metrics: MetricsRegistry | null = null;
  #active = 0;
  #closing = false;
  #idle: (() => void)[] = [];

  constructor(
    pools: UpstreamPools,
    settings: ContextSettings,
    log: (line: string) => void,
    rateLimits: RateLimitGate,
    routing: RoutingGate,
  ) {
    this.pools = pools;
    this.routing = routing;
    this.settings = settings;
    this.bodies = new BodyBudget(settings.body.processBytes);
    this.log = log;
    this.rateLimits = rateLimits;
  }

  get active(): number {
    return this.#active;
  }

  /** The server stopped accepting: responses now close their connections. */
  get closing(): boolean {
    return this.#closing;
  }

  begin(): void {
    this.#active++;
  }

  end(): void {
    this.#active--;
    if (this.#active === 0 && this.#idle.length > 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Marks the context closing; resolves once no exchange is running (at once if none is). */
  startClosing(): Promise<void> {
    this.#closing = true;
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
