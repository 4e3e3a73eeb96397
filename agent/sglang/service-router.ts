/**
 * @module
 * The router of one service: launch it, wait until its worker API answers, keep its worker set equal
 * to the service's replicas, and start it again when it dies or stops answering (jittered back-off,
 * reset after it stayed up a while). It says at every moment whether traffic may go through it
 * (`external`) or must stay on the proxy's built-in balancer (`built-in`, with the reason).
 *
 * Traffic is switched to the router only once it answers AND lists at least one of the service's
 * replicas: a freshly started router has no workers and would answer 503 to everything. Readiness is
 * the worker API (`GET /workers`, else `GET /list_workers`), not `/health`, which v0.1 proxies to the
 * first worker (503 with none) and later versions answer before workers are usable.
 *
 * Worker sync is a diff of `GET /workers` against the replicas each `syncIntervalMs` (and at once on a
 * change): extras are removed, missing ones added. A 202 (queued) add is not repeated while the
 * router may still be processing it (`pendingAddTimeoutMs`); after that it is posted again, since a
 * failed job never shows up. A router that does not answer a sync is taken out of traffic at once and
 * restarted after `unresponsiveAfter` in a row; one that answers with errors is only retried
 * (restarting would not fix its replicas).
 *
 * Under prefill/decode disaggregation (`pd`: the mode's flags) the router is launched in PD mode with
 * the workers on its command line, each with its type and bootstrap port (worker-set.ts); the diff is
 * by URL, type and port, and traffic goes through it once it lists a prefill and a decode worker of
 * the service. A legacy router (no `/workers` API, whose PD router refuses `/add_worker`) is
 * restarted with the new command line when the workers change.
 */
import type { RouterPolicy } from "../../schema/gateway.ts";
import { type BackoffPolicy, backoffDelay, sleep } from "../backoff.ts";
import type { Logger } from "../log.ts";
import { type ApiGeneration, SglangRouterClient, SglangRouterError } from "./client.ts";
import type { PortAllocator } from "./ports.ts";
import { describeExit, RouterProcess } from "./router-process.ts";
import {
  asLaunched,
  notUsable,
  pdWorkerFlags,
  type WorkerSpec,
  withKnownPorts,
  workerDiff,
  workerKey,
} from "./worker-set.ts";

export type RouterMode =
  | { mode: "external"; reason: null; port: number; pid: number | null }
  | { mode: "built-in"; reason: string };

export interface ServiceRouterTiming {
  /** From launch until the worker API must answer. */
  startupTimeoutMs: number;
  probeIntervalMs: number;
  syncIntervalMs: number;
  pendingAddTimeoutMs: number;
  /** Syncs in a row without an answer after which the router is restarted. */
  unresponsiveAfter: number;
  /** Between restarts. */
  backoff: BackoffPolicy;
  /** A router that served this long resets the back-off. */
  stableAfterMs: number;
  /** SIGTERM → SIGKILL. */
  stopGraceMs: number;
  requestTimeoutMs: number;
  /** Adds on legacy routers wait for the worker's health. */
  addTimeoutMs: number;
}

export const DEFAULT_ROUTER_TIMING: ServiceRouterTiming = {
  startupTimeoutMs: 60_000,
  probeIntervalMs: 250,
  syncIntervalMs: 2_000,
  pendingAddTimeoutMs: 30_000,
  unresponsiveAfter: 3,
  backoff: { initialMs: 1_000, maxMs: 30_000 },
  stableAfterMs: 60_000,
  stopGraceMs: 5_000,
  requestTimeoutMs: 5_000,
  addTimeoutMs: 30_000,
};

export interface ServiceRouterOptions {
  service: string;
  command: readonly string[];
  policy: RouterPolicy;
  /** The policy's tunables as launch flags (`tunableFlags`). */
  tunables?: readonly string[];
  /** PD mode: its launch flags (`pdModeFlags`); null: a regular router. */
  pd?: readonly string[] | null;
  workers: readonly WorkerSpec[];
  ports: PortAllocator;
  timing: ServiceRouterTiming;
  log: Logger;
  /** Called whenever {@link ServiceRouter.mode} changes. */
  onModeChange: () => void;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));
