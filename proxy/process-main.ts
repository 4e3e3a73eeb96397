/**
 * @module
 * Entry point of a proxy child process (started by `process-pool.ts` through `process-fork.ts`: this
 * file bundled to JavaScript, or under tsx where the bundle cannot be written). It serves traffic with
 * its own `ProxyServer` on the socket the parent shares, applies the documents the parent sends, and
 * answers stats and metrics requests. Rate-limit verdicts come from the parent, which holds the host's buckets
 * (`rate-limit-gate.ts`), and so do routing decisions for services whose policy keeps host-wide
 * state (`routing-gate.ts`). It exits when told to close or when the parent goes away.
 */

import { PassiveShare } from "./health/passive-share.ts";
import type { FromProcess, ToProcess } from "./process-protocol.ts";
import { IpcGate } from "./rate-limit-gate.ts";
import { IpcRoutingGate } from "./routing-gate.ts";
import { ProxyServer } from "./server.ts";

const send = (message: FromProcess, handle?: object): void => {
  // biome-ignore lint/suspicious/noExplicitAny: Node's send accepts a listening handle; its typing does not say so.
  if (process.connected) process.send?.(message, handle as any);
};

let server: ProxyServer | null = null;
/** The HTTPS handle arrives in its own message, right after `init`. */
let tlsHandle: Promise<object> | null = null;
let receiveTlsHandle: (handle: object) => void = () => {};

/** Past this, a batch of checks the parent has not answered is admitted. */
const RATE_LIMIT_TIMEOUT_MS = 2_000;
const rateLimits = new IpcGate(
  // `send` returning false only means a backlog (the message is queued); a closed channel shows as disconnect.
  (message) => {
    if (!process.connected || !process.send) return false;
    process.send(message);
    return true;
  },
  RATE_LIMIT_TIMEOUT_MS,
  (line) => send({ type: "log", line }),
);

/**
 * Past this, a routing decision the parent has not answered is taken here. Short: every request of
 * such a service waits on it, and the parent answers in well under a millisecond when it is well.
 */
const ROUTING_TIMEOUT_MS = 500;
const routing = new IpcRoutingGate(
  (message) => {
    if (!process.connected || !process.send) return false;
    process.send(message);
    return true;
  },
  ROUTING_TIMEOUT_MS,
  (line) => send({ type: "log", line }),
);

/** Passive-health changes, one message per event-loop turn; the parent relays them to the other children. */
const passive = new PassiveShare((events) => send({ type: "passive", events }));

/** Past this, a `GET /metrics` the parent has not answered gets a 503. */
const EXPOSITION_TIMEOUT_MS = 15_000;
const expositionAsks = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
let nextAsk = 1;

/** The host's exposition, rendered by the parent (which asks every process for its series). */
function askExposition(): Promise<string> {
  const ask = nextAsk++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      expositionAsks.delete(ask);
      reject(new Error(`the parent process did not answer within ${EXPOSITION_TIMEOUT_MS / 1000} s`));
    }, EXPOSITION_TIMEOUT_MS);
    expositionAsks.set(ask, {
      resolve: (text) => {
        clearTimeout(timer);
        resolve(text);
      },
      reject: (err) => {
        clearTimeout(timer);
        reject(err);
      },
    });
    send({ type: "exposition-ask", ask });
  });
}

async function init(message: Extract<ToProcess, { type: "init" }>, handle: object | undefined): Promise<void> {
  server = new ProxyServer(message.settings, (line) => send({ type: "log", line }), {
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
}

async function shutdown(code: number, successor = false): Promise<never> {
  await server?.close({ successor });
  process.exit(code);
}

process.on("message", (message: ToProcess, handle: object | undefined) => {
  switch (message.type) {
    case "init":
      if (message.tls === "handle") {
        tlsHandle = new Promise((resolve) => {
          receiveTlsHandle = resolve;
        });
      }
      init(message, handle).catch((err: Error) => {
        send({ type: "failed", error: err.message });
        process.exit(1);
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
      void shutdown(0, message.successor === true);
      return;
  }
});

// An orphaned child would keep the port: follow the parent out.
process.on("disconnect", () => {
  rateLimits.release();
  routing.releaseWaiting();
  void shutdown(0);
});
// A stop signal sent to the whole process group (the local host daemon, a terminal's Ctrl-C) is
// the parent's to act on: it drains its children over IPC. Dying here would cut in-flight
// requests and make the parent restart the child while it shuts down.
process.on("SIGTERM", () => {});
process.on("SIGINT", () => {});
send({ type: "started" });
