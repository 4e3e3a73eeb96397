/**
 * @module
 * The agent's lifecycle. It starts the proxy at once with the last good config from disk, so a host
 * serves traffic before (and without) the control plane answering; then registers (one-time bootstrap
 * secret → token), keeps its token fresh, and keeps the proxy's config in sync over a WebSocket to
 * the control plane, with HTTP polling and heartbeats as the fallback while the socket is down.
 * Losing the control plane never stops traffic: every call is retried with back-off.
 *
 * @example
 * const agent = await startAgent({ bootstrap, stateDir: "/var/lib/gateplane", httpPort: 80, host: "0.0.0.0" });
 * await agent.stop();
 */
import { mkdir } from "node:fs/promises";
import { availableParallelism } from "node:os";
import {
  EXPOSITION_CONTENT_TYPE,
  type MetricFamily,
  type ProxyHandle,
  type ProxyOptions,
  ProxyOptionsError,
  startProxy,
} from "../proxy/index.ts";
import type { AgentBootstrap } from "../schema/agent.ts";
import { type CertificateState, MAX_REPORT_TEXT } from "../schema/agent-protocol.ts";
import { type AdminServer, type AgentStatus, startAdminServer } from "./admin-server.ts";
import { type BackoffPolicy, DEFAULT_BACKOFF } from "./backoff.ts";
import { CertificateManager } from "./certificates/manager.ts";
import { ConfigApplier } from "./config-applier.ts";
import { DEFAULT_POLL_TIMING, type PollTiming, runConfigPoll } from "./config-poll.ts";
import { DEFAULT_SOCKET_TIMING, type HostHealth, runConfigSocket, type SocketTiming } from "./config-socket.ts";
import { ConfigStore } from "./config-store.ts";
import { ControlPlaneClient } from "./control-plane-client.ts";
import { Credentials } from "./credentials.ts";
import { runHeartbeat } from "./heartbeat.ts";
import { LinkState } from "./link-state.ts";
import { createLogger, type Logger } from "./log.ts";
import { agentFamilies } from "./metrics.ts";
import { ScaleSignals } from "./scale-signal.ts";
import { detectSglangRouter, type RouterInstallation } from "./sglang/detect.ts";
import { DEFAULT_PORT_RANGE, type PortRange } from "./sglang/ports.ts";
import { SglangRouters } from "./sglang/routers.ts";
import { DEFAULT_ROUTER_TIMING, type ServiceRouterTiming } from "./sglang/service-router.ts";
import { TokenStore } from "./token-store.ts";
import { AGENT_VERSION } from "./version.ts";

export type StartProxy = (options: ProxyOptions) => Promise<ProxyHandle>;

export interface SglangOptions {
  /** Launch command (program and leading arguments) instead of looking for an installed router. */
  command?: string[] | null;
  /** Finds the router (default: the override, else PATH and python probes of `detect.ts`). */
  detect?: () => Promise<RouterInstallation>;
  /** Loopback ports for the routers (default 20000–24999). */
  ports?: PortRange;
  timing?: Partial<ServiceRouterTiming>;
}

export interface AgentOptions {
  bootstrap: AgentBootstrap;
  /** Where the agent keeps what must survive a restart (its token, the last good config). */
  stateDir: string;
  /** The proxy's HTTP port; 0 picks a free one. */
  httpPort: number;
  /** The proxy's listen address (default 127.0.0.1; a VM passes 0.0.0.0). */
  host?: string;
  /** Proxy processes (default: the available cores; 0 serves from the agent's process). */
  processes?: number;
  /** With one proxy process, serve from a child of the proxy (`ProxyOptions.servingChild`). */
  servingChild?: boolean;
  /** The proxy's HTTPS port (0 picks a free one); null or absent: no HTTPS listener and no ACME. */
  httpsPort?: number | null;
  /** Certificate checks (renewal, retries after back-off); default every 10 minutes. */
  certificateCheckIntervalMs?: number;
  /** Extra PEM roots trusted for the ACME directory (a private CA; tests: Pebble). */
  acmeDirectoryCa?: string;
  /** The clock of certificate renewal (tests move it). */
  now?: () => number;
  /** Port on 127.0.0.1 for the agent's `/healthz`; 0 picks a free one; null or absent: none. */
  adminPort?: number | null;
  /** Period of the HTTP heartbeat while the WebSocket is down. */
  heartbeatIntervalMs?: number;
  /** Back-off of registration and token refresh while the control plane is unreachable or failing. */
  backoff?: BackoffPolicy;
  /** Between attempts when the control plane refuses us (401 without a usable token, other 4xx). */
  refusedRetryMs?: number;
  requestTimeoutMs?: number;
  socket?: Partial<SocketTiming>;
  poll?: Partial<PollTiming>;
  version?: string;
  log?: Logger;
  fetch?: typeof fetch;
  /** The data plane; the real proxy unless a test brings its own. */
  startProxy?: StartProxy;
  /** The external SGLang router for services whose router is `sglang` (`sglang/`). */
  sglang?: SglangOptions;
}

