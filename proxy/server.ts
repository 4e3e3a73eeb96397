/**
 * @module
 * The proxy in one process: `node:http`/`node:https` listeners whose requests are routed
 * (`route-request.ts`, a pure decision from the head and the table in force) and carried out
 * (`dispatch.ts`: forward, tunnel, hold, redirect or answer), and routing tables swapped atomically
 * when a document arrives. Settings: `settings.ts`. Every request gets its id and trace context
 * as it is read (`headers.ts`) and is observed (`observe/observation.ts`) when some sink reads the
 * records: the process's metrics registry, and the access log and span exporter of the document's
 * `observability` (`observe/sinks.ts`). One record per request, read by all of them. The listeners,
 * their connections and how they drain on close: `listeners.ts`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { ConfigDelta, ConfigHead } from "../schema/config-delta.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import type { ReplicaHealth, ReplicaHealthState } from "../schema/health.ts";
import { answerChallenge, CHALLENGE_PREFIX, type ChallengeTokens } from "./acme-challenge.ts";
import { trackResponse } from "./client-error.ts";
import { ProxyContext } from "./context.ts";
import { type Dispatch, dispatchRequest, dispatchUpgrade } from "./dispatch.ts";
import { ConfigRejectedError } from "./errors.ts";
import { clientAddress, keepIdentity, readRequestHead } from "./headers.ts";
import type { ActiveVerdict } from "./health/checker.ts";
import { hostHealthFamilies, processHealthFamilies } from "./health/health-metrics.ts";
import type { PassiveEvent } from "./health/passive-share.ts";
import { setPassive, setVerdicts, VerdictMemory } from "./health/table-health.ts";
import { HoldQueue } from "./hold.ts";
import { Listeners, type ListenTarget } from "./listeners.ts";
import type { ExchangeSink } from "./observe/exchange-record.ts";
import { renderExposition } from "./observe/exposition.ts";
import type { MetricFamily } from "./observe/families.ts";
import { taggedIdentity, tagRequest } from "./observe/ids.ts";
import { observe } from "./observe/observation.ts";
import { MetricsRegistry } from "./observe/registry.ts";
import { Observability } from "./observe/sinks.ts";
import { type TreePolicyEntry, treePoliciesOf, treePolicyEntry } from "./observe/tree-policy-metrics.ts";
import { madePolicy } from "./policies/lazy-policy.ts";
import { LocalGate, type RateLimitGate } from "./rate-limit-gate.ts";
import { ZoneRegistry } from "./rate-limit-store.ts";
import { type RoutingView, routeRequest } from "./route-request.ts";
import { buildRoutingTable, EMPTY_TABLE, type RoutingTable, type TableDeps } from "./routes.ts";
import { updateRoutingTable } from "./routes-delta.ts";
import { LocalRoutingGate, type RoutingGate } from "./routing-gate.ts";
import type { ServerSettings } from "./settings.ts";
import { type RawServiceStats, StatsRegistry } from "./stats.ts";
import { CertificateSet, type TlsCertificate } from "./tls.ts";
import { UpstreamPools } from "./upstream-pools.ts";

/** What a `ProxyServer` is told beyond its settings; every part has a default (`ProxyServer`'s constructor). */
export interface ProxyServerOptions {
  rateLimits?: RateLimitGate;
  onHold?: (service: string) => void;
  routing?: RoutingGate;
  exposition?: () => Promise<string>;
  /** The agent's state directory (`<stateDir>/access.log`); null or absent: no access log file. */
  stateDir?: string | null;
  /** A child process: its parent rotates the access log. Absent: this process rotates it. */
  askRotation?: () => void;
  /** A child process: its passive-health changes go to the host's other processes (`health/passive-share.ts`). */
  passive?: (event: PassiveEvent) => void;
}

