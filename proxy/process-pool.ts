/**
 * @module
 * Multi-process serving: N child processes (`process-main.ts`, started by `process-fork.ts`) accept
 * on one shared listening socket, the kernel spreading connections between them. Two ways to share it:
 *
 * - `handle` (default): the first child binds; its listening handle comes back to the parent, which
 *   keeps it (without accepting on it) and hands it to every other child and to replacements. The
 *   socket stays bound while children restart, so connections queue instead of being refused.
 * - `cluster`: node:cluster with `SCHED_NONE` (same kernel mechanism; cluster's primary keeps the
 *   handle). It configures process-wide cluster settings, and cluster shares one socket between
 *   every child that asks for port 0, so port 0 is resolved to a free port first.
 *
 * The parent sends each document to every child and waits for every ack (returning them all to the
 * previous document if one refuses); a child that dies is restarted with the current document,
 * after a back-off when it dies young. The parent also holds the host's rate-limit buckets and
 * answers the children's batched checks (`rate-limit-gate.ts`), so the host admits the configured
 * rate whatever the number of processes; and it holds the host's routing state (`routing-state.ts`:
 * round-robin counters, in-flight loads, cache_aware trees) and answers the children's batched
 * routing decisions (`routing-gate.ts`), so every process routes as one proxy would. A child that
 * dies gives back the loads it held. The children append to one access log file; the parent
 * rotates it when one of them finds it full, then tells them all to reopen it (`observe/log-rotation.ts`).
 *
 * Metrics: the parent asks every child for its series and adds them up (`observe/families.ts`); the
 * last counts of a child that died are kept (`RetiredCounts`), so the host's counters never go down
 * when a child is replaced. The cache_aware counts of the host's routing state are the parent's own,
 * as are the engine signals: the parent scrapes the replicas' `/metrics` (`engine/scraper.ts`) and
 * sets each replica's engine load in the routing state the policies read.
 *
 * Why past ~400 lines: this is the one place that knows the children's lifecycle (spawn, restart,
 * document rollout with rollback, death), and every host-wide service above is a message handler
 * over that lifecycle; the services' own logic lives in their modules. Next split, when it grows:
 * the message dispatch (`#onMessage`) into a table of per-message handlers.
 */
import type { ConfigDelta } from "../schema/config-delta.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import * as L from "../schema/limits.ts";
import type { ChallengeTokens } from "./acme-challenge.ts";
import { engineFamilies } from "./engine/engine-metrics.ts";
import { EngineScraper, type EngineScraperOptions } from "./engine/scraper.ts";
import { ProxyProcessError } from "./errors.ts";
import { type ActiveVerdict, HealthChecker, type HealthCheckerOptions } from "./health/checker.ts";
import { hostHealthFamilies } from "./health/health-metrics.ts";
import { PassiveMemory } from "./health/passive-share.ts";
import { Mesh } from "./mesh/mesh.ts";
import { meshFamilies } from "./mesh/mesh-metrics.ts";
import { renderExposition } from "./observe/exposition.ts";
import { type MetricFamily, ProcessSeries, type ServiceReplicas } from "./observe/families.ts";
import { LogRotator } from "./observe/log-rotation.ts";
import { accessLogPath, observabilityOf } from "./observe/sinks.ts";
import { treePoliciesOf, treePolicyFamilies } from "./observe/tree-policy-metrics.ts";
import { type Child, freePort, type Sharing, startChild } from "./process-fork.ts";
import type { FromProcess, ToProcess } from "./process-protocol.ts";
import { ProcessGoneError, ProcessRpc } from "./process-rpc.ts";
import { answerAsk } from "./rate-limit-gate.ts";
import { ZoneRegistry } from "./rate-limit-store.ts";
import { answerRoute } from "./routing-gate.ts";
import { RoutingState } from "./routing-state.ts";
import { ServiceZones } from "./service-zones.ts";
import type { ServerSettings } from "./settings.ts";
import type { RawServiceStats } from "./stats.ts";
import type { TlsCertificate } from "./tls.ts";

