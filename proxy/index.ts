/**
 * @module
 * The data plane's public face, used by the agent: start the proxy (in this process or in child
 * processes, `process-pool.ts`), apply configuration documents, read per-service stats and the
 * host's metrics (`observe/`), close. The options it takes, and their checks, are `options.ts`.
 */
import type { ServiceStats } from "../schema/agent-protocol.ts";
import type { ConfigDelta } from "../schema/config-delta.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import type { MeshDigest } from "../schema/mesh.ts";
import { type ChallengeTokens, checkChallenges } from "./acme-challenge.ts";
import { type ConfigState, indexDocument, parseDelta } from "./config-merge.ts";
import { engineFamilies } from "./engine/engine-metrics.ts";
import { EngineScraper, type EngineScraperOptions } from "./engine/scraper.ts";
import { ConfigRejectedError, ProxyClosedError } from "./errors.ts";
import { HealthChecker, type HealthCheckerOptions } from "./health/checker.ts";
import { hostHealthFamilies } from "./health/health-metrics.ts";
import { Mesh } from "./mesh/mesh.ts";
import { meshFamilies } from "./mesh/mesh-metrics.ts";
import { renderExposition } from "./observe/exposition.ts";
import { type MetricFamily, mergeFamilies } from "./observe/families.ts";
import { checkCertificates, checkOptions, type ProxyOptions } from "./options.ts";
import { type ListeningSockets, ProcessPool, type Sharing } from "./process-pool.ts";
import { LocalGate } from "./rate-limit-gate.ts";
import { ZoneRegistry } from "./rate-limit-store.ts";
import { LocalRoutingGate } from "./routing-gate.ts";
import { RoutingState } from "./routing-state.ts";
import { ProxyServer } from "./server.ts";
import { checkSettings, DEFAULT_SERVER_SETTINGS, type ServerSettings } from "./settings.ts";
import { summarizeStats } from "./stats.ts";
import type { TlsCertificate } from "./tls.ts";

export type { ChallengeTokens } from "./acme-challenge.ts";
export { ConfigRejectedError, ProxyClosedError, ProxyOptionsError, ProxyProcessError } from "./errors.ts";
export { METRICS, type MetricSpec } from "./observe/catalog.ts";
export { EXPOSITION_CONTENT_TYPE } from "./observe/exposition.ts";
export type { MetricFamily } from "./observe/families.ts";
export type { ProxyOptions } from "./options.ts";
export type { ListeningSockets } from "./process-pool.ts";
export type { TlsCertificate } from "./tls.ts";

export interface ProxyHandle {
  readonly port: number;
  /** The HTTPS listener's port, or null without one. */
  readonly httpsPort: number | null;
  /**
   * Replaces the certificates served on the HTTPS port, for every process, and resolves once all
   * serve them; open connections keep the certificate they started with. Plain HTTP to a host in
   * the set is redirected (301) to HTTPS. Rejects, changing nothing, if a pair is unusable.
   */
  setCertificates(certificates: TlsCertificate[]): Promise<void>;
  /** Replaces the ACME HTTP-01 answers (token → key authorization); resolves once every process answers them. */
  setChallenges(tokens: ChallengeTokens): Promise<void>;
  /**
   * Validates (valibot ConfigDocument, then the cross-field rules; not with `validatedDocuments`) and
   * applies to every process; resolves once all swapped; rejects with a clear reason (the agent
   * NACKs with it) and keeps the old config.
   */
  apply(doc: ConfigDocument): Promise<void>;
  /**
   * Applies a delta (`schema/config-delta.ts`) on top of the document in force, to every process,
   * rebuilding only the services it changes or removes; validated like `apply` (its services, head,
   * and their clashes with the services kept), and refused (ConfigRejectedError) when its
   * `base_version` is not the version in force. Resolves once all swapped.
   */
  applyDelta(delta: ConfigDelta): Promise<void>;
  /**
   * Per-service stats aggregated across processes (with the LLM windows of services that had LLM
   * traffic), and the engine signals of each scraped service's replicas with their queue samples.
   */
  stats(): Promise<ServiceStats[]>;
  /** The proxy's metric series, summed over its processes (empty when `settings.metrics` is off). */
  metrics(): Promise<MetricFamily[]>;
  /** The proxy's series and `extraMetrics`, in Prometheus's text format (`EXPOSITION_CONTENT_TYPE`). */
  exposition(): Promise<string>;
  /**
   * Stop accepting, let in-flight requests finish (bounded), stop the child processes. With
   * `successor`, another proxy serves the same listening sockets from now on (an upgrade's handover):
   * idle keep-alive connections then get one more request each, answered `Connection: close`, before
   * they close (`ServerSettings.drainIdleMs`). Without one, nobody could answer it: they close at once.
   */
  close(options?: CloseOptions): Promise<void>;
  /**
   * What this host shares with the gateway's other replicas (`mesh/mesh.ts`); absent: nothing. In
   * this process it is the `Mesh` itself; through a standalone proxy's control socket, the same two
   * calls answered over it.
   */
  readonly mesh?: MeshPort;
}

