/**
 * @module
 * The local host daemon: a tiny REST service on 127.0.0.1 that plays a cloud's instance API for the
 * `local` backend. Creating an instance starts an agent process on loopback ports; the daemon keeps it
 * running (restarting it when it dies), persists what it runs, and relaunches it after a restart.
 *
 * @example
 * const daemon = await startHostDaemon({ stateDir: ".gateplane/hosts", port: 0, token });
 * await fetch(`${daemon.url}/v1/instances`, { method: "POST", headers: { authorization: `Bearer ${token}` }, … });
 * await daemon.stop();
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import path from "node:path";
import * as v from "valibot";
import { formatIssue, fromValibot } from "../schema/issues.ts";
import { CreateInstanceRequest, type LocalInstance } from "../schema/local-host.ts";
import { AgentSupervisor, DEFAULT_RESTART_BACKOFF, type RestartBackoff } from "./agent-supervisor.ts";
import { bearerChecker } from "./bearer-auth.ts";
import { type AgentCommand, defaultAgentCommand, type InstancePaths } from "./default-agent-command.ts";
import { DaemonHttpError } from "./errors.ts";
import { readJsonBody, sendError, sendJson } from "./http-json.ts";
import { InstanceStore } from "./instance-store.ts";
import { allocatePorts } from "./ports.ts";
import { isProcessMarked, stopProcessGroup } from "./process-group.ts";

export type { AgentCommand, InstancePaths } from "./default-agent-command.ts";

export interface HostDaemonOptions {
  /** Where instances.json and each instance's directory live. */
  stateDir: string;
  /** Port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  /** Bearer token every request but `/v1/health` must present. */
  token: string;
  /** What to run as a host's agent; defaults to this checkout's agent under tsx. */
  agentCommand?: AgentCommand;
  restartBackoff?: Partial<RestartBackoff>;
  /** Grace period between SIGTERM and SIGKILL when stopping an agent. */
  stopGraceMs?: number;
  /** One line per event (instance created, agent exited, …); silent by default. */
  log?: (message: string) => void;
}

export interface HostDaemon {
  url: string;
  port: number;
  /** Stops every agent this daemon started (they stay `running` in the state file) and the server. */
  stop(): Promise<void>;
}

/** Set in each agent's environment so a restarted daemon can recognise agents a crash left behind. */
const INSTANCE_MARKER_ENV = "GATEPLANE_INSTANCE_ID";
const INSTANCE_ID_PATTERN = /^i-[0-9a-f]{17}$/;

const newInstanceId = () => `i-${randomBytes(9).toString("hex").slice(0, 17)}`;

