/**
 * @module
 * Multi-process serving: N worker processes (`worker-main.ts`, compiled once to JavaScript) accept on one shared
 * listening socket, the kernel spreading connections between them. Two ways to share it:
 *
 * - `handle` (default): the first worker binds; its listening handle comes back to the parent, which
 *   keeps it (without accepting on it) and hands it to every other worker and to replacements. The
 *   socket stays bound while workers restart, so connections queue instead of being refused.
 * - `cluster`: node:cluster with `SCHED_NONE` (same kernel mechanism; cluster's primary keeps the
 *   handle). It configures process-wide cluster settings, and cluster shares one socket between
 *   every worker that asks for port 0, so port 0 is resolved to a free port first.
 *
 * The parent sends each document to every worker and waits for every ack; a worker that dies is
 * restarted with the current document. The parent also holds the host's rate-limit buckets and
 * answers the workers' batched checks (`rate-limit-gate.ts`), so the host admits the configured
 * rate whatever the number of workers; and it holds the host's routing state (`routing-state.ts`:
 * round-robin counters, in-flight loads, cache_aware trees) and answers the workers' batched
 * routing decisions (`routing-gate.ts`), so every worker routes as one proxy would. A worker that
 * dies gives back the loads it held.
 */
import { type ChildProcess, fork } from "node:child_process";
import cluster from "node:cluster";
import { mkdirSync, renameSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ConfigDocument } from "../schema/config-document.ts";
import type { ChallengeTokens } from "./acme-challenge.ts";
import { WorkerError } from "./errors.ts";
import { answerAsk } from "./rate-limit-gate.ts";
import { ZoneRegistry } from "./rate-limit-store.ts";
import { documentZones } from "./routes.ts";
import { answerRoute } from "./routing-gate.ts";
import { RoutingState } from "./routing-state.ts";
import type { ServerSettings } from "./server.ts";
import type { RawServiceStats } from "./stats.ts";
import type { TlsCertificate } from "./tls.ts";
import type { FromWorker, ToWorker } from "./worker-protocol.ts";

export type Sharing = "cluster" | "handle";

export interface WorkerPoolOptions {
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
  /** A worker holds a request for a service scaled to zero. */
  onHold: (service: string) => void;
  /** A worker must be serving within this after it is started. */
  startTimeoutMs?: number;
  /** A worker must acknowledge a document (or answer a stats request) within this. */
  answerTimeoutMs?: number;
  /** Extra Node flags for workers (benchmark experiments, e.g. GC sizing). */
  nodeFlags?: string[];
}

const WORKER_SOURCE = fileURLToPath(new URL("./worker-main.ts", import.meta.url));
/** Inside the package, so the bundle's bare imports (undici, valibot) resolve from its node_modules. */
const WORKER_BUNDLE = fileURLToPath(new URL("../node_modules/.cache/gateplane/proxy-worker.mjs", import.meta.url));

/**
 * The worker entry: this checkout's worker compiled once to plain JavaScript, so each worker runs
 * without the TypeScript loader (whose compiler thread costs tens of MiB per process). Falls back
 * to the loader where the bundle cannot be written (a read-only install).
 */
let entry: { file: string; execArgv: string[] } | null = null;
function workerEntry(nodeFlags: readonly string[]): { file: string; execArgv: string[] } {
  entry ??= (() => {
    try {
      const esbuild = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
      mkdirSync(path.dirname(WORKER_BUNDLE), { recursive: true });
      const temp = `${WORKER_BUNDLE}.${process.pid}.tmp`;
      esbuild.buildSync({
        entryPoints: [WORKER_SOURCE],
        outfile: temp,
        bundle: true,
        packages: "external",
        platform: "node",
        format: "esm",
        target: "node20",
        logLevel: "silent",
      });
      renameSync(temp, WORKER_BUNDLE);
      return { file: WORKER_BUNDLE, execArgv: [] };
    } catch {
      // An absolute URL: `--import tsx` would be resolved from the working directory.
      const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
      return { file: WORKER_SOURCE, execArgv: ["--import", tsx] };
    }
  })();
  return { file: entry.file, execArgv: [...nodeFlags, ...entry.execArgv] };
}

/** What the pool needs of a worker, whether cluster or plain fork made it. */
interface Child {
  readonly process: ChildProcess;
  send(message: ToWorker, handle?: object): void;
}