/** How a proxy closes: `successor` when another proxy serves its listening sockets from now on. */
export interface CloseOptions {
  successor?: boolean;
}

/** The agent's side of the mesh: the digest to send, and a peer's digest to apply. */
export interface MeshPort {
  take(): MeshDigest | null | Promise<MeshDigest | null>;
  /** Validated whole; a bad digest is counted and dropped (false), never thrown. */
  apply(raw: unknown): boolean | Promise<boolean>;
}

/** Knobs for tests and the benchmark; the agent uses the defaults. */
export interface ProxyTuning {
  settings?: Partial<ServerSettings>;
  /** How the child processes share the listening socket (see process-pool.ts). */
  sharing?: Sharing;
  /** Extra Node flags for the child processes. */
  nodeFlags?: string[];
  /**
   * The rate limiter's clock (milliseconds since the epoch), with `processes: 0`: tests whose
   * verdicts depend on elapsed time freeze it, so a slow machine cannot refill a bucket mid-test.
   */
  rateLimitClock?: () => number;
  /** The engine scraper's clock, network and bounds (`engine/scraper.ts`); default: real ones. */
  engines?: EngineScraperOptions;
  /** Serve on listening sockets a previous proxy handed over (the standalone proxy's upgrade, `control/`). */
  adopt?: ListeningSockets | null;
  /** The health checker's clock and network (`health/checker.ts`); default: real ones. */
  health?: HealthCheckerOptions;
}

export interface TunedProxyHandle extends ProxyHandle {
  /** Ids of the serving processes: the children, this process's own when its one process serves here, none with `processes: 0`. */
  pids(): number[];
  /** The host routing state's loads per replica, engine loads included (diagnostics, tests). */
  routingLoads(): ReturnType<RoutingState["loads"]>;
  /** The listening sockets, to hand over to a successor; null when serving in this process. */
  sockets(): ListeningSockets | null;
  /** The document in force, whole (deltas merged in); null before the first. */
  document(): ConfigDocument | null;
}

const describe = (delta: ConfigDelta) =>
  `${delta.services.length} services changed, ${delta.removed.length} removed${delta.head ? ", head changed" : ""}`;

export function startProxy(options: ProxyOptions): Promise<ProxyHandle> {
  return startTunedProxy(options, {});
}

