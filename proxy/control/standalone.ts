/**
 * @module
 * The standalone proxy: the proxy's parent process (`process-pool.ts`: routing state, rate-limit
 * buckets, engine scraper, child processes on shared listening sockets) run as a process of its
 * own, so the agent can die, restart or be upgraded while the host keeps serving
 * (`docs/gateway-host.md`). The agent drives it over the control socket (`protocol.ts`).
 *
 * It keeps the last applied document and certificates in `<state-dir>/proxy-state.json` (and the
 * deltas applied since in `proxy-state.deltas`, `../delta-journal.ts`), so when it starts again on
 * its own it serves what it served; the first start of a host reads the agent's last good config
 * (`config.json` and `config.deltas`) instead.
 *
 * Upgrade (`handover`): this process starts its successor (the new build's command, given by the
 * new agent) with an IPC channel and hands it the listening sockets, the document, certificates and
 * challenge answers; once the successor's processes serve on the same sockets it takes the control
 * socket, and this process drains its own processes and exits. The sockets are never closed, so
 * connections queue on them throughout instead of being refused.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import type { ConfigDelta } from "../../schema/config-delta.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import type { ChallengeTokens } from "../acme-challenge.ts";
import { JournaledSnapshot, replayDeltas } from "../delta-journal.ts";
import type { ListeningSockets, MetricFamily, TlsCertificate, TunedProxyHandle } from "../index.ts";
import { ProxyOptionsError, startTunedProxy } from "../index.ts";
import { stringifyInSlices } from "../json-in-slices.ts";
import { controlPaths, type ProxyHello, readLines, toWire, writeLine } from "./protocol.ts";

export interface StandaloneOptions {
  stateDir: string;
  host: string;
  httpPort: number;
  httpsPort: number | null;
  processes: number;
  /** With one process, serve from a child process anyway (`ProxyOptions.servingChild`). */
  servingChild?: boolean;
  /** The build's version (the agent's); a different one in `hello` makes the agent hand over. */
  version: string;
  log: (line: string) => void;
  /** What a predecessor handed over, when this process is its successor. */
  inherited?: Inherited | null;
}

/** What a proxy hands its successor. */
export interface Inherited {
  sockets: ListeningSockets;
  document: ConfigDocument | null;
  certificates: TlsCertificate[];
  challenges: ChallengeTokens;
}

interface Persisted {
  document: ConfigDocument | null;
  certificates: TlsCertificate[];
}

export interface Standalone {
  readonly proxy: TunedProxyHandle;
  /** Listens on the control socket (after a predecessor released it) and writes the pid file. */
  listen(): Promise<void>;
  /** Resolves when the process should exit (shut down, or handed over). */
  readonly done: Promise<void>;
  /** Stops serving: drains the processes, closes the control socket (`successor`: after a handover). */
  close(successor?: boolean): Promise<void>;
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, "utf8"));
  } catch {
    return null;
  }
}

/** Where the deltas applied since the state file's document are journaled (`../delta-journal.ts`). */
const journalPath = (statePath: string) => statePath.replace(/\.json$/, "") + ".deltas";

/** The document to serve at start: the one this proxy applied last, else the agent's last good one. */
async function initialState(stateDir: string): Promise<Persisted> {
  const paths = controlPaths(stateDir);
  const own = (await readJson(paths.state)) as Partial<Persisted> | null;
  if (own && typeof own === "object") {
    const document = own.document ? await replayDeltas(journalPath(paths.state), own.document) : null;
    return { document, certificates: Array.isArray(own.certificates) ? own.certificates : [] };
  }
  const stored = (await readJson(`${stateDir}/config.json`)) as ConfigDocument | null;
  const document = stored ? await replayDeltas(`${stateDir}/config.deltas`, stored) : null;
  return { document, certificates: [] };
}