export type { Sharing } from "./process-fork.ts";

export interface ProcessPoolOptions {
  host: string;
  port: number;
  count: number;
  settings: ServerSettings;
  document: ConfigDocument | null;
  sharing: Sharing;
  /** The HTTPS listener's port (0 = any free one), or null for none. */
  tlsPort: number | null;
  certificates: TlsCertificate[];
  challenges: ChallengeTokens;
  log: (line: string) => void;
  /** A child holds a request for a service scaled to zero. */
  onHold: (service: string) => void;
  /** The host's metrics rendered for Prometheus, for a child asked `GET /metrics` (default: the pool's series). */
  exposition?: () => Promise<string>;
  /** The agent's state directory, where the children write the access log; null or absent: none. */
  stateDir?: string | null;
  /** A child must be serving within this after it is started. */
  startTimeoutMs?: number;
  /** A child must acknowledge a document (or answer a stats request) within this. */
  answerTimeoutMs?: number;
  /** Extra Node flags for the children (benchmark experiments, e.g. GC sizing). */
  nodeFlags?: string[];
  /**
   * With `count` 1, serve from a child process anyway (a crash of the serving code then costs a
   * restart of the child, not of the whole proxy); default: the one process serves in this one
   * (`in-process-child.ts`).
   */
  servingChild?: boolean;
  /** The engine scraper's clock, network and bounds (tests); default: real ones. */
  engines?: EngineScraperOptions;
  /**
   * Listening sockets another proxy handed over (`sharing: "handle"` only): every child serves on
   * them instead of binding, so connections keep queueing on the same sockets while proxies change.
   */
  adopt?: ListeningSockets | null;
  /** The health checker's clock and network (tests); default: real ones. */
  health?: HealthCheckerOptions;
}

/** The raw listening handles a pool serves on (to hand over to a successor process), with their ports. */
export interface ListeningSockets {
  handle: object;
  port: number;
  tlsHandle: object | null;
  tlsPort: number | null;
}

/** A child that dies within this of serving died young: its restart backs off. */
const YOUNG_MS = 10_000;
/**
 * The replica ids of each service of `document`, indexed only when looked up: the retired series it
 * filters are usually none, and a delta must not build 10,000 sets to find that out.
 */
function replicaIds(document: ConfigDocument | null): ServiceReplicas {
  let index: Map<string, Set<string>> | null = null;
  return {
    get: (service) => {
      index ??= new Map((document?.services ?? []).map((s) => [s.name, new Set(s.replicas.map((r) => r.id))]));
      return index.get(service);
    },
  };
}

/** The longest a breaker stays open (`schema/health.ts`): an opening older than this no longer holds. */
const MAX_OPEN_MS = L.MAX_BREAKER_SECONDS * 1000;

/**
 * Wait before restarting a child that died young `quickExits` times in a row: the first death is
 * restarted at once (a crash or a kill is not yet a crash loop, and the host serves with one
 * process fewer meanwhile), later ones back off.
 */
export function restartDelay(quickExits: number): number {
  return quickExits <= 1 ? 0 : Math.min(100 * 2 ** (quickExits - 1), 10_000);
}

/** One process position: its current child, and whether it serves. */
interface Slot {
  readonly index: number;
  child: Child | null;
  /** Resolves true once serving, false if the process died first. */
  ready: Promise<boolean>;
  /** The document the child runs (or will run once ready). */
  document: ConfigDocument | null;
  readyAt: number;
  /** Restarts after a short life, for the back-off. */
  quickExits: number;
  restartTimer: NodeJS.Timeout | null;
}