export class ProxyServer {
  readonly #settings: ServerSettings;
  /** The HTTP and HTTPS listeners and their connections (`listeners.ts`). */
  readonly #listeners: Listeners;
  readonly #certificates = new CertificateSet();
  #challenges: ChallengeTokens = {};
  readonly #ctx: ProxyContext;
  readonly #stats = new StatsRegistry();
  readonly #log: (line: string) => void;
  readonly #holds: HoldQueue;
  readonly #dispatch: Dispatch;
  readonly #observe: Observability;
  #table: RoutingTable = EMPTY_TABLE;
  /**
   * The envelope in force (what a delta's head replaces); its version is the table's. The services
   * are the table's routes: a process keeps no document besides them (the parent holds it whole).
   */
  #head: ConfigHead | null = null;
  /** The host's latest active-check verdict per replica, for replicas a later document brings. */
  readonly #verdicts = new VerdictMemory();
  /** What `routeRequest` reads of this process; its getters follow the table and listeners in force. */
  readonly #view: RoutingView;
  #closed: Promise<void> | null = null;
  readonly #share: ((event: PassiveEvent) => void) | undefined;

  /**
   * `rateLimits`: where the host's rate-limit buckets are (a child process asks its parent); default: in this process.
   * `onHold(service)`: a request waits for a service scaled to zero (rate-limited per service).
   * `routing`: where the host's routing state is (a child process asks its parent); default: in this process.
   * `exposition`: the host's metrics for Prometheus (`GET /metrics` on the gateway's address when
   * public); default: this process's alone.
   * `stateDir`: where the access log goes (`<stateDir>/access.log`); default null: standard output only.
   * `askRotation`: a child process asks its parent to rotate the access log; absent: this process rotates it.
   */
  constructor(settings: ServerSettings, log: (line: string) => void, options: ProxyServerOptions = {}) {
    const { rateLimits, onHold = () => {}, routing = new LocalRoutingGate(), exposition } = options;
    this.#settings = settings;
    this.#log = log;
    this.#share = options.passive;
    this.#holds = new HoldQueue(settings.hold, onHold);
    const pools = new UpstreamPools(settings.pools);
    this.#ctx = new ProxyContext(
      pools,
      {
        maxRetries: settings.maxRetries,
        connectTimeoutMs: settings.pools.connectTimeoutMs,
        proto: "http",
        body: settings.bodyBuffer,
      },
      log,
      rateLimits ?? new LocalGate(new ZoneRegistry(settings.rateLimitKeys)),
      routing,
    );
    if (settings.metrics) {
      const registry = new MetricsRegistry();
      this.#ctx.metrics = registry;
      this.#ctx.sinks.push(registry.sink);
    }
    this.#dispatch = {
      ctx: this.#ctx,
      holds: this.#holds,
      retryAfterSeconds: settings.retryAfterSeconds,
      exposition: exposition ?? (async () => renderExposition(hostHealthFamilies(this.metrics(), null))),
    };
    this.#observe = new Observability({
      sinks: this.#ctx.sinks,
      stateDir: options.stateDir ?? null,
      askRotation: options.askRotation,
      limits: settings.observe,
      log,
    });
    const server = this;
    this.#view = {
      get table() {
        return server.#table;
      },
      maxHeadersCount: settings.maxHeadersCount,
      get httpsPort() {
        return server.#listeners.httpsPort;
      },
      hasCertificate: (host) => this.#certificates.has(host),
    };
    this.#listeners = new Listeners(settings, {
      onRequest: this.#onRequest,
      onUpgrade: this.#onUpgrade,
      onCheckContinue: this.#onCheckContinue,
    });
  }

  /** Replaces the certificates served by SNI (throws, keeping the old ones, if a pair is unusable). */
  setCertificates(certificates: readonly TlsCertificate[]): void {
    this.#certificates.replace(certificates);
  }

  /** Replaces the ACME HTTP-01 answers (already checked by the caller). */
  setChallenges(tokens: ChallengeTokens): void {
    this.#challenges = tokens;
  }

  /** Version of the document in force (0 before the first). */
  get version(): number {
    return this.#table.version;
  }

  /** Swaps in a validated document; requests already running finish on the previous table. */
  apply(doc: ConfigDocument): void {
    this.#ctx.metrics?.retain(doc);
    const table = buildRoutingTable(doc, this.#table, this.#tableDeps());
    this.#stats.retain(new Set(table.services));
    this.#ctx.pools.retain(table.origins);
    this.#ctx.rateLimits.retain(table.zones);
    this.#ctx.routing.retain(doc);
    this.#observe.apply(doc);
    const { version: _v, services: _s, ...head } = doc;
    this.#head = head;
    this.#table = table;
    if (this.#verdicts.size > 0) setVerdicts(table, this.#verdicts.all(), Date.now());
    this.#holds.release(table);
  }

  /**
   * Swaps in a validated delta on top of the document in force, in O(changed): only the services it
   * changes or removes get new routes and state (`routes-delta.ts`); requests already running finish
   * on the routes they hold. Throws, changing nothing, when it does not apply on top of the version in force.
   */
  applyDelta(delta: ConfigDelta): void {
    const head = this.#head;
    if (head === null || delta.base_version !== this.#table.version) {
      throw new ConfigRejectedError(delta.version, [
        `base_version: ${delta.base_version} is not the version in force (${head === null ? "none" : this.#table.version})`,
      ]);
    }
    this.#ctx.metrics?.retainChanged(delta.services, delta.removed);
    const change = updateRoutingTable(this.#table, delta, this.#tableDeps());
    const table = change.table;
    this.#stats.forget(delta.removed);
    this.#ctx.pools.retainChanged(table.origins, change.goneOrigins);
    this.#ctx.rateLimits.retainChanged(change.zones, change.droppedZones);
    this.#ctx.routing.retainChanged(delta.services, delta.removed);
    if (delta.head) {
      this.#head = delta.head;
      // The sinks read the envelope alone (`observe/sinks.ts`).
      this.#observe.apply({ ...delta.head, version: delta.version, services: [] });
    }
    this.#table = table;
    if (this.#verdicts.size > 0) setVerdicts(table, this.#verdicts.of(delta.services), Date.now());
    this.#holds.release(table);
  }

  #tableDeps(): TableDeps {
    return {
      stats: this.#stats,
      metrics: this.#ctx.metrics,
      health: this.#settings.health,
      shares: this.#settings.processShares,
      log: this.#log,
      share: this.#share,
    };
  }

  /**
   * The host's active health checks' verdicts (`health/checker.ts`) for this process's balancers;
   * kept for replicas a later document brings (`health/table-health.ts`).
   */
  setActive(verdicts: readonly ActiveVerdict[]): void {
    this.#verdicts.remember(verdicts, this.#table);
    setVerdicts(this.#table, verdicts, Date.now());
  }

  /** Passive-health changes the host's other processes saw (`health/passive-share.ts`). */
  applyPassive(events: readonly PassiveEvent[]): void {
    setPassive(this.#table, events, Date.now());
  }

  /** Each service's replica health as this process sees it (the report merges processes: `stats.ts`). */
  health(): Map<string, ReplicaHealth[]> {
    const now = Date.now();
    const out = new Map<string, ReplicaHealth[]>();
    for (const route of this.#table.byHost.values()) out.set(route.name, route.balancer.report(now));
    return out;
  }

  /** The access log file was rotated (by the parent process): lines go to a new file at its path. */
  reopenAccessLog(): void {
    this.#observe.reopenAccessLog();
  }

  /** Requests waiting for a service scaled to zero (diagnostics, tests). */
  held(service?: string): number {
    return this.#holds.size(service);
  }

  listen(target: ListenTarget): Promise<number> {
    return this.#listeners.listen(target);
  }

  /** Starts the HTTPS listener (SNI picks among `setCertificates`'s); resolves with its port. */
  listenTls(target: ListenTarget): Promise<number> {
    return this.#listeners.listenTls(target, this.#certificates);
  }

  /** The HTTPS listening socket's handle, for handing to sibling processes. */
  get tlsHandle(): object | undefined {
    return this.#listeners.tlsHandle;
  }

  /** The listening socket's handle, for handing to sibling processes. */
  get handle(): object | undefined {
    return this.#listeners.handle;
  }

  stats(): RawServiceStats[] {
    const now = Date.now();
    const snapshot = this.#stats.snapshot(now, this.#ctx.metrics?.windows(now));
    const health = this.health();
    for (const entry of snapshot) {
      const replicas = health.get(entry.service);
      if (replicas && replicas.length > 0) entry.health = replicas;
    }
    return snapshot;
  }

  /** The sinks every request's record goes to (the metrics registry first, when on; the access log and span exporter of the document's `observability`). */
  get sinks(): ExchangeSink[] {
    return this.#ctx.sinks;
  }

  /**
   * This process's series (empty when metrics are off). The tree policies' counts (cache_aware,
   * prefix_load) are those of the policies this process decides with: the host's state when it is
   * here, and its own fallbacks.
   */
  metrics(): MetricFamily[] {
    const registry = this.#ctx.metrics;
    if (!registry) return [];
    const trees: TreePolicyEntry[] = [];
    for (const route of this.#table.byHost.values()) {
      const entry = treePolicyEntry(route.name, madePolicy(route.balancer.policy));
      if (entry) trees.push(entry);
    }
    const routing = this.#ctx.routing;
    if (routing instanceof LocalRoutingGate) trees.push(...treePoliciesOf(routing.state, this.#table.services));
    const balancers = [...this.#table.byHost.values()].map((route) => route.balancer);
    return [
      ...registry.families((service) => this.#holds.size(service), trees),
      ...processHealthFamilies(balancers, Date.now()),
    ];
  }

  /**
   * Stops accepting, lets running exchanges finish for up to `drainTimeoutMs`, then cuts the rest.
   * With a `successor` serving the same sockets (an upgrade's handover), idle keep-alive connections
   * stay open for up to `drainIdleMs` so each can carry one more request, answered with
   * `Connection: close` (`ctx.closing`): closing them at once would race a client's next request on
   * them (it would see a reset or "socket hang up" for a request no one read).
   */
  close(options: { successor?: boolean } = {}): Promise<void> {
    this.#closed ??= this.#close(options.successor === true);
    return this.#closed;
  }

  async #close(successor: boolean): Promise<void> {
    const startedAt = Date.now();
    this.#ctx.startClosing();
    this.#holds.expireAll();
    await this.#listeners.close(successor, startedAt, () => this.#ctx.startClosing());
    for (const t of [...this.#ctx.tunnels]) t.destroy();
    await this.#ctx.pools.closeAll(true);
    // The last records are in: write the lines and send the spans still queued.
    await this.#observe.close();
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.#handle(req, res, false);
  };

  /** Routes a held request anew once its service has a replica (`dispatch.ts`). */
  readonly #again = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void => {
    this.#handle(req, res, expectsContinue);
  };

  readonly #onCheckContinue = (req: IncomingMessage, res: ServerResponse): void => {
    this.#handle(req, res, true);
  };

  #handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    const startedAt = performance.now();
    trackResponse(req, res);
    const secure = (req.socket as TLSSocket).encrypted === true;
    const address = clientAddress(req.socket.remoteAddress);
    observe(this.#ctx.sinks, req, res, req.headers.host, address, startedAt);
    // Challenges come first: the CA validates over plain HTTP whatever else the host does.
    if (!secure && req.url?.startsWith(CHALLENGE_PREFIX) && answerChallenge(req, res, this.#challenges)) return;
    const tracing = this.#observe.tracing;
    const head = readRequestHead(req.rawHeaders, address, secure ? "https" : "http", false, tracing);
    // A held request routed again keeps its first id and trace context (and its observation).
    const first = taggedIdentity(res);
    if (first) keepIdentity(head, first, tracing);
    else tagRequest(res, head);
    const routed = routeRequest(req, head, secure, this.#view);
    dispatchRequest(this.#dispatch, routed, req, res, head, address, secure, expectsContinue, startedAt, this.#again);
  }

  /** Bytes of request bodies this process holds before dialling replicas (diagnostics, tests). */
  bufferedBodyBytes(): number {
    return this.#ctx.bodies.used;
  }

  /** Every replica of the document in force with its in-flight count and health (diagnostics, tests). */
  replicas(): {
    service: string;
    id: string;
    url: string;
    inFlight: number;
    ejected: boolean;
    state: ReplicaHealthState;
  }[] {
    const now = Date.now();
    return [...this.#table.byHost.values()].flatMap((route) =>
      route.balancer.replicas.map((r) => ({
        service: r.service,
        id: r.id,
        url: r.url,
        inFlight: r.inFlight,
        ejected: r.ejectedAt !== 0,
        state: route.balancer.state(r, now),
      })),
    );
  }

  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, early: Buffer): void => {
    const startedAt = performance.now();
    socket.on("error", () => socket.destroy());
    const secure = (req.socket as TLSSocket).encrypted === true;
    const address = clientAddress(req.socket.remoteAddress);
    const head = readRequestHead(req.rawHeaders, address, secure ? "https" : "http", true, this.#observe.tracing);
    tagRequest(socket, head);
    const routed = routeRequest(req, head, secure, this.#view);
    dispatchUpgrade(this.#dispatch, routed, req, socket, early, head, address, startedAt);
  };
}