export async function startStandalone(options: StandaloneOptions): Promise<Standalone> {
  const { log } = options;
  const paths = controlPaths(options.stateDir);
  const inherited = options.inherited ?? null;
  const state: Persisted & { challenges: ChallengeTokens } = inherited
    ? { document: inherited.document, certificates: inherited.certificates, challenges: inherited.challenges }
    : { ...(await initialState(options.stateDir)), challenges: {} };

  let attached: Socket | null = null;
  let extra: MetricFamily[] = [];
  const tell = (event: object) => {
    if (attached) writeLine(attached, event);
  };
  const proxyLog = (line: string) => {
    log(line);
    tell({ event: "log", line });
  };
  const proxyOptions = {
    host: options.host,
    httpPort: inherited?.sockets.port ?? options.httpPort,
    httpsPort: inherited ? inherited.sockets.tlsPort : options.httpsPort,
    processes: Math.max(1, options.processes),
    servingChild: options.servingChild === true,
    // Documents come from the agent, which validated them; a stored one is validated at start.
    validatedDocuments: true,
    log: proxyLog,
    onHeldRequest: (service: string) => tell({ event: "held", service }),
    extraMetrics: () => extra,
    stateDir: options.stateDir,
  };
  let proxy: TunedProxyHandle;
  try {
    proxy = await startTunedProxy({ ...proxyOptions, initialConfig: state.document }, { adopt: inherited?.sockets });
  } catch (error) {
    if (!(state.document && error instanceof ProxyOptionsError && error.field === "initialConfig")) throw error;
    log(`proxy: the stored document was refused (${error.message}); starting without one`);
    state.document = null;
    proxy = await startTunedProxy({ ...proxyOptions, initialConfig: null }, { adopt: inherited?.sockets });
  }
  if (state.certificates.length > 0) {
    await proxy
      .setCertificates(state.certificates)
      .catch((error: Error) => log(`proxy: stored certificates refused: ${error.message}`));
  }
  if (Object.keys(state.challenges).length > 0) await proxy.setChallenges(state.challenges);

  // One write in flight, the latest state wins: a delta a second must not queue a 10 MB write each.
  // A delta is a line of the journal; the state file is rewritten once the journal is as large as it,
  // or once deltas stop (`../delta-journal.ts`). The write reads the state as it is then.
  const cannotPersist = (error: Error) => log(`proxy: cannot persist its state: ${error.message}`);
  const snapshot = new JournaledSnapshot<void>(
    journalPath(paths.state),
    async () => {
      const version = state.document?.version ?? 0;
      const document = state.document ? await stringifyInSlices(state.document, "services") : "null";
      const text = `{"document":${document},"certificates":${JSON.stringify(state.certificates)}}\n`;
      const temp = `${paths.state}.${process.pid}.tmp`;
      await writeFile(temp, text, { mode: 0o600 });
      await rename(temp, paths.state);
      return { bytes: text.length, version };
    },
    cannotPersist,
  );
  const persist = () => snapshot.write().catch(cannotPersist);

  let finish!: () => void;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const connections = new Set<Socket>();
  let closing: Promise<void> | null = null;
  const close = (successor = false) => {
    closing ??= (async () => {
      // Not waiting on the agents' connections: closing the listener unlinks the socket at once.
      if (control.listening) control.close();
      for (const socket of connections) socket.destroy();
      await proxy.close({ successor });
      await snapshot.idle();
      // The pid file names the successor after a handover: only our own goes.
      if ((await readFile(paths.pid, "utf8").catch(() => "")).trim() === String(process.pid)) {
        await rm(paths.pid, { force: true });
      }
      finish();
    })();
    return closing;
  };

  const hello = (): ProxyHello => ({
    version: options.version,
    pid: process.pid,
    host: options.host,
    port: proxy.port,
    httpsPort: proxy.httpsPort,
    processes: proxyOptions.processes,
    configVersion: state.document?.version ?? null,
  });

  const handle = async (socket: Socket, message: Record<string, unknown>): Promise<unknown> => {
    switch (message.op) {
      case "hello":
        if (message.attach === true) attached = socket;
        return hello();
      case "apply": {
        const document = message.document as ConfigDocument;
        await proxy.apply(document);
        state.document = document;
        await persist();
        return null;
      }
      case "apply-delta": {
        const delta = message.delta as ConfigDelta;
        await proxy.applyDelta(delta);
        state.document = proxy.document();
        // Not awaited: the agent's ACK must not wait for it. One line of the journal, O(changed).
        snapshot.writeDelta(delta).catch(cannotPersist);
        return null;
      }
      case "certificates": {
        const certificates = message.certificates as TlsCertificate[];
        await proxy.setCertificates(certificates);
        state.certificates = certificates;
        await persist();
        return null;
      }
      case "challenges":
        state.challenges = message.tokens as ChallengeTokens;
        await proxy.setChallenges(state.challenges);
        return null;
      case "stats":
        return proxy.stats();
      case "metrics":
        return proxy.metrics();
      case "exposition":
        return proxy.exposition();
      case "handover":
        await handOver(message.command as string[]);
        return null;
      // The gateway's mesh (`../mesh/mesh.ts`): the agent relays digests, the proxy holds the state.
      case "mesh-take":
        return (await proxy.mesh?.take()) ?? null;
      case "mesh-apply":
        return (await proxy.mesh?.apply(message.digest)) ?? false;
      case "shutdown":
        setImmediate(() => void close());
        return null;
      default:
        throw new Error(`unknown operation ${String(message.op)}`);
    }
  };

  const control: Server = createServer((socket) => {
    connections.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => {
      connections.delete(socket);
      if (attached === socket) {
        attached = null;
        // The agent's own series describe a running agent: none while it is away.
        extra = [];
      }
    });
    readLines(socket, (message) => {
      if (message.op === "extra") {
        if (Array.isArray(message.families)) extra = message.families as MetricFamily[];
        return;
      }
      handle(socket, message).then(
        (value) => writeLine(socket, { id: message.id, ok: true, value }),
        (error: unknown) => writeLine(socket, { id: message.id, ok: false, error: toWire(error) }),
      );
    });
  });

  /** Starts `command` as this proxy's successor, hands it everything, waits until it owns the control socket. */
  const handOver = async (command: string[]) => {
    const sockets = proxy.sockets();
    if (!sockets) throw new Error("this proxy has no listening sockets to hand over");
    if (!Array.isArray(command) || command.length === 0) throw new Error("handover needs a command");
    const logFd = openSync(paths.log, "a", 0o600);
    const child = spawn(command[0]!, command.slice(1), {
      detached: true,
      stdio: ["ignore", logFd, logFd, "ipc"],
      env: { ...process.env, GATEPLANE_PROXY_SUCCESSOR: "1" },
    });
    closeSync(logFd);
    log(`proxy: handing over to a successor, pid ${child.pid}`);
    const send = (message: object, handle?: object) =>
      // biome-ignore lint/suspicious/noExplicitAny: Node's send accepts listening handles; its typing does not say so.
      child.send(message, handle as any);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error("the successor proxy did not take over within 60s"));
      }, 60_000);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the successor proxy exited (${signal ?? `code ${code}`}) before taking over`));
      });
      child.on("message", (message: { type?: string }) => {
        if (message.type === "serving") {
          // Its processes serve on the same sockets: release the control socket to it.
          // Closing the listener unlinks its path at once; the agents' connections stay open meanwhile.
          control.close();
          send({ type: "release" });
        } else if (message.type === "took-over") {
          clearTimeout(timer);
          child.removeAllListeners("exit");
          child.disconnect();
          child.unref();
          resolve();
        }
      });
      send(
        {
          type: "inherit",
          document: state.document,
          certificates: state.certificates,
          challenges: state.challenges,
          port: sockets.port,
          tlsPort: sockets.tlsPort,
        },
        sockets.handle,
      );
      if (sockets.tlsHandle) send({ type: "inherit-tls" }, sockets.tlsHandle);
    }).catch(async (error: Error) => {
      // Still ours: serve on, and take the control socket back if it was released.
      if (!control.listening) await listen();
      throw error;
    });
    log("proxy: the successor took over; draining");
    setImmediate(() => void close(true));
  };

  const listen = async () => {
    await rm(paths.socket, { force: true });
    // Owner-only from the first instant: the socket applies routing and certificates.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        control.once("error", reject);
        control.listen(paths.socket, () => {
          control.off("error", reject);
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
    await writeFile(paths.pid, `${process.pid}\n`, { mode: 0o600 });
  };

  return { proxy, listen, done, close };
}
