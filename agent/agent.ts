/**
 * @module
 * The agent's lifecycle: serve the host's HTTP port, register with the control plane (exchanging the
 * one-time bootstrap secret for a token), then heartbeat and refresh the token until stopped. Losing
 * the control plane never stops the host: every call is retried with back-off.
 *
 * @example
 * const agent = await startAgent({ bootstrap, stateDir: "/var/lib/gateplane", httpPort: 80 });
 * await agent.stop();
 */
import { mkdir } from "node:fs/promises";
import type { AgentBootstrap } from "../schema/agent.ts";
import { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF, sleep } from "./backoff.ts";
import { ControlPlaneClient, isTransient, isUnauthorized } from "./control-plane-client.ts";
import { type HealthServer, startHealthServer } from "./health-server.ts";
import { createLogger, type Logger } from "./log.ts";
import { isUsableFor, nowSeconds, refreshDueAt, type StoredToken, TokenStore } from "./token-store.ts";
import { AGENT_VERSION } from "./version.ts";

export interface AgentOptions {
  bootstrap: AgentBootstrap;
  /** Where the agent keeps what must survive a restart (its token). */
  stateDir: string;
  /** Port on 127.0.0.1 for the host's HTTP listener; 0 picks a free one. */
  httpPort: number;
  /** Reserved for the HTTPS listener (certificates come with the proxy). */
  httpsPort?: number | null;
  heartbeatIntervalMs?: number;
  /** Back-off while the control plane is unreachable or failing (5xx). */
  backoff?: BackoffPolicy;
  /** Between attempts when the control plane refuses us (401 without a usable token, other 4xx). */
  refusedRetryMs?: number;
  requestTimeoutMs?: number;
  version?: string;
  log?: Logger;
  fetch?: typeof fetch;
}

export interface Agent {
  /** The port the HTTP listener is bound to. */
  httpPort: number;
  /** The token in use, or null before the first registration. */
  readonly token: string | null;
  /** Stops calling the control plane and closes the listener. */
  stop(): Promise<void>;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));