/** `startProxy` with tuning (tests, benchmark). */
export async function startTunedProxy(options: ProxyOptions, tuning: ProxyTuning): Promise<TunedProxyHandle> {
  const checked = checkOptions(options);
  const settings: ServerSettings = { ...DEFAULT_SERVER_SETTINGS, ...tuning.settings };
  checkSettings(settings);
  // The services' names in the document's order, for the stats report (made when it asks).
  const services = () => state?.doc.services.map((s) => s.name) ?? [];
  // The document in force with its indexes: what a delta is checked against and merged into (in place).
  let state: ConfigState | null = checked.initial ? indexDocument(checked.initial) : null;
  /**
   * Checks a delta and merges it into the state: the delta, the merged whole document and what undoes
   * the merge when the processes refuse it. Throws ConfigRejectedError, changing nothing.
   */
  const acceptDelta = (input: ConfigDelta) => {
    if (state === null) throw new ConfigRejectedError(input?.version ?? null, ["no document to apply a delta on"]);
    const delta = checked.validated ? input : parseDelta(input, state);
    if (delta.base_version !== state.version) {
      throw new ConfigRejectedError(delta.version, [
        `base_version: ${delta.base_version} is not the version in force (${state.version})`,
      ]);
    }
    const undo = state.apply(delta);
    return { delta, undo };
  };
  let closed = false;
  const assertOpen = () => {
    if (closed) throw new ProxyClosedError();
  };

  if (checked.processes === 0) {
    const zones = new ZoneRegistry(settings.rateLimitKeys, tuning.rateLimitClock);
    const rateLimits = new LocalGate(zones);
    // The host's routing state is this process's; the engine scraper feeds its loads.
    const routing = new RoutingState();
    const mesh = new Mesh({ zones });
    routing.setMesh(mesh);
    const engines = new EngineScraper({
      ...tuning.engines,
      onLoad: (service, id, url, load) => routing.setEngine(service, id, url, load),
    });
    const health = new HealthChecker({
      ...tuning.health,
      log: checked.log,
      onVerdict: (verdict) => server.setActive([verdict]),
    });
    const metrics = () =>
      settings.metrics
        ? hostHealthFamilies(
            mergeFamilies([server.metrics(), engineFamilies(engines), meshFamilies(mesh.counts)]),
            health,
          )
        : [];
    const exposition = async () => renderExposition(mergeFamilies([metrics(), checked.extraMetrics()]));
    const server: ProxyServer = new ProxyServer(settings, checked.log, {
      rateLimits,
      onHold: checked.onHeldRequest,
      exposition,
      stateDir: checked.stateDir,
      routing: new LocalRoutingGate(routing),
    });
    if (checked.initial) {
      server.apply(checked.initial);
      engines.retain(checked.initial);
      health.retain(checked.initial);
    }
    const httpsPort =
      checked.tlsPort === null ? null : await server.listenTls({ host: checked.host, port: checked.tlsPort });
    const port = await server.listen({ host: checked.host, port: checked.port });
    return {
      port,
      httpsPort,
      async setCertificates(certificates) {
        assertOpen();
        server.setCertificates(checkCertificates(certificates));
      },
      async setChallenges(tokens) {
        assertOpen();
        server.setChallenges(checkChallenges(tokens));
      },
      async apply(doc) {
        assertOpen();
        const parsed = checked.accept(doc);
        server.apply(parsed);
        engines.retain(parsed);
        health.retain(parsed);
        state = indexDocument(parsed);
        checked.log(`proxy: configuration version ${parsed.version} applied (${parsed.services.length} services)`);
      },
      async applyDelta(input) {
        assertOpen();
        const { delta, undo } = acceptDelta(input);
        try {
          server.applyDelta(delta);
        } catch (error) {
          undo();
          throw error;
        }
        engines.retainChanged(delta.services, delta.removed);
        health.retainChanged(delta.services, delta.removed);
        checked.log(`proxy: configuration delta ${delta.base_version} → ${delta.version} applied (${describe(delta)})`);
      },
      async stats() {
        assertOpen();
        return summarizeStats(services(), [server.stats()], engines);
      },
      async metrics() {
        assertOpen();
        return metrics();
      },
      exposition() {
        assertOpen();
        return exposition();
      },
      close(options) {
        closed = true;
        engines.close();
        health.close();
        return server.close(options);
      },
      pids: () => [],
      document: () => state?.doc ?? null,
      routingLoads: () => routing.loads(),
      mesh,
      sockets: () => null,
    };
  }

  const exposition = async () => renderExposition(mergeFamilies([await pool.metrics(), checked.extraMetrics()]));
  const pool: ProcessPool = await ProcessPool.start({
    host: checked.host,
    port: checked.port,
    count: checked.processes,
    servingChild: checked.servingChild,
    // The serving processes split each service's admission limit and retry floor (proxy/admission/).
    settings: { ...settings, processShares: checked.processes },
    document: checked.initial,
    sharing: tuning.sharing ?? "handle",
    tlsPort: checked.tlsPort,
    certificates: [],
    challenges: {},
    nodeFlags: tuning.nodeFlags ?? [],
    engines: tuning.engines,
    health: tuning.health,
    log: checked.log,
    onHold: checked.onHeldRequest,
    exposition,
    stateDir: checked.stateDir,
    adopt: tuning.adopt ?? null,
  });
  // Documents apply one after another, in the order they were given.
  let queue: Promise<unknown> = Promise.resolve();
  // The document every process runs (the state is a delta ahead while the processes apply it).
  let applied = checked.initial;
  return {
    port: pool.port,
    httpsPort: pool.tlsPort,
    async setCertificates(certificates) {
      assertOpen();
      await pool.setCertificates(checkCertificates(certificates));
    },
    async setChallenges(tokens) {
      assertOpen();
      await pool.setChallenges(checkChallenges(tokens));
    },
    apply(doc) {
      const run = async () => {
        assertOpen();
        const parsed = checked.accept(doc);
        await pool.apply(parsed);
        state = indexDocument(parsed);
        applied = parsed;
        checked.log(
          `proxy: configuration version ${parsed.version} applied by ${checked.processes} processes (${parsed.services.length} services)`,
        );
      };
      const result = queue.then(run, run);
      queue = result.catch(() => {});
      return result;
    },
    applyDelta(input) {
      const run = async () => {
        assertOpen();
        const { delta, undo } = acceptDelta(input);
        // The merged whole, made as an array of the services in force (a child started later gets it).
        const document = state!.doc;
        try {
          await pool.applyDelta(delta, document);
        } catch (error) {
          undo();
          throw error;
        }
        applied = document;
        checked.log(
          `proxy: configuration delta ${delta.base_version} → ${delta.version} applied by ${checked.processes} processes (${describe(delta)})`,
        );
      };
      const result = queue.then(run, run);
      queue = result.catch(() => {});
      return result;
    },
    async stats() {
      assertOpen();
      return summarizeStats(applied?.services.map((s) => s.name) ?? [], await pool.stats(), pool.engines);
    },
    async metrics() {
      assertOpen();
      return pool.metrics();
    },
    async exposition() {
      assertOpen();
      return exposition();
    },
    close(options) {
      closed = true;
      return pool.close(options);
    },
    pids: () => pool.pids(),
    document: () => applied,
    routingLoads: () => pool.routingLoads(),
    mesh: pool.mesh,
    sockets: () => pool.sockets(),
  };
}