function forkChild(sharing: Sharing, nodeFlags: readonly string[]): Child {
  if (sharing === "cluster") {
    const { file, execArgv } = workerEntry(nodeFlags);
    if (cluster.settings.exec !== file) {
      // Respect an operator's explicit choice; otherwise let the kernel spread connections.
      if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
      cluster.setupPrimary({ exec: file, execArgv, silent: false });
    }
    const worker = cluster.fork();
    // biome-ignore lint/suspicious/noExplicitAny: Node's send accepts listening handles; its typing does not say so.
    return { process: worker.process, send: (message, handle) => worker.send(message, handle as any) };
  }
  const { file, execArgv } = workerEntry(nodeFlags);
  const child = fork(file, [], {
    execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  return { process: child, send: (message, handle) => child.send(message, handle as any) };
}

async function freePort(host: string): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject);
    probe.listen({ host, port: 0 }, resolve);
  });
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (typeof address !== "object" || !address) throw new WorkerError(`cannot find a free port on ${host}`);
  return address.port;
}

interface Pending {
  slot: Slot;
  resolve: (message: FromWorker) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

class WorkerGoneError extends WorkerError {
  constructor(pid: number | undefined) {
    super(`proxy worker ${pid ?? "?"} exited`);
    this.name = "WorkerGoneError";
  }
}

/** One worker position: its current process, and whether it serves. */
interface Slot {
  readonly index: number;
  child: Child | null;
  /** Resolves true once serving, false if the process died first. */
  ready: Promise<boolean>;
  /** The document the worker runs (or will run once ready). */
  document: ConfigDocument | null;
  readyAt: number;
  /** Restarts after a short life, for the back-off. */
  quickExits: number;
  restartTimer: NodeJS.Timeout | null;
}

export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #slots: Slot[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
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
  readonly #routing = new RoutingState();
  /** Owner of the routing leases of each worker process started. */
  #nextOwner = 1;