export class ProcessPool {
  readonly #options: ProcessPoolOptions;
  readonly #slots: Slot[] = [];
  readonly #rpc: ProcessRpc;
  #document: ConfigDocument | null;
  #port = 0;
  #handle: object | undefined;
  #tlsPort: number | null = null;
  #tlsHandle: object | undefined;
  #certificates: TlsCertificate[];
  #challenges: ChallengeTokens;
  #started = false;
  #closing: Promise<void> | null = null;
  readonly #rateLimits: ZoneRegistry;
  /** The zones of each service's rules (`service-zones.ts`): a delta follows its own services'. */
  readonly #zones: ServiceZones;
  readonly #routing = new RoutingState();
  /** What this host shares with the gateway's other replicas (`mesh/mesh.ts`). */
  readonly mesh: Mesh;
  /** Scrapes the replicas' engines here, beside the routing state their loads feed. */
  readonly #engines: EngineScraper;
  /** The host's active health checks; verdicts go to every child's balancers (`health/checker.ts`). */
  readonly #health: HealthChecker;
  /** Verdict changes of this event-loop turn, sent to the children in one message. */
  #verdicts: ActiveVerdict[] | null = null;
  /** Ejections and open breakers still running, for children started later (`health/passive-share.ts`). */
  readonly #passive = new PassiveMemory();
  readonly #rotator: LogRotator;
  /** Owner of the routing leases of each child process started. */
  #nextOwner = 1;
  /** The last series each position's child reported, and those of children gone. */
  readonly #series = new ProcessSeries<Slot>();

