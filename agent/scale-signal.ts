/**
 * @module
 * Tells the control plane that the proxy holds a request for a service scaled to zero, so it raises
 * the service's desired replicas at once. Over the WebSocket when it is up (`scale_from_zero`), else
 * `POST /api/v1/agent/scale-from-zero`. At most one signal per service every `intervalMs`: every
 * proxy process reports its own held requests, and the control plane needs only one (repeats are
 * harmless there, but a flood of held requests must not become a flood of calls).
 */
import type { AgentMessage } from "../schema/agent-protocol.ts";
import type { ControlPlaneClient } from "./control-plane-client.ts";
import type { Logger } from "./log.ts";

export const SCALE_SIGNAL_INTERVAL_MS = 5_000;

export interface ScaleSignalOptions {
  client: ControlPlaneClient;
  /** The agent's token now, or null before registration (the signal is dropped then). */
  token: () => string | null;
  log: Logger;
  intervalMs?: number;
  /** The clock the interval is measured on (tests drive it). */
  now?: () => number;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

export class ScaleSignals {
  readonly #options: ScaleSignalOptions;
  readonly #lastAt = new Map<string, number>();
  readonly #stopping = new AbortController();
  #socket: ((message: AgentMessage) => boolean) | null = null;

  constructor(options: ScaleSignalOptions) {
    this.#options = options;
  }

  /** The WebSocket is open: signals go through `send` (false when the frame could not be sent). */
  attach(send: (message: AgentMessage) => boolean): void {
    this.#socket = send;
  }

  detach(): void {
    this.#socket = null;
  }

  /** The proxy holds a request for `service`. */
  notify(service: string): void {
    const now = (this.#options.now ?? Date.now)();
    const last = this.#lastAt.get(service);
    if (last !== undefined && now - last < (this.#options.intervalMs ?? SCALE_SIGNAL_INTERVAL_MS)) return;
    if (this.#stopping.signal.aborted) return;
    this.#lastAt.set(service, now);
    this.#options.log.info(`requests wait for service ${service}, which has no replica: asking for one`);
    if (this.#socket?.({ type: "scale_from_zero", service })) return;
    const token = this.#options.token();
    if (!token) {
      this.#options.log.warn(`cannot ask for a replica of ${service}: not registered with the control plane yet`);
      this.#lastAt.delete(service);
      return;
    }
    this.#options.client.scaleFromZero(token, service, this.#stopping.signal).catch((error: unknown) => {
      if (this.#stopping.signal.aborted) return;
      // The next held request asks again once the interval has passed.
      this.#options.log.warn(`asking for a replica of ${service} failed: ${errorMessage(error)}`);
    });
  }

  close(): void {
    this.#stopping.abort();
  }
}