  private constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#document = options.document;
    this.#certificates = options.certificates;
    this.#challenges = options.challenges;
    this.#rateLimits = new ZoneRegistry(options.settings.rateLimitKeys);
    this.#rateLimits.retain(documentZones(options.document));
    this.#routing.retain(options.document);
  }

  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
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
  routingLoads(): { service: string; id: string; inFlight: number }[] {
    return this.#routing.loads();
  }

  /** Process ids of the workers now running. */
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
    if (sharing === "handle") {
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
    const child = forkChild(this.#options.sharing, this.#options.nodeFlags ?? []);
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
        fail(new WorkerError(`proxy worker ${pid} did not start within ${this.#startTimeout / 1000}s`));
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
      child.process.on("message", (message: FromWorker, handle: object | undefined) => {
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
          settle(true);
          resolve(message.port);
        } else if (message.type === "route") {
          const answer = answerRoute(this.#routing, owner, message);
          if (answer) child.send(answer);
        } else if (message.type === "rate-limit") {
          child.send(answerAsk(this.#rateLimits, message));
        } else if (message.type === "failed") {
          fail(new WorkerError(`proxy worker ${pid} failed to start: ${message.error}`));
        } else {
          this.#onMessage(message);
        }
      });
      child.process.once("exit", (code, signal) => {
        this.#routing.forget(owner);
        fail(new WorkerError(`proxy worker ${pid} exited while starting (${signal ?? `code ${code}`})`));
        this.#onExit(slot, child, code, signal);
      });
      child.process.once("error", (err) => fail(new WorkerError(`proxy worker could not start: ${err.message}`)));
    });
  }

  get #startTimeout(): number {
    return this.#options.startTimeoutMs ?? 30_000;
  }

  get #answerTimeout(): number {
    return this.#options.answerTimeoutMs ?? 10_000;
  }

  #onMessage(message: FromWorker): void {
    if (message.type === "log") {
      this.#options.log(message.line);
      return;
    }
    if (message.type === "held") {
      this.#options.onHold(message.service);
      return;
    }
    if (!("id" in message)) return;
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    pending.resolve(message);
  }

  #onExit(slot: Slot, child: Child, code: number | null, signal: string | null): void {
    if (slot.child !== child) return;
    slot.child = null;
    for (const [id, pending] of this.#pending) {
      if (pending.slot !== slot) continue;
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new WorkerGoneError(child.process.pid));
    }
    if (this.#closing || !this.#started) return;
    const lived = slot.readyAt ? Date.now() - slot.readyAt : 0;
    slot.quickExits = lived < 10_000 ? slot.quickExits + 1 : 0;
    const delay = slot.quickExits === 0 ? 0 : Math.min(100 * 2 ** slot.quickExits, 10_000);
    this.#options.log(
      `proxy worker ${child.process.pid} exited (${signal ?? `code ${code}`}); restarting${delay ? ` in ${delay}ms` : ""}`,
    );
    slot.restartTimer = setTimeout(() => this.#restart(slot), delay);
  }

  #restart(slot: Slot): void {
    slot.restartTimer = null;
    if (this.#closing) return;
    const { host, sharing } = this.#options;
    const tls = this.#tlsPort === null ? null : sharing === "handle" ? "handle" : { host, port: this.#tlsPort };
    this.#boot(slot, sharing === "handle" ? "handle" : { host, port: this.#port }, tls, false).catch((err: Error) =>
      this.#options.log(`proxy worker restart failed: ${err.message}`),
    );
  }

  #request(slot: Slot, message: ToWorker & { id: number }): Promise<FromWorker> {
    const child = slot.child;
    if (!child) return Promise.reject(new WorkerGoneError(undefined));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(message.id);
        reject(
          new WorkerError(`proxy worker ${child.process.pid} did not answer within ${this.#answerTimeout / 1000}s`),
        );
      }, this.#answerTimeout);
      this.#pending.set(message.id, { slot, resolve, reject, timer });
      child.send(message);
    });
  }

  /** Brings one worker to `document`. A worker that dies meanwhile is fine: its replacement starts with the current document. */
  async #applyTo(slot: Slot, document: ConfigDocument): Promise<void> {
    if (!(await slot.ready) || slot.document === document) return;
    try {
      const answer = await this.#request(slot, { type: "apply", id: this.#nextId++, document });
      if (answer.type === "apply-failed") throw new WorkerError(`proxy worker refused the document: ${answer.error}`);
      slot.document = document;
    } catch (err) {
      if (err instanceof WorkerGoneError) return;
      throw err;
    }
  }

  /** Sends `document` to every worker and resolves once all of them run it; on failure, returns them to the previous one. */
  async apply(document: ConfigDocument): Promise<void> {
    const previous = this.#document;
    this.#document = document;
    // Before any worker runs the new rules; zones of rules the document keeps keep their buckets.
    this.#rateLimits.retain(documentZones(document));
    this.#routing.retain(document);
    const results = await Promise.allSettled(this.#slots.map((slot) => this.#applyTo(slot, document)));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (!failure) return;
    this.#document = previous;
    this.#rateLimits.retain(documentZones(previous));
    this.#routing.retain(previous);
    if (previous) {
      const rollback = await Promise.allSettled(this.#slots.map((slot) => this.#applyTo(slot, previous)));
      // A worker that cannot return to the previous document is replaced; its successor starts with it.
      rollback.forEach((r, i) => {
        if (r.status === "rejected") this.#slots[i]!.child?.process.kill("SIGKILL");
      });
    }
    throw failure.reason instanceof Error ? failure.reason : new WorkerError(String(failure.reason));
  }

  /** Hands certificates to every serving worker (and to later replacements); resolves once all have them. */
  async setCertificates(certificates: TlsCertificate[]): Promise<void> {
    this.#certificates = certificates;
    await this.#setEverywhere(() => ({ type: "certificates", id: this.#nextId++, certificates }));
  }

  /** Hands ACME challenge answers to every serving worker; resolves once all can answer them. */
  async setChallenges(tokens: ChallengeTokens): Promise<void> {
    this.#challenges = tokens;
    await this.#setEverywhere(() => ({ type: "challenges", id: this.#nextId++, tokens }));
  }

  async #setEverywhere(message: () => ToWorker & { id: number }): Promise<void> {
    const results = await Promise.allSettled(
      this.#slots.map(async (slot) => {
        if (!(await slot.ready)) return;
        try {
          const answer = await this.#request(slot, message());
          if (answer.type === "set-failed") throw new WorkerError(`proxy worker refused: ${answer.error}`);
        } catch (err) {
          // A worker gone meanwhile is fine: its replacement starts with the current set.
          if (!(err instanceof WorkerGoneError)) throw err;
        }
      }),
    );
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) throw failure.reason;
  }

  /** Raw stats of every worker that answers (a worker that is restarting is skipped). */
  async stats(): Promise<RawServiceStats[][]> {
    const answers = await Promise.allSettled(
      this.#slots.filter((s) => s.child).map((slot) => this.#request(slot, { type: "stats", id: this.#nextId++ })),
    );
    return answers.flatMap((a) => (a.status === "fulfilled" && a.value.type === "stats" ? [a.value.stats] : []));
  }

  /** Asks every worker to drain and exit; kills the ones still there after their drain bound. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
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
          if (proc.connected) child.send({ type: "close" });
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