  private constructor(options: ProcessPoolOptions) {
    this.#options = options;
    this.#rpc = new ProcessRpc(options.answerTimeoutMs ?? 10_000);
    this.#document = options.document;
    this.#certificates = options.certificates;
    this.#challenges = options.challenges;
    this.#rateLimits = new ZoneRegistry(options.settings.rateLimitKeys);
    this.#zones = new ServiceZones(this.#rateLimits);
    this.#zones.retain(options.document?.services ?? []);
    this.#routing.retain(options.document);
    this.mesh = new Mesh({ zones: this.#rateLimits });
    this.#routing.setMesh(this.mesh);
    this.#engines = new EngineScraper({
      ...options.engines,
      onLoad: (service, id, url, load) => this.#routing.setEngine(service, id, url, load),
    });
    this.#engines.retain(options.document);
    this.#health = new HealthChecker({
      ...options.health,
      log: options.log,
      onVerdict: (verdict) => this.#broadcastVerdict(verdict),
    });
    this.#health.retain(options.document);
    this.#rotator = new LogRotator(options.log);
  }

  static async start(options: ProcessPoolOptions): Promise<ProcessPool> {
    const pool = new ProcessPool(options);
    try {
      await pool.#startAll();
    } catch (err) {
      await pool.close();
      throw err;
    }
    pool.#started = true;
    return pool;
  }

  get port(): number {
    return this.#port;
  }

  get tlsPort(): number | null {
    return this.#tlsPort;
  }

  /** The host's in-flight count per replica of the services routed here (diagnostics, tests). */
  routingLoads(): ReturnType<RoutingState["loads"]> {
    return this.#routing.loads();
  }

  /** The engine scraper (the agent's report reads its signals and queue samples). */
  get engines(): EngineScraper {
    return this.#engines;
  }

  /** The listening sockets, to hand to a successor (null before they are bound, with `cluster`, or once closed). */
  sockets(): ListeningSockets | null {
    if (!this.#handle) return null;
    return { handle: this.#handle, port: this.#port, tlsHandle: this.#tlsHandle ?? null, tlsPort: this.#tlsPort };
  }

  /** The host's health checker (the report and metrics read its verdicts). */
  get health(): HealthChecker {
    return this.#health;
  }

  #broadcastVerdict(verdict: ActiveVerdict): void {
    if (this.#verdicts) {
      this.#verdicts.push(verdict);
      return;
    }
    this.#verdicts = [verdict];
    setImmediate(() => {
      const verdicts = this.#verdicts!;
      this.#verdicts = null;
      for (const slot of this.#slots) if (slot.child?.process.connected) slot.child.send({ type: "health", verdicts });
    });
  }

  /** Process ids of the children now running. */
  pids(): number[] {
    return this.#slots.flatMap((s) => (s.child?.process.pid ? [s.child.process.pid] : []));
  }

  async #startAll(): Promise<void> {
    const { count, host, sharing } = this.#options;
    for (let index = 0; index < count; index++) {
      this.#slots.push({
        index,
        child: null,
        ready: Promise.resolve(false),
        document: null,
        readyAt: 0,
        quickExits: 0,
        restartTimer: null,
      });
    }
    const tlsPort = this.#options.tlsPort;
    const adopt = this.#options.adopt;
    if (sharing === "handle" && adopt) {
      this.#handle = adopt.handle;
      this.#port = adopt.port;
      this.#tlsHandle = adopt.tlsHandle ?? undefined;
      this.#tlsPort = adopt.tlsHandle ? adopt.tlsPort : null;
      const tls = adopt.tlsHandle ? "handle" : null;
      await Promise.all(this.#slots.map((slot) => this.#boot(slot, "handle", tls, false)));
    } else if (sharing === "handle") {
      const tls = tlsPort === null ? null : { host, port: tlsPort };
      this.#port = await this.#boot(this.#slots[0]!, { host, port: this.#options.port }, tls, true);
      await Promise.all(this.#slots.slice(1).map((slot) => this.#boot(slot, "handle", tls && "handle", false)));
    } else {
      this.#port = this.#options.port === 0 ? await freePort(host) : this.#options.port;
      if (tlsPort !== null) this.#tlsPort = tlsPort === 0 ? await freePort(host) : tlsPort;
      const tls = this.#tlsPort === null ? null : { host, port: this.#tlsPort };
      await Promise.all(this.#slots.map((slot) => this.#boot(slot, { host, port: this.#port }, tls, false)));
    }
  }

  /** Starts the slot's process; resolves with its port once it serves. */
  #boot(
    slot: Slot,
    listen: { host: string; port: number } | "handle",
    tls: { host: string; port: number } | "handle" | null,
    shareHandle: boolean,
  ): Promise<number> {
    const child = startChild(this.#options);
    const pid = child.process.pid;
    const owner = this.#nextOwner++;
    slot.child = child;
    slot.document = this.#document;
    let settle!: (ok: boolean) => void;
    slot.ready = new Promise<boolean>((resolve) => {
      settle = resolve;
    });
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        fail(new ProxyProcessError(`proxy process ${pid} did not start within ${this.#startTimeout / 1000}s`));
        child.process.kill("SIGKILL");
      }, this.#startTimeout);
      let booting = true;
      const fail = (err: Error) => {
        if (!booting) return;
        booting = false;
        clearTimeout(timer);
        settle(false);
        reject(err);
      };
      child.process.on("message", (message: FromProcess, handle: object | undefined) => {
        if (message.type === "started") {
          slot.document = this.#document;
          child.send(
            {
              type: "init",
              settings: this.#options.settings,
              document: slot.document,
              listen,
              shareHandle,
              tls,
              certificates: this.#certificates,
              challenges: this.#challenges,
              stateDir: this.#options.stateDir ?? null,
            },
            listen === "handle" ? this.#handle : undefined,
          );
          if (tls === "handle") child.send({ type: "tls-handle" }, this.#tlsHandle);
        } else if (message.type === "tls-ready" && booting) {
          if (shareHandle) {
            this.#tlsHandle = handle;
            this.#tlsPort = message.port;
          }
        } else if (message.type === "ready" && booting) {
          booting = false;
          clearTimeout(timer);
          if (shareHandle) this.#handle = handle;
          slot.readyAt = Date.now();
          // A child started after the checks began learns every verdict so far.
          const verdicts = this.#health.verdicts().filter((v) => v.verdict !== "unknown" || v.last !== null);
          if (verdicts.length > 0) child.send({ type: "health", verdicts });
          const passive = this.#passive.current(Date.now(), MAX_OPEN_MS);
          if (passive.length > 0) child.send({ type: "passive", events: passive });
          settle(true);
          resolve(message.port);
        } else if (message.type === "route") {
          const answer = answerRoute(this.#routing, owner, message);
          if (answer) child.send(answer);
        } else if (message.type === "passive") {
          // Relayed at once (the child batched its turn's changes): the other children stop sending
          // to a replica this one ejected within a message's round trip.
          this.#passive.note(message.events);
          for (const other of this.#slots)
            if (other !== slot && other.child?.process.connected) other.child.send(message);
        } else if (message.type === "rate-limit") {
          child.send(answerAsk(this.#rateLimits, message));
        } else if (message.type === "exposition-ask") {
          (this.#options.exposition ?? (async () => renderExposition(await this.metrics())))().then(
            (text) => child.send({ type: "exposition", ask: message.ask, text, error: null }),
            (err: Error) => child.send({ type: "exposition", ask: message.ask, text: null, error: err.message }),
          );
        } else if (message.type === "failed") {
          fail(new ProxyProcessError(`proxy process ${pid} failed to start: ${message.error}`));
        } else {
          this.#onMessage(message);
        }
      });
      child.process.once("exit", (code, signal) => {
        this.#routing.forget(owner);
        const exited = () =>
          fail(new ProxyProcessError(`proxy process ${pid} exited while starting (${signal ?? `code ${code}`})`));
        // A child that could not start says why (`failed`: "listen EADDRINUSE …") and exits; Node
        // can emit the exit before that message, which the channel still holds until it closes.
        if (booting && child.process.connected) {
          const late = setTimeout(exited, 1_000);
          late.unref();
          child.process.once("disconnect", () => {
            clearTimeout(late);
            exited();
          });
        } else {
          exited();
        }
        this.#onExit(slot, child, code, signal);
      });
      child.process.once("error", (err) =>
        fail(new ProxyProcessError(`proxy process could not start: ${err.message}`)),
      );
    });
  }

  get #startTimeout(): number {
    return this.#options.startTimeoutMs ?? 30_000;
  }

  #onMessage(message: FromProcess): void {
    if (message.type === "log") {
      this.#options.log(message.line);
      return;
    }
    if (message.type === "held") {
      this.#options.onHold(message.service);
      return;
    }
    if (message.type === "rotate-access-log") {
      this.#rotateAccessLog();
      return;
    }
    this.#rpc.answer(message);
  }

  #onExit(slot: Slot, child: Child, code: number | null, signal: string | null): void {
    if (slot.child !== child) return;
    slot.child = null;
    this.#rpc.gone(slot, child.process.pid);
    this.#series.gone(slot);
    if (this.#closing || !this.#started) return;
    const lived = slot.readyAt ? Date.now() - slot.readyAt : 0;
    slot.quickExits = lived < YOUNG_MS ? slot.quickExits + 1 : 0;
    const delay = restartDelay(slot.quickExits);
    this.#options.log(
      `proxy process ${child.process.pid} exited (${signal ?? `code ${code}`}); restarting${delay ? ` in ${delay}ms` : ""}`,
    );
    slot.restartTimer = setTimeout(() => this.#restart(slot), delay);
  }

  #restart(slot: Slot): void {
    slot.restartTimer = null;
    if (this.#closing) return;
    const { host, sharing } = this.#options;
    const tls = this.#tlsPort === null ? null : sharing === "handle" ? "handle" : { host, port: this.#tlsPort };
    this.#boot(slot, sharing === "handle" ? "handle" : { host, port: this.#port }, tls, false).catch((err: Error) =>
      this.#options.log(`proxy process restart failed: ${err.message}`),
    );
  }

  /** A child found the access log full: rotate it (if it still is), then every child reopens it. */
  #rotateAccessLog(): void {
    const path = accessLogPath(this.#options.stateDir ?? null);
    const settings = observabilityOf(this.#document).access_log;
    if (path === null || settings?.destination !== "file") return;
    void this.#rotator.rotate({ path, maxSize: settings.max_size, maxFiles: settings.max_files }, () => {
      for (const slot of this.#slots) if (slot.child?.process.connected) slot.child.send({ type: "reopen-access-log" });
    });
  }

  #request(slot: Slot, message: ToProcess & { id: number }): Promise<FromProcess> {
    return this.#rpc.request(slot, slot.child, message);
  }

  /** Brings one child to `document`. A child that dies meanwhile is fine: its replacement starts with the current document. */
  async #applyTo(slot: Slot, document: ConfigDocument): Promise<void> {
    if (!(await slot.ready) || slot.document === document) return;
    try {
      const answer = await this.#request(slot, { type: "apply", id: this.#rpc.nextId(), document });
      if (answer.type === "apply-failed")
        throw new ProxyProcessError(`proxy process refused the document: ${answer.error}`);
      slot.document = document;
    } catch (err) {
      if (err instanceof ProcessGoneError) return;
      throw err;
    }
  }

  /** Sends `document` to every child and resolves once all of them run it; on failure, returns them to the previous one. */
  async apply(document: ConfigDocument): Promise<void> {
    const previous = this.#document;
    this.#document = document;
    // Before any child runs the new rules; zones of rules the document keeps keep their buckets.
    this.#zones.retain(document.services);
    this.#routing.retain(document);
    this.#follow(document);
    await this.#settle(
      previous,
      this.#slots.map((slot) => this.#applyTo(slot, document)),
    );
  }

  /**
   * Sends `delta` (checked, on top of the document in force) to every child, which applies it to its
   * table without rebuilding the other services; `document` is the merged whole, the one a child
   * started later (or one not at the delta's base) gets. On failure every child returns to the
   * previous document, whole, as `apply` does.
   */
  async applyDelta(delta: ConfigDelta, document: ConfigDocument): Promise<void> {
    const previous = this.#document;
    this.#document = document;
    // Each host-wide service follows the delta's services alone (O(changed), not a walk of the document).
    this.#zones.retainChanged(delta.services, delta.removed);
    this.#routing.retainChanged(delta.services, delta.removed);
    this.#engines.retainChanged(delta.services, delta.removed);
    this.#health.retainChanged(delta.services, delta.removed);
    // Retired series (of processes gone) drop the samples of replicas the document no longer has;
    // nothing retired (the usual case): nothing looked up (`replicaIds` indexes only when asked).
    this.#series.retain(replicaIds(document));
    await this.#settle(
      previous,
      this.#slots.map((slot) => this.#applyDeltaTo(slot, delta, previous, document)),
    );
  }

  /** The host-wide services that follow the document in force (their unchanged replicas keep their state). */
  #follow(document: ConfigDocument | null): void {
    this.#engines.retain(document);
    this.#health.retain(document);
    this.#series.retain(replicaIds(document));
  }

  /** Waits for every child's apply; when one failed, returns them all to `previous` (whole) and throws. */
  async #settle(previous: ConfigDocument | null, applies: Promise<void>[]): Promise<void> {
    const results = await Promise.allSettled(applies);
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (!failure) return;
    this.#document = previous;
    this.#zones.retain(previous?.services ?? []);
    this.#routing.retain(previous);
    this.#engines.retain(previous);
    this.#health.retain(previous);
    if (previous) {
      const rollback = await Promise.allSettled(this.#slots.map((slot) => this.#applyTo(slot, previous)));
      // A child that cannot return to the previous document is replaced; its successor starts with it.
      rollback.forEach((r, i) => {
        if (r.status === "rejected") this.#slots[i]!.child?.process.kill("SIGKILL");
      });
    }
    throw failure.reason instanceof Error ? failure.reason : new ProxyProcessError(String(failure.reason));
  }

  /** Brings one child from `base` to `document` by `delta`; a child elsewhere gets `document` whole. */
  async #applyDeltaTo(slot: Slot, delta: ConfigDelta, base: ConfigDocument | null, document: ConfigDocument) {
    if (!(await slot.ready) || slot.document === document) return;
    if (slot.document !== base) return this.#applyTo(slot, document);
    try {
      const answer = await this.#request(slot, { type: "apply-delta", id: this.#rpc.nextId(), delta });
      if (answer.type === "apply-failed")
        throw new ProxyProcessError(`proxy process refused the delta: ${answer.error}`);
      slot.document = document;
    } catch (err) {
      if (err instanceof ProcessGoneError) return;
      throw err;
    }
  }

  /** Hands certificates to every serving child (and to later replacements); resolves once all have them. */
  async setCertificates(certificates: TlsCertificate[]): Promise<void> {
    this.#certificates = certificates;
    await this.#setEverywhere(() => ({ type: "certificates", id: this.#rpc.nextId(), certificates }));
  }

  /** Hands ACME challenge answers to every serving child; resolves once all can answer them. */
  async setChallenges(tokens: ChallengeTokens): Promise<void> {
    this.#challenges = tokens;
    await this.#setEverywhere(() => ({ type: "challenges", id: this.#rpc.nextId(), tokens }));
  }

  async #setEverywhere(message: () => ToProcess & { id: number }): Promise<void> {
    const results = await Promise.allSettled(
      this.#slots.map(async (slot) => {
        if (!(await slot.ready)) return;
        try {
          const answer = await this.#request(slot, message());
          if (answer.type === "set-failed") throw new ProxyProcessError(`proxy process refused: ${answer.error}`);
        } catch (err) {
          // A child gone meanwhile is fine: its replacement starts with the current set.
          if (!(err instanceof ProcessGoneError)) throw err;
        }
      }),
    );
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) throw failure.reason;
  }

  /** Raw stats of every child that answers (a child that is restarting is skipped). */
  async stats(): Promise<RawServiceStats[][]> {
    const answers = await Promise.allSettled(
      this.#slots.filter((s) => s.child).map((slot) => this.#request(slot, { type: "stats", id: this.#rpc.nextId() })),
    );
    return answers.flatMap((a) => (a.status === "fulfilled" && a.value.type === "stats" ? [a.value.stats] : []));
  }

  /**
   * The host's series: every child's (the last it reported when it does not answer now), those of
   * children gone, and the host routing state's cache_aware counts.
   */
  async metrics(): Promise<MetricFamily[]> {
    await Promise.allSettled(
      this.#slots
        .filter((s) => s.child)
        .map(async (slot) => {
          const pid = slot.child?.process.pid;
          const answer = await this.#request(slot, { type: "metrics", id: this.#rpc.nextId() });
          if (answer.type === "metrics" && slot.child?.process.pid === pid)
            this.#series.update(slot, pid, answer.families);
        }),
    );
    const services = this.#document?.services.map((s) => s.name) ?? [];
    const sum = this.#series.sum([
      ...treePolicyFamilies(treePoliciesOf(this.#routing, services)),
      ...meshFamilies(this.mesh.counts),
      ...(this.#options.settings.metrics ? engineFamilies(this.#engines) : []),
    ]);
    return this.#options.settings.metrics ? hostHealthFamilies(sum, this.#health) : sum;
  }

  /** Asks every child to drain and exit; kills the ones still there after their drain bound. */
  close(options: { successor?: boolean } = {}): Promise<void> {
    this.#closing ??= this.#close(options.successor === true);
    return this.#closing;
  }

  async #close(successor: boolean): Promise<void> {
    this.#engines.close();
    this.#health.close();
    const exits: Promise<void>[] = [];
    for (const slot of this.#slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      const child = slot.child;
      if (!child) continue;
      const proc = child.process;
      if (proc.exitCode !== null || proc.signalCode !== null) continue;
      exits.push(
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => proc.kill("SIGKILL"), this.#options.settings.drainTimeoutMs + 5_000);
          proc.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          if (proc.connected) child.send({ type: "close", successor });
          else proc.kill("SIGTERM");
        }),
      );
    }
    await Promise.all(exits);
    for (const handle of [this.#handle, this.#tlsHandle]) (handle as { close?: () => void } | undefined)?.close?.();
    this.#handle = undefined;
    this.#tlsHandle = undefined;
  }
}
