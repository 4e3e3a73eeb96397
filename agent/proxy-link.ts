/**
 * @module
 * The agent's side of the standalone proxy (`proxy/control/`, `docs/gateway-host.md`): find the
 * proxy serving this state directory (its control socket) or start one, detached in its own process
 * group so it outlives the agent; hand it over to this build when it runs another version; then
 * drive it like the in-process proxy, as a `ProxyHandle` whose `close` only detaches.
 *
 * A proxy that goes away while attached (it crashed, or another agent handed it over) is found or
 * started again; calls made meanwhile wait for it.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { controlPaths, fromWire, type ProxyHello, readLines, writeLine } from "../proxy/control/protocol.ts";
import type { MetricFamily, ProxyHandle, ProxyOptions } from "../proxy/index.ts";
import { ProxyProcessError } from "../proxy/index.ts";
import { LEAN_HEAP_FLAGS } from "../proxy/process-fork.ts";
import type { MeshDigest } from "../schema/mesh.ts";

const PROXY_BIN = fileURLToPath(new URL("../bin/gateplane-proxy.mjs", import.meta.url));

export interface StandaloneProxyOptions {
  stateDir: string;
  /** This build's version; a proxy of another is handed over to this build's. */
  version: string;
  /** How to start this build's proxy (program and leading arguments); default its bin under this Node. */
  command?: string[];
  /** To find or start the proxy, and to see it take over (default 30 s). */
  startTimeoutMs?: number;
  /** Between pushes of the agent's own series to the proxy (default 5 s). */
  extraMetricsIntervalMs?: number;
  log: (line: string) => void;
}

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/** One connection to the control socket. */
class Connection {
  readonly #socket: Socket;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  closed = false;

  private constructor(
    socket: Socket,
    onEvent: (event: Record<string, unknown>) => void,
    onClose: (conn: Connection) => void,
  ) {
    this.#socket = socket;
    readLines(socket, (message) => {
      if (typeof message.event === "string") return onEvent(message);
      const pending = this.#pending.get(message.id as number);
      if (!pending) return;
      this.#pending.delete(message.id as number);
      if (message.ok) pending.resolve(message.value);
      else pending.reject(fromWire(message.error as Parameters<typeof fromWire>[0]));
    });
    socket.on("close", () => {
      this.closed = true;
      for (const pending of this.#pending.values()) pending.reject(new ProxyProcessError("the proxy went away"));
      this.#pending.clear();
      onClose(this);
    });
  }

  /** Connects, or resolves null when nothing listens on `path`. */
  static open(
    path: string,
    onEvent: (event: Record<string, unknown>) => void,
    onClose: (conn: Connection) => void,
  ): Promise<Connection | null> {
    return new Promise((resolve) => {
      const socket = connect(path);
      socket.once("connect", () => {
        socket.removeAllListeners("error");
        socket.on("error", () => {});
        resolve(new Connection(socket, onEvent, onClose));
      });
      socket.once("error", () => resolve(null));
    });
  }

  request<T>(op: string, payload: object = {}): Promise<T> {
    if (this.closed) return Promise.reject(new ProxyProcessError("the proxy went away"));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      writeLine(this.#socket, { id, op, ...payload });
    });
  }

