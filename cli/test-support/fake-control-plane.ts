/**
 * @module
 * An in-memory stand-in for the control plane's gateway endpoints, for the CLI's unit tests only
 * (the real Worker is exercised end to end elsewhere). Provisioning advances one step per GET of
 * the gateway, and deletion completes after `deleteAfterPolls` GETs, so tests drive time by polling.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ApiErrorBody, Gateway, GatewayPlan, GatewayReplica } from "../../schema/api.ts";
import {
  diffConfigurations,
  type GatewayConfiguration,
  isInPlace,
  parseGatewayConfiguration,
} from "../../schema/gateway.ts";
import { formatIssue, ValidationError } from "../../schema/issues.ts";

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class FakeControlPlane {
  readonly token = "test-token";
  readonly project = "main";
  user = "alice";
  /** Plans without `user`, as a server might that leaves it to `GET /me`. */
  planOmitsUser = false;
  readonly gateways = new Map<string, Gateway>();
  readonly requests: RecordedRequest[] = [];
  /** Gateways created from now on fail instead of reaching running. */
  failProvisioning: string | null = null;
  /** GETs of a deleted gateway that still find it (deleting hosts takes a while). */
  deleteAfterPolls = 2;
  /** Called on every GET of one gateway, after the state advanced; lets tests act mid-provisioning. */
  onPoll: ((gateway: Gateway | undefined) => void) | null = null;
  /** Called before any request is handled; lets tests change the world between the CLI's calls. */
  onRequest: ((method: string, path: string) => void) | null = null;
  #server: Server | null = null;
  #ids = 0;
  #generated = 0;
  #pollsLeft = new Map<string, number>();
  url = "";

  async start(): Promise<this> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  get env(): Record<string, string> {
    return { GATEPLANE_URL: this.url, GATEPLANE_TOKEN: this.token, GATEPLANE_PROJECT: this.project };
  }

  /** Puts a gateway in place as if applied long ago (running, one replica unless told otherwise). */
  seed(configuration: Partial<GatewayConfiguration> & { name: string }, overrides: Partial<Gateway> = {}): Gateway {
    const conf = parseGatewayConfiguration({ type: "gateway", backend: "aws", region: "eu-west-1", ...configuration });
    const gateway = this.#newGateway(conf, configuration.name);
    gateway.status = "running";
    gateway.replicas = Array.from({ length: conf.replicas }, (_, i) => replica(conf, i, "running"));
    Object.assign(gateway, overrides);
    this.gateways.set(gateway.name, gateway);
    return gateway;
  }

  /** Requests other than the polling GETs, as `METHOD /path`, to assert what the CLI did. */
  calls(): string[] {
    return this.requests.map((r) => `${r.method} ${r.path}`);
  }

  async #handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const method = req.method ?? "GET";
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      return send(res, 400, { error: { code: "invalid_json", message: "request body is not JSON" } });
    }
    this.requests.push({ method, path, body });
    try {
      this.onRequest?.(method, path);
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        throw new HttpError(401, "unauthorized", "invalid or missing API token");
      }
      const [status, result] = this.#route(method, path, body);
      send(res, status, result);
    } catch (e) {
      if (e instanceof HttpError) return send(res, e.status, { error: { code: e.code, message: e.message } });
      if (e instanceof ValidationError) {
        const first = e.issues[0]!;
        return send(res, 400, { error: { code: "invalid", message: formatIssue(first), field: e.field } });
      }
      send(res, 500, { error: { code: "internal", message: String(e) } });
    }
  }

  #route(method: string, path: string, body: unknown): [number, unknown] {
    if (method === "GET" && path === "/api/v1/me") return [200, { user: this.user, global_admin: false }];
    const m = /^\/api\/v1\/projects\/([^/]+)\/gateways(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(path);
    if (!m) throw new HttpError(404, "not_found", `no route for ${method} ${path}`);
    const project = decodeURIComponent(m[1]!);
    if (project !== this.project) throw new HttpError(404, "not_found", `Project ${project} does not exist`);
    const segment = m[2] && decodeURIComponent(m[2]);
    const action = m[3];

    if (method === "GET" && !segment) {
      return [
        200,
        { project, gateways: [...this.gateways.values()].map((g) => this.#advance(g.name)).filter(Boolean) },
      ];
    }
    if (method === "POST" && segment === "plan") return [200, this.#plan(body as { spec: SpecBody })];
    if (method === "POST" && segment === "apply") return [200, this.#apply(body as ApplyBody)];
    if (method === "POST" && segment === "delete") {
      for (const name of (body as { names: string[] }).names) this.#markDeleted(name);
      return [202, {}];
    }
    if (segment && method === "GET" && !action) {
      const gateway = this.#advance(segment);
      this.onPoll?.(gateway);
      if (!gateway) throw new HttpError(404, "not_found", `Gateway ${segment} does not exist`);
      return [200, gateway];
    }
    if (segment && method === "DELETE" && !action) return [202, this.#markDeleted(segment)];
    if (segment && method === "POST" && action === "set-default") {
      const gateway = this.#existing(segment);
      for (const other of this.gateways.values()) other.default = false;
      gateway.default = true;
      return [200, gateway];
    }
    throw new HttpError(405, "method_not_allowed", `${method} ${path} is not supported`);
  }

  #plan({ spec }: { spec: SpecBody }): GatewayPlan {
    const conf = parseGatewayConfiguration(spec.configuration);
    const name = conf.name ?? `gateway-${++this.#generated}`;
    const current = this.gateways.get(name) ?? null;
    if (current?.to_be_deleted) {
      throw new HttpError(409, "being_deleted", `Gateway '${name}' is being deleted. Try again later.`);
    }
    const changes = current ? diffConfigurations(current.configuration, conf) : [];
    return {
      project_name: this.project,
      user: this.planOmitsUser ? "" : this.user,
      spec: { configuration: spec.configuration, configuration_path: spec.configuration_path ?? null },
      effective_spec: { configuration: { ...conf, name }, configuration_path: spec.configuration_path ?? null },
      current_resource: current,
      action: current && isInPlace(changes.map((c) => c.field)) ? "update" : "create",
      changes,
      in_place: current !== null && isInPlace(changes.map((c) => c.field)),
    };
  }

  #apply({ plan, force }: ApplyBody): Gateway {
    const conf = parseGatewayConfiguration(plan.spec.configuration);
    const name = conf.name ?? `gateway-${++this.#generated}`;
    const existing = this.gateways.get(name);
    if (!existing) {
      const gateway = this.#newGateway(conf, name);
      if (conf.default !== false && ![...this.gateways.values()].some((g) => g.default)) gateway.default = true;
      this.gateways.set(name, gateway);
      return gateway;
    }
    if (existing.to_be_deleted) {
      throw new HttpError(409, "being_deleted", `Gateway '${name}' is being deleted. Try again later.`);
    }
    const planned = plan.current_resource;
    const unchanged =
      planned != null &&
      planned.id === existing.id &&
      JSON.stringify(planned.configuration) === JSON.stringify(existing.configuration);
    if (!force && !unchanged) {
      throw new HttpError(
        409,
        "conflict",
        "Failed to apply plan. Resource has been changed. Try again or use force apply.",
      );
    }
    const changes = diffConfigurations(existing.configuration, conf);
    if (!isInPlace(changes.map((c) => c.field))) {
      throw new HttpError(
        409,
        "not_updatable",
        `Gateway '${name}' cannot be updated in-place. Delete it and re-apply.`,
      );
    }
    existing.configuration = { ...conf, name, default: existing.configuration.default };
    existing.wildcard_domain = conf.domain;
    if (conf.default !== null) existing.default = conf.default;
    return existing;
  }

  #newGateway(conf: GatewayConfiguration, name: string): Gateway {
    return {
      id: `gw-${++this.#ids}`,
      name,
      project_name: this.project,
      configuration: { ...conf, name },
      created_at: new Date().toISOString(),
      status: "submitted",
      status_message: null,
      hostname: null,
      wildcard_domain: conf.domain,
      default: conf.default === true,
      to_be_deleted: false,
      backend: conf.backend,
      region: conf.region,
      replicas: [],
    };
  }

  #existing(name: string): Gateway {
    const gateway = this.gateways.get(name);
    if (!gateway) throw new HttpError(404, "not_found", `Gateway ${name} does not exist`);
    return gateway;
  }

  #markDeleted(name: string): Gateway {
    const gateway = this.#existing(name);
    gateway.to_be_deleted = true;
    this.#pollsLeft.set(name, this.deleteAfterPolls);
    return gateway;
  }

  /** One step of the lifecycle per look: submitted → provisioning → running (or failed); deleted → gone. */
  #advance(name: string): Gateway | undefined {
    const gateway = this.gateways.get(name);
    if (!gateway) return undefined;
    if (gateway.to_be_deleted) {
      const left = this.#pollsLeft.get(name) ?? 0;
      if (left <= 0) {
        this.gateways.delete(name);
        return undefined;
      }
      this.#pollsLeft.set(name, left - 1);
      return gateway;
    }
    const conf = gateway.configuration;
    if (gateway.status === "submitted") {
      gateway.status = "provisioning";
      gateway.replicas = Array.from({ length: conf.replicas }, (_, i) => replica(conf, i, "provisioning"));
    } else if (gateway.status === "provisioning") {
      if (this.failProvisioning) {
        gateway.status = "failed";
        gateway.status_message = "Failed to provision gateway replica";
        gateway.replicas = gateway.replicas.map((r) => ({
          ...r,
          status: "terminated",
          status_message: this.failProvisioning,
        }));
      } else {
        gateway.status = "running";
        gateway.replicas = gateway.replicas.map((r) => ({
          ...r,
          status: "running",
          hostname: `10.0.0.${r.replica_num + 1}`,
        }));
      }
    }
    return gateway;
  }
}

interface SpecBody {
  configuration: Record<string, unknown>;
  configuration_path?: string | null;
}

interface ApplyBody {
  plan: { spec: SpecBody; current_resource?: Gateway | null };
  force?: boolean;
}

function replica(conf: GatewayConfiguration, num: number, status: GatewayReplica["status"]): GatewayReplica {
  return {
    replica_num: num,
    hostname: status === "running" ? `10.0.0.${num + 1}` : null,
    backend: conf.backend,
    region: conf.region,
    instance_id: `i-${num}`,
    created_at: new Date().toISOString(),
    status,
    status_message: null,
    agent: null,
  };
}

function send(res: ServerResponse, status: number, body: unknown | ApiErrorBody) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