export interface Agent {
  /** The port the proxy's HTTP listener is bound to. */
  httpPort: number;
  /** The proxy's HTTPS port, or null without one. */
  httpsPort: number | null;
  /** Per-host certificate state, as reported to the control plane (empty without HTTPS). */
  certificates(): CertificateState[];
  /** The port of the agent's `/healthz`, or null when disabled. */
  adminPort: number | null;
  /** The token in use, or null when there is none the control plane would accept. */
  readonly token: string | null;
  /** Version of the config document the proxy serves, or null before the first one. */
  readonly configVersion: number | null;
  /** Whether the WebSocket to the control plane is up. */
  readonly connected: boolean;
  /** The external routers this agent runs. */
  readonly routers: SglangRouters;
  /** Stops talking to the control plane, then closes the admin endpoint and the proxy. */
  stop(): Promise<void>;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const { bootstrap } = options;
  const log = options.log ?? createLogger();
  const version = options.version ?? AGENT_VERSION;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const client = new ControlPlaneClient(bootstrap.control_plane_url, {
    timeoutMs: options.requestTimeoutMs ?? 10_000,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
  const who = `replica ${bootstrap.replica_num} of gateway ${bootstrap.project_name}/${bootstrap.gateway_name}`;

  const configStore = new ConfigStore(options.stateDir);
  const stored = await configStore.read();
  if (stored.kind === "unusable") {
    log.warn(`last good config ${configStore.file} ${stored.reason}; starting without a config`);
  }
  let initial = stored.kind === "document" ? stored.document : null;

  // Held requests may arrive before registration (the last good config is served at once).
  let credentials: Credentials | null = null;
  const signals = new ScaleSignals({ client, token: () => credentials?.current?.token ?? null, log });

  // The agent's own series, once its parts exist (the proxy starts first and renders the exposition).
  let ownMetrics: () => MetricFamily[] = () => [];

  // The proxy first, with the last good config: traffic must not wait for the control plane.
  const host = options.host ?? "127.0.0.1";
  const launch = options.startProxy ?? startProxy;
  const proxyOptions: ProxyOptions = {
    host,
    httpPort: options.httpPort,
    httpsPort: options.httpsPort ?? null,
    processes: options.processes ?? availableParallelism(),
    ...(options.servingChild ? { servingChild: true } : {}),
    initialConfig: initial,
    // The applier validates every document from the network (`isolate-services.ts`), once.
    validatedDocuments: true,
    // Most proxy lines name the proxy already; the others get it, so the agent's log says who spoke.
    log: (line) => log.info(line.startsWith("proxy") ? line : `proxy: ${line}`),
    onHeldRequest: (service) => signals.notify(service),
    extraMetrics: () => ownMetrics(),
    // The access log file, when a document asks for one, lives beside the agent's own state.
    stateDir: options.stateDir,
  };
  let proxy: ProxyHandle;
  try {
    proxy = await launch(proxyOptions);
  } catch (error) {
    // A document this proxy refuses (written by an older agent, say) must not keep the host down:
    // serve nothing until the control plane sends a config, rather than crash-loop.
    if (!(initial && error instanceof ProxyOptionsError && error.field === "initialConfig")) throw error;
    log.error(`the proxy refused the last good config (${error.message}); starting without a config`);
    initial = null;
    proxy = await launch({ ...proxyOptions, initialConfig: null });
  }
  log.info(
    `agent ${version} for ${who} serving http://${host}:${proxy.port} ` +
      (initial ? `with config version ${initial.version} from ${configStore.file}` : "without a config yet") +
      (proxy.httpsPort !== null ? ` and https on port ${proxy.httpsPort}` : ""),
  );

  // Certificates need the HTTPS listener; without one the host serves plain HTTP only.
  const certificateListeners = new Set<(states: CertificateState[]) => void>();
  const certificates =
    proxy.httpsPort === null
      ? null
      : new CertificateManager({
          stateDir: options.stateDir,
          proxy,
          log,
          ...(options.now ? { now: options.now } : {}),
          ...(options.certificateCheckIntervalMs ? { checkIntervalMs: options.certificateCheckIntervalMs } : {}),
          ...(options.acmeDirectoryCa ? { directoryCa: options.acmeDirectoryCa } : {}),
          onChange: (states) => {
            for (const listener of certificateListeners) listener(states);
          },
        });
  if (certificates) {
    await certificates.start();
    await certificates.configure(initial);
  }

  const healthListeners = new Set<() => void>();
  const sglang = options.sglang ?? {};
  const routers = new SglangRouters({
    detect: sglang.detect ?? (() => detectSglangRouter({ override: sglang.command ?? null })),
    ports: sglang.ports ?? DEFAULT_PORT_RANGE,
    timing: { ...DEFAULT_ROUTER_TIMING, ...sglang.timing },
    log,
    applyToProxy: (document) => proxy.apply(document),
    applyDeltaToProxy: (delta) => proxy.applyDelta(delta),
    onReportsChange: () => {
      for (const listener of healthListeners) listener();
    },
  });
  // The proxy already serves the stored document on built-in balancers; this starts its routers.
  if (initial) {
    routers.apply(initial).catch((error: unknown) => log.error(`cannot start routers: ${errorMessage(error)}`));
  }
  const applier = new ConfigApplier({
    apply: async (document) => {
      await routers.apply(document);
      // The routing change is in force; certificate work for new hosts runs in the background.
      await certificates?.configure(document);
    },
    applyDelta: async (delta, document) => {
      await routers.applyDelta(delta, document);
      // Only a delta that changes which hosts need a certificate reaches them (O(changed) otherwise).
      await certificates?.configureDelta(delta, document);
    },
    store: configStore,
    initial,
    log,
  });
  credentials = new Credentials({
    bootstrap,
    client,
    store: new TokenStore(options.stateDir),
    version,
    backoff,
    refusedRetryMs: options.refusedRetryMs ?? backoff.maxMs,
    log,
  });
  const link = new LinkState();
  ownMetrics = () =>
    agentFamilies({
      configVersion: applier.version,
      rejected: applier.rejectedServices,
      certificates: certificates?.states() ?? [],
      connected: link.connected,
      linkChangedAt: link.since,
      version,
    });
  const health = (): HostHealth => {
    const problem = applier.persistError;
    const state: HostHealth = problem
      ? { status: "degraded", message: problem.slice(0, MAX_REPORT_TEXT) }
      : { status: "healthy", message: null };
    return { ...state, routers: routers.reports() };
  };
  const status = (): AgentStatus => {
    const { status, message } = health();
    return {
      registered: credentials.current !== null,
      config_version: applier.version,
      rejected_services: applier.rejectedServices,
      control_plane_connected: link.connected,
      status,
      message,
      agent_version: version,
      routers: routers.reports(),
    };
  };

  let admin: AdminServer | null = null;
  if (options.adminPort !== undefined && options.adminPort !== null) {
    try {
      admin = await startAdminServer(options.adminPort, status, {
        render: () => proxy.exposition(),
        contentType: EXPOSITION_CONTENT_TYPE,
      });
    } catch (error) {
      await proxy.close();
      throw error;
    }
    log.info(`agent health at http://127.0.0.1:${admin.port}/healthz, metrics at /metrics`);
  }

  const stopping = new AbortController();
  const signal = stopping.signal;
  const guard = (name: string, task: Promise<void>) =>
    task.catch((error: unknown) => {
      // Nothing expected gets here (control-plane failures are retried); the proxy still serves.
      log.error(`${name} stopped: ${errorMessage(error)}`);
    });
  const tasks = [
    guard("credentials", credentials.run(signal)),
    guard(
      "config WebSocket",
      runConfigSocket(
        {
          controlPlaneUrl: bootstrap.control_plane_url,
          credentials,
          applier,
          link,
          stats: () => proxy.stats(),
          health,
          certificates: certificates && {
            states: () => certificates.states(),
            onChange: (listener) => {
              certificateListeners.add(listener);
              return () => certificateListeners.delete(listener);
            },
          },
          onHealthChange: (listener) => {
            healthListeners.add(listener);
            return () => healthListeners.delete(listener);
          },
          version,
          log,
          timing: { ...DEFAULT_SOCKET_TIMING, ...options.socket },
          signals,
          mesh: () => proxy.mesh ?? null,
        },
        signal,
      ),
    ),
    guard(
      "config polling",
      runConfigPoll(
        { client, credentials, applier, link, log, timing: { ...DEFAULT_POLL_TIMING, ...options.poll } },
        signal,
      ),
    ),
    guard(
      "heartbeat",
      runHeartbeat(
        {
          client,
          credentials,
          link,
          health,
          version,
          intervalMs: options.heartbeatIntervalMs ?? 10_000,
          log,
        },
        signal,
      ),
    ),
  ];

  let stopped: Promise<void> | null = null;
  const stop = async () => {
    stopping.abort();
    signals.close();
    await Promise.all(tasks);
    await certificates?.stop();
    await routers.stop();
    await admin?.close();
    await proxy.close();
    log.info("agent stopped");
  };

  return {
    httpPort: proxy.port,
    httpsPort: proxy.httpsPort,
    certificates: () => certificates?.states() ?? [],
    adminPort: admin?.port ?? null,
    get token() {
      return credentials.current?.token ?? null;
    },
    get configVersion() {
      return applier.version;
    },
    get connected() {
      return link.connected;
    },
    routers,
    stop() {
      // Idempotent: a signal handler and a test may both stop the agent.
      stopped ??= stop();
      return stopped;
    },
  };
}