const timeOf = (seconds: number) => new Date(seconds * 1000).toISOString();

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const { bootstrap } = options;
  const log = options.log ?? createLogger();
  const version = options.version ?? AGENT_VERSION;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const refusedRetryMs = options.refusedRetryMs ?? backoff.maxMs;
  const client = new ControlPlaneClient(bootstrap.control_plane_url, {
    timeoutMs: options.requestTimeoutMs ?? 10_000,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
  const tokens = new TokenStore(options.stateDir);
  const who = `replica ${bootstrap.replica_num} of gateway ${bootstrap.project_name}/${bootstrap.gateway_name}`;

  // Listen first: the host answers health checks even while the control plane is unreachable.
  const server: HealthServer = await startHealthServer(options.httpPort);
  log.info(
    `agent ${version} for ${who} listening on http://127.0.0.1:${server.port}` +
      (options.httpsPort ? ` (https port ${options.httpsPort} reserved)` : ""),
  );

  const stopping = new AbortController();
  const signal = stopping.signal;
  let current: StoredToken | null = null;

  /** A token not persisted is still good for this run; only a restart would miss it. */
  async function persist(token: StoredToken): Promise<void> {
    try {
      await tokens.write(token);
    } catch (error) {
      log.error(`cannot persist the agent token to ${tokens.file}: ${errorMessage(error)}`);
    }
  }

  /** Registers until it has a token; null only when stopping. */
  async function acquireToken(): Promise<StoredToken | null> {
    for (let attempt = 0; !signal.aborted; ) {
      try {
        const response = await client.register(
          {
            object_id: bootstrap.object_id,
            gateway_id: bootstrap.gateway_id,
            replica_num: bootstrap.replica_num,
            bootstrap_secret: bootstrap.bootstrap_secret,
            version,
          },
          signal,
        );
        const token: StoredToken = { ...response, obtained_at: nowSeconds() };
        await persist(token);
        log.info(`registered with ${bootstrap.control_plane_url}; token valid until ${timeOf(token.expires_at)}`);
        return token;
      } catch (error) {
        if (signal.aborted) return null;
        if (isUnauthorized(error)) {
          // The secret is one-time: after the first registration only the persisted token proves who we are.
          const persisted = await tokens.read();
          if (persisted && isUsableFor(persisted, bootstrap)) {
            log.info(
              `bootstrap secret refused (already used); resuming with the persisted token valid until ${timeOf(persisted.expires_at)}`,
            );
            return persisted;
          }
          log.error(
            `registration refused (${errorMessage(error)}) and no usable persisted token; retrying in ${Math.round(refusedRetryMs / 1000)} s`,
          );
          await sleep(refusedRetryMs, signal);
        } else if (isTransient(error)) {
          const delay = backoffDelay(backoff, attempt++);
          log.warn(`registration failed (${errorMessage(error)}); retrying in ${delay} ms`);
          await sleep(delay, signal);
        } else {
          log.error(
            `registration refused (${errorMessage(error)}); retrying in ${Math.round(refusedRetryMs / 1000)} s`,
          );
          await sleep(refusedRetryMs, signal);
        }
      }
    }
    return null;
  }

  /** Heartbeats and refreshes with `token` until it is refused or expires (or the agent stops). */
  async function keepAlive(initial: StoredToken): Promise<void> {
    let token = initial;
    let nextHeartbeatAt = Date.now();
    let refreshAt = refreshDueAt(token);
    let refreshFailures = 0;
    let heartbeatHealthy: boolean | null = null;
    while (!signal.aborted) {
      await sleep(Math.min(nextHeartbeatAt, refreshAt) - Date.now(), signal);
      if (signal.aborted) return;
      if (Date.now() >= refreshAt) {
        try {
          const response = await client.refresh(token.token, signal);
          token = { ...response, obtained_at: nowSeconds() };
          current = token;
          await persist(token);
          refreshAt = refreshDueAt(token);
          refreshFailures = 0;
          log.info(`token refreshed; valid until ${timeOf(token.expires_at)}`);
        } catch (error) {
          if (signal.aborted) return;
          if (isUnauthorized(error)) {
            log.warn(`token refused on refresh (${errorMessage(error)}); registering again`);
            await tokens.remove();
            return;
          }
          if (token.expires_at * 1000 <= Date.now()) {
            log.warn(`token expired before it could be refreshed (${errorMessage(error)}); registering again`);
            return;
          }
          refreshAt = Math.min(Date.now() + backoffDelay(backoff, refreshFailures++), token.expires_at * 1000);
          log.warn(
            `token refresh failed (${errorMessage(error)}); retrying in ${Math.round(refreshAt - Date.now())} ms`,
          );
        }
        continue;
      }
      nextHeartbeatAt = Date.now() + heartbeatIntervalMs;
      try {
        await client.heartbeat(token.token, { version, status: "healthy", message: null }, signal);
        // Logged on changes only: a line every 10 s would bury the events that matter.
        if (heartbeatHealthy !== true) log.info("heartbeat accepted");
        heartbeatHealthy = true;
      } catch (error) {
        if (signal.aborted) return;
        if (isUnauthorized(error)) {
          log.warn(`token refused on heartbeat (${errorMessage(error)}); registering again`);
          await tokens.remove();
          return;
        }
        log.warn(`heartbeat failed (${errorMessage(error)})`);
        heartbeatHealthy = false;
      }
    }
  }

  async function run(): Promise<void> {
    while (!signal.aborted) {
      const token = await acquireToken();
      if (!token) return;
      current = token;
      await keepAlive(token);
    }
  }

  const running = run().catch((error: unknown) => {
    // Nothing expected gets here (control-plane failures are retried); the host still serves.
    log.error(`control-plane loop stopped: ${errorMessage(error)}`);
  });

  return {
    httpPort: server.port,
    get token() {
      return current?.token ?? null;
    },
    async stop() {
      stopping.abort();
      await running;
      await server.close();
      log.info("agent stopped");
    },
  };
}