  send(message: object): void {
    writeLine(this.#socket, message);
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** Stops the proxy serving `stateDir` (drained): over its control socket, else by its pid file. False: none ran. */
export async function stopStandaloneProxy(stateDir: string, timeoutMs = 30_000): Promise<boolean> {
  const paths = controlPaths(stateDir);
  const conn = await Connection.open(
    paths.socket,
    () => {},
    () => {},
  );
  const pid = Number((await readFile(paths.pid, "utf8").catch(() => "")).trim()) || null;
  if (conn) {
    await conn.request("shutdown").catch(() => {});
  } else if (pid) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      return false;
    }
  } else {
    return false;
  }
  const deadline = Date.now() + timeoutMs;
  while (pid && Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await sleep(25);
  }
  conn?.close();
  return true;
}

/** `startProxy` for the agent's process: the standalone proxy, found or started. */
export async function attachStandaloneProxy(options: ProxyOptions, link: StandaloneProxyOptions): Promise<ProxyHandle> {
  const paths = controlPaths(link.stateDir);
  const timeoutMs = link.startTimeoutMs ?? 30_000;
  const host = options.host ?? "127.0.0.1";
  const log = options.log ?? (() => {});
  let detached = false;
  let wanted = { port: options.httpPort, httpsPort: options.httpsPort ?? null };

  const onEvent = (event: Record<string, unknown>) => {
    if (event.event === "log" && typeof event.line === "string") log(event.line);
    if (event.event === "held" && typeof event.service === "string") options.onHeldRequest?.(event.service);
  };
  // Only the attached connection's loss means the proxy went away (the others are closed on purpose).
  const open = () =>
    Connection.open(paths.socket, onEvent, (conn) => {
      if (conn === current?.conn && !detached) void reattach();
    });
  const command = () => [
    ...(link.command ?? [process.execPath, ...LEAN_HEAP_FLAGS, PROXY_BIN]),
    ...["--state-dir", link.stateDir, "--host", host, "--http-port", String(wanted.port)],
    ...(wanted.httpsPort === null ? [] : ["--https-port", String(wanted.httpsPort)]),
    ...["--processes", String(options.processes ?? 1), "--version", link.version],
    ...(options.servingChild ? ["--serving-child"] : []),
  ];

  /** Connects to the proxy of this build, starting or handing over as needed. */
  const attach = async (): Promise<{ conn: Connection; hello: ProxyHello }> => {
    const deadline = Date.now() + timeoutMs;
    let started: ReturnType<typeof spawn> | null = null;
    let handedOver = false;
    while (Date.now() < deadline) {
      const conn = await open();
      if (!conn) {
        if (started && started.exitCode !== null) {
          throw new ProxyProcessError(`the proxy exited with code ${started.exitCode}; see ${paths.log}`);
        }
        if (!started) {
          const logFd = openSync(paths.log, "a", 0o600);
          // Its own process group and session: signals to the agent's group, and the agent's death, spare it.
          started = spawn(command()[0]!, command().slice(1), { detached: true, stdio: ["ignore", logFd, logFd] });
          closeSync(logFd);
          started.on("error", () => {});
          started.unref();
          log(`proxy: started the standalone proxy, pid ${started.pid} (log ${paths.log})`);
        }
        await sleep(25);
        continue;
      }
      const hello = await conn.request<ProxyHello>("hello", { attach: true }).catch(() => null);
      if (!hello) {
        conn.close();
        await sleep(25);
        continue;
      }
      const moved =
        hello.host !== host ||
        (wanted.port !== 0 && hello.port !== wanted.port) ||
        (wanted.httpsPort === null) !== (hello.httpsPort === null) ||
        (wanted.httpsPort !== null && wanted.httpsPort !== 0 && hello.httpsPort !== wanted.httpsPort);
      if (moved) {
        // Other addresses cannot be handed over: this one costs the host a restart of its proxy.
        log(`proxy: the running proxy listens on ${hello.host}:${hello.port}; restarting it on the configured ports`);
        await conn.request("shutdown").catch(() => {});
        conn.close();
        await stopStandaloneProxy(link.stateDir, timeoutMs);
        continue;
      }
      if (hello.version !== link.version && !handedOver) {
        log(`proxy: the running proxy is version ${hello.version}; handing it over to ${link.version}`);
        handedOver = true;
        await conn.request("handover", { command: command() });
        conn.close();
        continue;
      }
      if (hello.version !== link.version) {
        conn.close();
        await sleep(25);
        continue;
      }
      return { conn, hello };
    }
    throw new ProxyProcessError(`no proxy of version ${link.version} answered within ${timeoutMs / 1000}s`);
  };

  let current: { conn: Connection; hello: ProxyHello } | undefined;
  current = await attach();
  wanted = { port: current.hello.port, httpsPort: current.hello.httpsPort };
  let ready: Promise<Connection> = Promise.resolve(current.conn);
  const pushExtra = (conn: Connection) => {
    const families: MetricFamily[] = options.extraMetrics?.() ?? [];
    conn.send({ op: "extra", families });
  };
  pushExtra(current.conn);

  async function reattach(): Promise<void> {
    if (detached) return;
    log("proxy: lost the standalone proxy's control socket; attaching again");
    ready = attach().then((next) => {
      current = next;
      if (detached) next.conn.close();
      else pushExtra(next.conn);
      return next.conn;
    });
    ready.catch((error: Error) => {
      log(`proxy: cannot attach to the standalone proxy: ${error.message}; trying again`);
      setTimeout(() => void reattach(), 1_000).unref();
    });
  }
  const call = async <T>(op: string, payload: object = {}): Promise<T> => (await ready).request<T>(op, payload);

  const timer = setInterval(() => {
    if (current && !current.conn.closed) pushExtra(current.conn);
  }, link.extraMetricsIntervalMs ?? 5_000);
  timer.unref();

  if (current.hello.configVersion === null && options.initialConfig) {
    await call("apply", { document: options.initialConfig }).catch((error: Error) =>
      log(`proxy: the standalone proxy refused the last good config: ${error.message}`),
    );
  }

  return {
    port: current.hello.port,
    httpsPort: current.hello.httpsPort,
    setCertificates: (certificates) => call("certificates", { certificates }),
    setChallenges: (tokens) => call("challenges", { tokens }),
    apply: (document) => call("apply", { document }),
    applyDelta: (delta) => call("apply-delta", { delta }),
    stats: () => call("stats"),
    metrics: () => call("metrics"),
    mesh: {
      take: () => call<MeshDigest | null>("mesh-take"),
      apply: (digest: unknown) => call<boolean>("mesh-apply", { digest }),
    },
    async exposition() {
      const conn = await ready;
      pushExtra(conn);
      return conn.request<string>("exposition");
    },
    async close() {
      // The agent goes; the proxy stays and serves (stopStandaloneProxy stops it).
      detached = true;
      clearInterval(timer);
      current?.conn.close();
    },
  };
}