export async function startHostDaemon(options: HostDaemonOptions): Promise<HostDaemon> {
  const stateDir = path.resolve(options.stateDir);
  const agentCommand = options.agentCommand ?? defaultAgentCommand;
  const backoff: RestartBackoff = { ...DEFAULT_RESTART_BACKOFF, ...options.restartBackoff };
  const stopGraceMs = options.stopGraceMs ?? 5_000;
  const log = options.log ?? (() => {});
  const isAuthorized = bearerChecker(options.token);

  const store = await InstanceStore.open(stateDir);
  const supervisors = new Map<string, AgentSupervisor>();
  /** In-flight creates by client token, so concurrent retries of one create share its result. */
  const creating = new Map<string, Promise<LocalInstance>>();
  const terminating = new Map<string, Promise<LocalInstance>>();
  let stopping = false;

  const pathsOf = (id: string): InstancePaths => {
    const instanceDir = path.join(stateDir, "instances", id);
    return {
      instanceDir,
      userDataFile: path.join(instanceDir, "user-data.json"),
      logFile: path.join(instanceDir, "agent.log"),
    };
  };

  const persist = () =>
    store.save().catch((error: unknown) => log(`failed to persist instances: ${(error as Error).message}`));

  function supervise(instance: LocalInstance): void {
    const paths = pathsOf(instance.instance_id);
    const supervisor = new AgentSupervisor(
      () => {
        const spec = agentCommand(instance, paths);
        return { ...spec, env: { ...spec.env, [INSTANCE_MARKER_ENV]: instance.instance_id } };
      },
      paths.logFile,
      backoff,
      {
        spawned(pid) {
          instance.pid = pid;
          instance.state = "running";
          log(`${instance.instance_id} (${instance.name}): agent started, pid ${pid}, ${instance.hostname}`);
          void persist();
        },
        exited(reason, restartInMs) {
          instance.pid = null;
          instance.state_reason = `${reason}; restarting in ${restartInMs} ms`;
          log(`${instance.instance_id} (${instance.name}): ${instance.state_reason}`);
          void persist();
        },
      },
    );
    supervisors.set(instance.instance_id, supervisor);
    supervisor.start();
  }

  async function create(input: v.InferOutput<typeof CreateInstanceRequest>): Promise<LocalInstance> {
    const [httpPort, httpsPort] = await allocatePorts(2, store.portsInUse());
    const instance: LocalInstance = {
      instance_id: newInstanceId(),
      client_token: input.client_token,
      name: input.name,
      state: "pending",
      hostname: `127.0.0.1:${httpPort}`,
      http_port: httpPort!,
      https_port: httpsPort!,
      pid: null,
      tags: input.tags,
      created_at: new Date().toISOString(),
      terminated_at: null,
      state_reason: null,
    };
    const paths = pathsOf(instance.instance_id);
    await mkdir(paths.instanceDir, { recursive: true, mode: 0o700 });
    // User-data holds the one-time bootstrap secret: readable by the host's owner only.
    await writeFile(paths.userDataFile, input.user_data, { mode: 0o600 });
    store.put(instance);
    await store.save();
    supervise(instance);
    await store.save();
    return instance;
  }

  /**
   * The host's proxy runs in a process group of its own, outliving agent restarts (docs/gateway-host.md):
   * stopping the host stops it too, found by the pid file it keeps in the agent's state directory.
   */
  async function stopProxy(instance: LocalInstance): Promise<void> {
    const pidFile = path.join(pathsOf(instance.instance_id).instanceDir, "proxy.pid");
    const pid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
    if (!pid || !(await isProcessMarked(pid, `${INSTANCE_MARKER_ENV}=${instance.instance_id}`))) return;
    await stopProcessGroup(pid, stopGraceMs);
  }

  async function terminate(instance: LocalInstance): Promise<LocalInstance> {
    const inFlight = creating.get(instance.client_token);
    if (inFlight) await inFlight.catch(() => {});
    const supervisor = supervisors.get(instance.instance_id);
    supervisors.delete(instance.instance_id);
    await supervisor?.stop(stopGraceMs);
    await stopProxy(instance);
    instance.state = "terminated";
    instance.pid = null;
    instance.terminated_at = new Date().toISOString();
    await store.save();
    log(`${instance.instance_id} (${instance.name}): terminated`);
    return instance;
  }

  function findInstance(id: string): LocalInstance {
    const instance = INSTANCE_ID_PATTERN.test(id) ? store.get(id) : undefined;
    if (!instance) throw new DaemonHttpError(404, "instance_not_found", `instance ${id} does not exist`);
    return instance;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://daemon");
    const method = req.method ?? "GET";
    if (url.pathname === "/v1/health") {
      if (method !== "GET") throw methodNotAllowed(method);
      return sendJson(res, 200, { ok: true });
    }
    if (!isAuthorized(req.headers.authorization)) {
      res.setHeader("www-authenticate", 'Bearer realm="gateplane-local-host"');
      throw new DaemonHttpError(401, "unauthorized", "missing or wrong bearer token");
    }
    if (url.pathname === "/v1/instances") {
      if (method === "GET") {
        const clientToken = url.searchParams.get("client_token");
        const instances = store.all().filter((i) => clientToken === null || i.client_token === clientToken);
        return sendJson(res, 200, { instances });
      }
      if (method === "POST") {
        const parsed = v.safeParse(CreateInstanceRequest, await readJsonBody(req));
        if (!parsed.success) {
          const first = fromValibot(parsed.issues)[0];
          throw new DaemonHttpError(400, "invalid_request", first ? formatIssue(first) : "invalid request");
        }
        const input = parsed.output;
        const existing = store.byClientToken(input.client_token);
        if (existing) return sendJson(res, 200, existing);
        const inFlight = creating.get(input.client_token);
        if (inFlight) return sendJson(res, 200, await inFlight);
        if (stopping) throw new DaemonHttpError(503, "shutting_down", "the daemon is stopping");
        const created = create(input).finally(() => creating.delete(input.client_token));
        creating.set(input.client_token, created);
        return sendJson(res, 201, await created);
      }
      throw methodNotAllowed(method);
    }
    const match = /^\/v1\/instances\/([^/]+)$/.exec(url.pathname);
    if (match) {
      const instance = findInstance(decodeURIComponent(match[1]!));
      if (method === "GET") return sendJson(res, 200, instance);
      if (method === "DELETE") {
        if (instance.state === "terminated") return sendJson(res, 200, instance);
        let pending = terminating.get(instance.instance_id);
        if (!pending) {
          pending = terminate(instance).finally(() => terminating.delete(instance.instance_id));
          terminating.set(instance.instance_id, pending);
        }
        return sendJson(res, 200, await pending);
      }
      throw methodNotAllowed(method);
    }
    throw new DaemonHttpError(404, "not_found", `no route for ${method} ${url.pathname}`);
  }

  // A restarted daemon is a rebooted host: what was running runs again, on the ports it had.
  for (const instance of store.all()) {
    if (instance.state === "terminated") continue;
    if (
      instance.pid !== null &&
      (await isProcessMarked(instance.pid, `${INSTANCE_MARKER_ENV}=${instance.instance_id}`))
    ) {
      // Left behind by a daemon that crashed; it holds the host's ports.
      await stopProcessGroup(instance.pid, stopGraceMs);
      log(
        `${instance.instance_id} (${instance.name}): stopped the agent a previous run left running (pid ${instance.pid})`,
      );
    }
    instance.pid = null;
    supervise(instance);
  }
  await store.save();

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof DaemonHttpError) return sendError(res, error.status, error.code, error.message);
      log(`internal error on ${req.method} ${req.url}: ${(error as Error).stack ?? String(error)}`);
      if (!res.headersSent) sendError(res, 500, "internal_error", (error as Error).message ?? "internal error");
      else res.destroy();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port: options.port ?? 0 }, () => resolve());
    });
  } catch (error) {
    await Promise.all([...supervisors.values()].map((s) => s.stop(stopGraceMs)));
    throw error;
  }
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  log(`local host daemon listening on http://127.0.0.1:${port} (state in ${stateDir})`);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      if (stopping) return;
      stopping = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await Promise.allSettled([...creating.values(), ...terminating.values()]);
      await Promise.all([...supervisors.values()].map((s) => s.stop(stopGraceMs)));
      supervisors.clear();
      await Promise.all(store.all().map((instance) => stopProxy(instance)));
      await closed;
      await store.flush();
    },
  };
}

function methodNotAllowed(method: string): DaemonHttpError {
  return new DaemonHttpError(405, "method_not_allowed", `method ${method} is not allowed here`);
}
