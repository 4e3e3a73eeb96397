/**
 * @module
 * What a serving process of the pool does (`process-pool.ts`), over whatever carries its messages:
 * serve traffic with its own `ProxyServer` on the socket the parent shares, apply the documents the
 * parent sends, and answer stats and metrics requests. Rate-limit verdicts come from the parent,
 * which holds the host's buckets (`rate-limit-gate.ts`), and so do routing decisions for services
 * whose policy keeps host-wide state (`routing-gate.ts`).
 *
 * The channel is Node IPC in a child process (`process-main.ts`), or, with one process, a channel
 * inside the parent's own process (`in-process-child.ts`): the messages and their order are the
 * same either way, so the pool above cannot tell them apart.
 */

import { PassiveShare } from "./health/passive-share.ts";
import type { FromProcess, ToProcess } from "./process-protocol.ts";
import { IpcGate } from "./rate-limit-gate.ts";
import { IpcRoutingGate } from "./routing-gate.ts";
import { ProxyServer } from "./server.ts";
import { DEFAULT_SERVER_SETTINGS } from "./settings.ts";

/** How a serving process talks to the pool's parent. */
export interface ServingChannel {
  /** To the parent; dropped once the channel is closed. */
  send(message: FromProcess, handle?: object): void;
  /** False once the parent is gone (or the channel closed). */
  connected(): boolean;
  /** Every message from the parent, in order, each in a later turn than it was sent (as IPC delivers them). */
  onMessage(listener: (message: ToProcess, handle: object | undefined) => void): void;
  /** The serving is over (closed, or it failed to start): a child process exits with `code`. */
  exit(code: number): void;
}

/** What `serve` gives its carrier: the parent went away. */
export interface Serving {
  /** Admits what waits on the parent and closes (a child whose parent died). */
  orphaned(): void;
}

/** Past this, a batch of checks the parent has not answered is admitted. */
const RATE_LIMIT_TIMEOUT_MS = 2_000;
/** Past this, a `GET /metrics` the parent has not answered gets a 503. */
const EXPOSITION_TIMEOUT_MS = 15_000;

/** Serves over `channel` until told to close; sends `started` once it listens for messages. */
export function serve(channel: ServingChannel): Serving {
  const send = (message: FromProcess, handle?: object): void => {
    if (channel.connected()) channel.send(message, handle);
  };
  // `false` only when the channel is closed: a backlog on IPC queues the message.
  const ask = (message: FromProcess): boolean => {
    if (!channel.connected()) return false;
    channel.send(message);
    return true;
  };
  const log = (line: string) => send({ type: "log", line });

  let server: ProxyServer | null = null;
  /** The HTTPS handle arrives in its own message, right after `init`. */
  let tlsHandle: Promise<object> | null = null;
  let receiveTlsHandle: (handle: object) => void = () => {};

  const rateLimits = new IpcGate(ask, RATE_LIMIT_TIMEOUT_MS, log);
  // Until `init` brings the settings: their default.
  const routing = new IpcRoutingGate(ask, DEFAULT_SERVER_SETTINGS.routingAnswerMs, log);
  /** Passive-health changes, one message per event-loop turn; the parent relays them to the other children. */
  const passive = new PassiveShare((events) => send({ type: "passive", events }));

  const expositionAsks = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  let nextAsk = 1;
  /** The host's exposition, rendered by the parent (which asks every process for its series). */
  const askExposition = (): Promise<string> => {
    const id = nextAsk++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        expositionAsks.delete(id);
        reject(new Error(`the parent process did not answer within ${EXPOSITION_TIMEOUT_MS / 1000} s`));
      }, EXPOSITION_TIMEOUT_MS);
      expositionAsks.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      send({ type: "exposition-ask", ask: id });
    });
  };

  const init = async (message: Extract<ToProcess, { type: "init" }>, handle: object | undefined) => {
    routing.timeoutMs = message.settings.routingAnswerMs;
    server = new ProxyServer(message.settings, log, {
      rateLimits,
      onHold: (service) => send({ type: "held", service }),
      routing,
      exposition: askExposition,
      stateDir: message.stateDir,
      askRotation: () => send({ type: "rotate-access-log" }),
      passive: passive.add,
    });
    if (message.document) server.apply(message.document);
    server.setCertificates(message.certificates);
    server.setChallenges(message.challenges);
    if (message.listen === "handle" && !handle) throw new Error("no listening handle came with init");
    if (message.tls) {
      const target = message.tls === "handle" ? { handle: await tlsHandle! } : message.tls;
      const tlsPort = await server.listenTls(target);
      send({ type: "tls-ready", port: tlsPort }, message.shareHandle ? server.tlsHandle : undefined);
    }
    const port = await server.listen(message.listen === "handle" ? { handle: handle! } : message.listen);
    send({ type: "ready", port }, message.shareHandle ? server.handle : undefined);
  };

  let closing = false;
  const shutdown = (code: number, successor = false) => {
    if (closing) return;
    closing = true;
    void (async () => {
      try {
        await server?.close({ successor });
      } finally {
        channel.exit(code);
      }
    })();
  };

  channel.onMessage((message, handle) => {
    switch (message.type) {
      case "init":
        if (message.tls === "handle") {
          tlsHandle = new Promise((resolve) => {
            receiveTlsHandle = resolve;
          });
        }
        init(message, handle).catch((err: Error) => {
          send({ type: "failed", error: err.message });
          shutdown(1);
        });
        return;
      case "apply":
        try {
          server!.apply(message.document);
          send({ type: "applied", id: message.id, version: message.document.version });
        } catch (err) {
          send({ type: "apply-failed", id: message.id, error: (err as Error).message });
        }
        return;
      case "apply-delta":
        try {
          server!.applyDelta(message.delta);
          send({ type: "applied", id: message.id, version: message.delta.version });
        } catch (err) {
          send({ type: "apply-failed", id: message.id, error: (err as Error).message });
        }
        return;
      case "tls-handle":
        if (handle) receiveTlsHandle(handle);
        return;
      case "certificates":
      case "challenges":
        try {
          if (message.type === "certificates") server!.setCertificates(message.certificates);
          else server!.setChallenges(message.tokens);
          send({ type: "set", id: message.id });
        } catch (err) {
          send({ type: "set-failed", id: message.id, error: (err as Error).message });
        }
        return;
      case "rate-limit-verdicts":
        rateLimits.receive(message);
        return;
      case "routed":
        routing.receive(message);
        return;
      case "health":
        server?.setActive(message.verdicts);
        return;
      case "passive":
        server?.applyPassive(message.events);
        return;
      case "stats":
        send({ type: "stats", id: message.id, stats: server?.stats() ?? [] });
        return;
      case "metrics":
        send({ type: "metrics", id: message.id, families: server?.metrics() ?? [] });
        return;
      case "exposition": {
        const pending = expositionAsks.get(message.ask);
        expositionAsks.delete(message.ask);
        if (message.text !== null) pending?.resolve(message.text);
        else pending?.reject(new Error(message.error ?? "no metrics"));
        return;
      }
      case "reopen-access-log":
        server?.reopenAccessLog();
        return;
      case "close":
        shutdown(0, message.successor === true);
        return;
    }
  });
  send({ type: "started" });
  return {
    orphaned() {
      rateLimits.release();
      routing.releaseWaiting();
      shutdown(0);
    },
  };
}