const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/** How one launch ended: why (for the report), and whether to back off before the next. */
interface LaunchEnd {
  why: string;
  servedMs: number;
  immediate: boolean;
}

export class ServiceRouter {
  readonly #o: ServiceRouterOptions;
  #policy: RouterPolicy;
  #tunables: readonly string[];
  #pd: readonly string[] | null;
  #workers: readonly WorkerSpec[];
  /** The workers on the running router's command line (PD), by key. */
  #launchedWith: string | null = null;
  #mode: RouterMode = { mode: "built-in", reason: "sglang router starting" };
  #stopped = false;
  #restartWanted = false;
  #wake: () => void = () => undefined;
  readonly #done: Promise<void>;
  readonly #stopping = new AbortController();
  /** Worker key → when the router accepted (202) its addition. */
  readonly #pending = new Map<string, number>();
  #process: RouterProcess | null = null;
  #port: number | null = null;
  #launches = 0;

  constructor(options: ServiceRouterOptions) {
    this.#o = options;
    this.#policy = options.policy;
    this.#tunables = options.tunables ?? [];
    this.#pd = options.pd ?? null;
    this.#workers = options.workers;
    this.#done = this.#run();
  }

  get mode(): RouterMode {
    return this.#mode;
  }

  get policy(): RouterPolicy {
    return this.#policy;
  }

  /** The running router's HTTP port, or null between launches. */
  get port(): number | null {
    return this.#port;
  }

  /** The running router's process id, or null between launches. */
  get pid(): number | null {
    return this.#process?.pid ?? null;
  }

  /** How many times a router process was started for this service. */
  get launches(): number {
    return this.#launches;
  }

