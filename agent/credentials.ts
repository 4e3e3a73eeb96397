/**
 * @module
 * The agent's identity towards the control plane: register with the one-time bootstrap secret (or
 * resume with the persisted token once the secret is spent), refresh the token at half-life, and when
 * something reports the token refused (a 401, WebSocket close code 4001) refresh it at once, or
 * register again if the refresh is refused too. Everything that talks to the control plane takes its
 * token from here.
 */
import type { AgentBootstrap } from "../schema/agent.ts";
import { type BackoffPolicy, backoffDelay, sleep } from "./backoff.ts";
import { type ControlPlaneClient, isTransient, isUnauthorized } from "./control-plane-client.ts";
import type { Logger } from "./log.ts";
import { isUsableFor, nowSeconds, refreshDueAt, type StoredToken, type TokenStore } from "./token-store.ts";

export interface CredentialsOptions {
  bootstrap: AgentBootstrap;
  client: ControlPlaneClient;
  store: TokenStore;
  version: string;
  /** Back-off while the control plane is unreachable or failing (5xx). */
  backoff: BackoffPolicy;
  /** Between attempts when the control plane refuses us (401 without a usable token, other 4xx). */
  refusedRetryMs: number;
  log: Logger;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));
const timeOf = (seconds: number) => new Date(seconds * 1000).toISOString();

export class Credentials {
  private token: StoredToken | null = null;
  /** The token currently held was refused: do not hand it out, refresh it now. */
  private refusedFlag = false;
  private waiters: Array<(token: StoredToken | null) => void> = [];
  private wake = new AbortController();
  private readonly options: CredentialsOptions;

  constructor(options: CredentialsOptions) {
    this.options = options;
  }

  /** The token in use, or null while there is none the control plane would accept. */
  get current(): StoredToken | null {
    return this.token;
  }

  /** Resolves with a usable token as soon as there is one; null when `signal` aborts first. */
  ready(signal: AbortSignal): Promise<StoredToken | null> {
    if (this.token) return Promise.resolve(this.token);
    if (signal.aborted) return Promise.resolve(null);
    return new Promise((resolve) => {
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== settle);
        resolve(null);
      };
      const settle = (token: StoredToken | null) => {
        signal.removeEventListener("abort", onAbort);
        resolve(token);
      };
      this.waiters.push(settle);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** `token` was refused by the control plane: stop using it; refresh it, or register again. */
  refused(token: string): void {
    // A refusal of a token already replaced says nothing about the new one.
    if (this.token?.token !== token) return;
    this.token = null;
    this.refusedFlag = true;
    this.wake.abort();
  }

  /** Registers, refreshes and recovers refused tokens until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const token = await this.acquire(signal);
      if (!token) return;
      this.set(token);
      await this.maintain(token, signal);
      this.token = null;
    }
    for (const waiter of this.waiters.splice(0)) waiter(null);
  }

  private set(token: StoredToken): void {
    this.token = token;
    this.refusedFlag = false;
    for (const waiter of this.waiters.splice(0)) waiter(token);
  }

  /** A token not persisted is still good for this run; only a restart would miss it. */
  private async persist(token: StoredToken): Promise<void> {
    try {
      await this.options.store.write(token);
    } catch (error) {
      this.options.log.error(`cannot persist the agent token to ${this.options.store.file}: ${errorMessage(error)}`);
    }
  }

  /** Registers until it has a token; null only when stopping. */
  private async acquire(signal: AbortSignal): Promise<StoredToken | null> {
    const { bootstrap, client, store, log, backoff, refusedRetryMs } = this.options;
    for (let attempt = 0; !signal.aborted; ) {
      try {
        const response = await client.register(
          {
            object_id: bootstrap.object_id,
            gateway_id: bootstrap.gateway_id,
            replica_num: bootstrap.replica_num,
            bootstrap_secret: bootstrap.bootstrap_secret,
            version: this.options.version,
          },
          signal,
        );
        const token: StoredToken = { ...response, obtained_at: nowSeconds() };
        await this.persist(token);
        log.info(`registered with ${bootstrap.control_plane_url}; token valid until ${timeOf(token.expires_at)}`);
        return token;
      } catch (error) {
        if (signal.aborted) return null;
        if (isUnauthorized(error)) {
          // The secret is one-time: after the first registration only the persisted token proves who we are.
          const persisted = await store.read();
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

  /** Refreshes `initial` at half-life or when refused, until a refresh is refused or it expires. */
  private async maintain(initial: StoredToken, signal: AbortSignal): Promise<void> {
    const { client, store, log, backoff } = this.options;
    let token = initial;
    let refreshAt = refreshDueAt(token);
    let failures = 0;
    while (!signal.aborted) {
      if (!this.refusedFlag) {
        await sleep(refreshAt - Date.now(), AbortSignal.any([signal, this.wake.signal]));
        if (this.wake.signal.aborted) this.wake = new AbortController();
        if (signal.aborted) return;
        if (!this.refusedFlag && Date.now() < refreshAt) continue;
      } else {
        // Refused and the last refresh failed transiently: retry on the back-off schedule.
        await sleep(refreshAt - Date.now(), signal);
        if (signal.aborted) return;
      }
      try {
        const response = await client.refresh(token.token, signal);
        token = { ...response, obtained_at: nowSeconds() };
        await this.persist(token);
        this.set(token);
        refreshAt = refreshDueAt(token);
        failures = 0;
        log.info(`token refreshed; valid until ${timeOf(token.expires_at)}`);
      } catch (error) {
        if (signal.aborted) return;
        if (isUnauthorized(error)) {
          log.warn(`token refused on refresh (${errorMessage(error)}); registering again`);
          await store.remove();
          return;
        }
        if (token.expires_at * 1000 <= Date.now()) {
          log.warn(`token expired before it could be refreshed (${errorMessage(error)}); registering again`);
          return;
        }
        refreshAt = Math.min(Date.now() + backoffDelay(backoff, failures++), token.expires_at * 1000);
        log.warn(`token refresh failed (${errorMessage(error)}); retrying in ${Math.round(refreshAt - Date.now())} ms`);
      }
    }
  }
}