  /** New replicas sync at once; a new policy, tunable or PD mode restarts the router (they are launch flags). */
  update(
    policy: RouterPolicy,
    workers: readonly WorkerSpec[],
    tunables: readonly string[] = [],
    pd: readonly string[] | null = null,
  ): void {
    if (policy !== this.#policy) {
      this.#o.log.info(`sglang router for ${this.#o.service}: policy ${this.#policy} → ${policy}; restarting it`);
      this.#policy = policy;
      this.#restartWanted = true;
    }
    if (tunables.join(" ") !== this.#tunables.join(" ")) {
      if (!this.#restartWanted) {
        this.#o.log.info(`sglang router for ${this.#o.service}: tunables → ${tunables.join(" ")}; restarting it`);
      }
      this.#tunables = tunables;
      this.#restartWanted = true;
    }
    if ((pd ?? []).join(" ") !== (this.#pd ?? []).join(" ") || (pd === null) !== (this.#pd === null)) {
      if (!this.#restartWanted) {
        this.#o.log.info(`sglang router for ${this.#o.service}: PD mode → ${pd?.join(" ") ?? "off"}; restarting it`);
      }
      this.#pd = pd;
      this.#restartWanted = true;
    }
    this.#workers = workers;
    this.#wake();
  }

  /** Stops the router process; the service goes back to the built-in balancer. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopping.abort();
    this.#wake();
    await this.#done;
  }

  #setMode(mode: RouterMode) {
    const before = this.#mode;
    if (before.mode === mode.mode && before.reason === mode.reason) return;
    this.#mode = mode;
    const { service } = this.#o;
    if (mode.mode === "external") {
      this.#o.log.info(`service ${service}: traffic goes through the sglang router on port ${mode.port}`);
    } else if (before.mode === "external" || !this.#stopped) {
      this.#o.log.info(`service ${service}: built-in balancer (${mode.reason})`);
    }
    this.#o.onModeChange();
  }

  /** Resolves after `ms`, on {@link update}/{@link stop}, or when `proc` exits. */
  #pause(ms: number, proc: RouterProcess): Promise<void> {
    return new Promise((resolve) => {
      if (!proc.running) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (!this.#stopped) {
      const end = await this.#launchOnce();
      if (this.#stopped) break;
      if (end.immediate) continue;
      if (end.servedMs >= this.#o.timing.stableAfterMs) attempt = 0;
      const delay = backoffDelay(this.#o.timing.backoff, attempt++);
      this.#o.log.warn(`sglang router for ${this.#o.service}: ${end.why}; starting it again in ${seconds(delay)}`);
      this.#setMode({ mode: "built-in", reason: `${end.why}; restarting` });
      await sleep(delay, this.#stopping.signal);
    }
    this.#setMode({ mode: "built-in", reason: "sglang router stopped" });
  }

  async #launchOnce(): Promise<LaunchEnd> {
    const { service, timing, log } = this.#o;
    let ports: [number, number];
    try {
      ports = await this.#o.ports.take();
    } catch (error) {
      return { why: `cannot launch: ${errorMessage(error)}`, servedMs: 0, immediate: false };
    }
    const [port, prometheusPort] = ports;
    const policy = this.#policy;
    this.#restartWanted = false;
    this.#pending.clear();
    const pd = this.#pd;
    this.#launchedWith = pd ? this.#workers.map(workerKey).sort().join("\n") : null;
    const tunables = pd ? [...this.#tunables, ...pd, ...pdWorkerFlags(this.#workers)] : this.#tunables;
    const proc = new RouterProcess(this.#o.command, { port, prometheusPort, policy, tunables });
    this.#process = proc;
    this.#port = port;
    this.#launches++;
    // One listener per process (not per pause): an exit ends whatever wait is running.
    void proc.exited.then(() => this.#wake());
    const client = new SglangRouterClient(`http://127.0.0.1:${port}`, {
      timeoutMs: timing.requestTimeoutMs,
      addTimeoutMs: timing.addTimeoutMs,
    });
    log.info(
      `sglang router for ${service}: launched pid ${proc.pid ?? "?"} on 127.0.0.1:${port} (metrics ${prometheusPort}, policy ${policy})`,
    );
    let servedFrom: number | null = null;
    try {
      const generation = await this.#awaitReady(proc, client);
      if (typeof generation !== "string") return { why: generation.why, servedMs: 0, immediate: this.#restartWanted };
      if (this.#stopped) return { why: "stopped", servedMs: 0, immediate: false };
      log.info(`sglang router for ${service}: ready on port ${port} (${generation} API)`);
      servedFrom = Date.now();
      let silent = 0;
      while (!this.#stopped && proc.running && !this.#restartWanted) {
        try {
          await this.#sync(client, generation, port, proc.pid);
          silent = 0;
        } catch (error) {
          if (!proc.running) break;
          const answered = error instanceof SglangRouterError && error.status !== null;
          // A router that does not answer its own API is not trusted with traffic meanwhile.
          if (!answered)
            this.#setMode({ mode: "built-in", reason: `sglang router not answering (${errorMessage(error)})` });
          if (!answered && ++silent >= timing.unresponsiveAfter) {
            return {
              why: `unresponsive (${errorMessage(error)})`,
              servedMs: Date.now() - servedFrom,
              immediate: false,
            };
          }
          log.warn(`sglang router for ${service}: worker sync failed (${errorMessage(error)}); retrying`);
        }
        await this.#pause(timing.syncIntervalMs, proc);
      }
      if (this.#restartWanted && proc.running) return { why: "launch flags changed", servedMs: 0, immediate: true };
      if (!proc.running) {
        const exit = await proc.exited;
        const tail = proc.tail();
        if (tail.length > 0) log.warn(`sglang router for ${service} wrote before exiting:\n${tail.join("\n")}`);
        return { why: `exited (${describeExit(exit)})`, servedMs: Date.now() - servedFrom, immediate: false };
      }
      return { why: "stopped", servedMs: Date.now() - servedFrom, immediate: false };
    } finally {
      // Off the router before it goes away, so no request is sent to a dying process.
      if (this.#mode.mode === "external") {
        this.#setMode({
          mode: "built-in",
          reason: this.#stopped ? "sglang router stopped" : "sglang router restarting",
        });
      }
      await proc.stop(timing.stopGraceMs);
      this.#process = null;
      this.#port = null;
      this.#o.ports.release(ports);
    }
  }

  /** The API generation once the worker API answers; why not, if the process died or timed out. */
  async #awaitReady(proc: RouterProcess, client: SglangRouterClient): Promise<ApiGeneration | { why: string }> {
    const { timing } = this.#o;
    const deadline = Date.now() + timing.startupTimeoutMs;
    let last = "no answer yet";
    this.#setMode({ mode: "built-in", reason: "sglang router starting" });
    while (!this.#stopped && !this.#restartWanted) {
      if (!proc.running) {
        const exit = await proc.exited;
        const tail = proc.tail();
        return { why: `exited during startup (${describeExit(exit)})${tail.length ? `: ${tail.at(-1)}` : ""}` };
      }
      try {
        return await client.generation();
      } catch (error) {
        last = errorMessage(error);
      }
      if (Date.now() >= deadline) return { why: `not ready within ${seconds(timing.startupTimeoutMs)} (${last})` };
      await this.#pause(timing.probeIntervalMs, proc);
    }
    return { why: "stopped" };
  }

  async #sync(client: SglangRouterClient, generation: ApiGeneration, port: number, pid: number | null) {
    const { service, log, timing } = this.#o;
    const listed = await client.list(generation);
    const desired = this.#workers;
    const pd = this.#pd !== null;
    if (pd && generation === "legacy") {
      // Its PD router takes workers only on the command line: a changed set is a new launch.
      if (desired.map(workerKey).sort().join("\n") !== this.#launchedWith) {
        log.info(`sglang router for ${service}: workers changed; restarting it with them (legacy PD router)`);
        this.#restartWanted = true;
        return;
      }
      this.#decide(pd, desired, asLaunched(listed, desired), port, pid);
      return;
    }
    const problems: string[] = [];
    const { removals, additions } = workerDiff(desired, listed, this.#pending, Date.now(), timing.pendingAddTimeoutMs);
    const named = (w: WorkerSpec) => (w.type === "regular" ? w.url : `${w.type} ${w.url}`);
    await Promise.all([
      ...removals.map(async (worker) => {
        try {
          await client.remove(generation, worker);
          log.info(`sglang router for ${service}: removed worker ${named(worker)}`);
        } catch (error) {
          problems.push(errorMessage(error));
        }
      }),
      ...additions.map(async (worker) => {
        try {
          const outcome = await client.add(generation, worker);
          if (outcome === "accepted") this.#pending.set(workerKey(worker), Date.now());
          log.info(
            `sglang router for ${service}: ${outcome === "accepted" ? "asked to add" : "added"} worker ${named(worker)}`,
          );
        } catch (error) {
          problems.push(errorMessage(error));
        }
      }),
    ]);
    // Traffic goes through the router once it lists a replica it should have (PD: one of each side).
    const changed = removals.length + additions.length > 0;
    const after = changed ? await client.list(generation).catch(() => listed) : listed;
    this.#decide(pd, desired, withKnownPorts(after, desired), port, pid);
    if (problems.length > 0) throw new SglangRouterError(problems.join("; "), 0);
  }

  #decide(
    pd: boolean,
    desired: readonly WorkerSpec[],
    listed: readonly WorkerSpec[],
    port: number,
    pid: number | null,
  ) {
    const why = notUsable(this.#o.service, pd, desired, listed);
    this.#setMode(why === null ? { mode: "external", reason: null, port, pid } : { mode: "built-in", reason: why });
  }
}
