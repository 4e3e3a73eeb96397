/**
 * @module
 * An in-memory stand-in for the control plane's gateway and service endpoints, for the CLI's unit
 * tests only (the real Worker is exercised end to end elsewhere). Provisioning advances one step per
 * GET of the gateway, and deletion completes after `deleteAfterPolls` GETs, so tests drive time by
 * polling. Services follow the services API: every change of a service or of its replicas bumps
 * its gateway's configuration version, which the gateway's agents take as `agentState` says.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as v from "valibot";
import { acmeView, ProjectAcmeRequest, type ProjectAcmeSettings } from "../../../schema/acme.ts";
import {
  type ApiErrorBody,
  ApplyRequest,
  type Gateway,
  type GatewayPlan,
  type GatewayReplica,
  PlanRequest,
} from "../../../schema/api.ts";
import { dnsRecords } from "../../../schema/dns.ts";
import { type GatewayConfiguration, parseGatewayConfiguration } from "../../../schema/gateway.ts";
import { busyRefusal } from "../../../schema/gateway-busy.ts";
import { servicesRefusal } from "../../../schema/gateway-deletion.ts";
import { formatPath, parseOrThrow, ValidationError } from "../../../schema/issues.ts";
import {
  type Decision,
  decideGatewayApply,
  decideServiceApply,
  planGateway,
  planService,
  type Refused,
  type ServiceHost,
  serviceGateway,
  serviceHostRefusal,
  serviceHttpsRefusal,
  serviceMoveRefusal,
} from "../../../schema/plan.ts";
import { echoSpec } from "../../../schema/plan-envelope.ts";
import { pdRouting } from "../../../schema/router.ts";
import {
  parseServiceConfiguration,
  pdView,
  ReplicaEndpoint,
  type ServiceConfiguration,
} from "../../../schema/service.ts";
import {
  type ConfigSyncState,
  type GatewayReplicaSync,
  type ReplicaEngine,
  type Service,
  ServiceApplyRequest,
  type ServicePlan,
  ServicePlanRequest,
} from "../../../schema/service-api.ts";
import type { LlmWindows } from "../../../schema/traffic.ts";
import { failureError } from "../../../worker/outcomes.ts";
import { FakeAccounts, FakeApiError } from "./accounts.ts";
import { paged, pageHeaders } from "./paging.ts";
import { FakeTraffic } from "./traffic.ts";
import { FakeWebhooks } from "./webhooks.ts";

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
    readonly field?: string,
  ) {
    super(message);
  }
}

/** The Worker's words when a service names no gateway and the project has no default. */
export { NO_DEFAULT_GATEWAY } from "../../../schema/plan.ts";

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
  readonly services = new Map<string, Service>();
  readonly webhooks = new FakeWebhooks();
  /** The agents' LLM traffic reports (`traffic.ts`). */
  readonly #traffic = new FakeTraffic();
  /** Users, tokens, projects, members, backends' and DNS credentials (`fake-accounts.ts`). */
  readonly accounts = new FakeAccounts(this.project, () => this.user);
  /** How the gateways' agents take each new configuration version. */
  agentState: ConfigSyncState = "in_sync";
  /** The agents' reason when `agentState` is `rejected`. */
  agentError = "upstream llama: invalid replica URL";
  #configVersions = new Map<string, number>();
  #server: Server | null = null;
  #ids = 0;
  #generated = 0;
  #pollsLeft = new Map<string, number>();
  /** Re-creates waiting for their gateway's deletion to finish, by name (as the real object keeps them). */
  #pendingRecreate = new Map<string, GatewayConfiguration>();
  #query = new URLSearchParams();
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
    // Applied long ago: every agent runs the current version.
    for (const r of gateway.replicas) r.config = { ...r.config, applied_version: r.config.desired_version };
    gateway.dns_records = dnsRecords(
      conf.domain,
      gateway.replicas.map((r) => r.hostname),
    );
    Object.assign(gateway, overrides);
    this.gateways.set(gateway.name, gateway);
    return gateway;
  }

  /**
   * Puts a service in place as if applied earlier, on its configured gateway or the default one,
   * with the given replica endpoints registered.
   */
  seedService(
    configuration: Record<string, unknown> & { name: string },
    replicas: { id: string; url: string }[] = [],
  ): Service {
    const conf = parseServiceConfiguration({ type: "service", ...configuration });
    const gateway = this.#resolveGateway(conf);
    // Seeds skip the gateway's standing (tests seed gateways without a domain), not the scheme.
    const https = serviceHttpsRefusal(serviceHost(gateway), conf.https);
    if (https) refused(https);
    const service = this.#createService(conf, gateway);
    for (const r of replicas) service.replicas.push({ ...r, registered_at: service.created_at });
    if (replicas.length > 0) this.#changed(service);
    return service;
  }

  /**
   * What one gateway replica's agent reported of a service's LLM traffic (its `llm` windows): the
   * service's `traffic` shows it as the control plane does, merged once every replica reported.
   */
  reportTraffic(service: string, replicaNum: number, windows: LlmWindows): Service {
    const found = this.#existingService(service);
    this.#traffic.report(found, replicaNum, windows);
    return found;
  }

  /**
   * What the control plane shows of a service replica's engine (the real one merges the agents'
   * reports, `durable-objects/service-stats.ts`); null: no report.
   */
  reportEngine(service: string, replicaId: string, engine: ReplicaEngine | null): Service {
    const found = this.#existingService(service);
    const replica = found.replicas.find((r) => r.id === replicaId);
    if (!replica) throw new Error(`no replica ${replicaId} in ${service}`);
    replica.engine = engine;
    return found;
  }

  /** What the control plane shows of a service replica's health (the worst over the agents' reports); null: none. */
  reportHealth(service: string, replicaId: string, health: Service["replicas"][number]["health"]): Service {
    const found = this.#existingService(service);
    const replica = found.replicas.find((r) => r.id === replicaId);
    if (!replica) throw new Error(`no replica ${replicaId} in ${service}`);
    replica.health = health;
    return found;
  }

  /** Requests other than the polling GETs, as `METHOD /path`, to assert what the CLI did. */
  calls(): string[] {
    return this.requests.map((r) => `${r.method} ${r.path}`);
  }

  async #handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    this.#query = url.searchParams;
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
      const query = new URL(req.url ?? "/", "http://x").searchParams;
      const [status, result] = this.#route(method, path, body, query);
      send(res, status, result, pageHeaders(result, req.url ?? "/"));
    } catch (e) {
      if (e instanceof HttpError || e instanceof FakeApiError) {
        const field = e.field === undefined ? {} : { field: e.field };
        return send(res, e.status, { error: { code: e.code, message: e.message, ...field } });
      }
      if (e instanceof ValidationError) {
        // As the Worker's toApiError: every issue, one per line.
        return send(res, 400, { error: { code: "invalid_field", message: e.message, field: e.field } });
      }
      send(res, 500, { error: { code: "internal", message: String(e) } });
    }
  }

  /** The project's ACME settings as the real control plane keeps them (validated by the same schema). */
  acme: ProjectAcmeSettings | null = null;

  #route(method: string, path: string, body: unknown, query: URLSearchParams): [number, unknown] {
    const account = path.startsWith("/api/v1/")
      ? this.accounts.route(method, path.slice("/api/v1".length), query, body)
      : null;
    if (account) return account;
    const hooks = /^\/api\/v1\/projects\/main(\/webhooks.*)$/.exec(path);
    const hookReply = hooks && this.webhooks.route(method, hooks[1]!, body, query);
    if (hookReply) return hookReply;
    if (path === `/api/v1/projects/${encodeURIComponent(this.project)}/acme`) {
      if (method === "PUT") this.acme = parseOrThrow(ProjectAcmeRequest, body);
      if (method === "DELETE") {
        this.acme = null;
        return [204, undefined];
      }
      return [200, acmeView(this.acme, this.acme ? "2026-01-01T00:00:00.000Z" : null)];
    }
    const service = /^\/api\/v1\/projects\/([^/]+)\/services(?:\/([^/]+))?(?:\/replicas\/([^/]+))?$/.exec(path);
    if (service) {
      const project = decodeURIComponent(service[1]!);
      if (project !== this.project) throw new HttpError(404, "not_found", `Project ${project} does not exist`);
      const name = service[2] && decodeURIComponent(service[2]);
      const replicaId = service[3] && decodeURIComponent(service[3]);
      return this.#routeService(method, path, name, replicaId, body);
    }
    const m = /^\/api\/v1\/projects\/([^/]+)\/gateways(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(path);
    if (!m) throw new HttpError(404, "not_found", `no route for ${method} ${path}`);
    const project = decodeURIComponent(m[1]!);
    if (project !== this.project) throw new HttpError(404, "not_found", `Project ${project} does not exist`);
    const segment = m[2] && decodeURIComponent(m[2]);
    const action = m[3];

    if (method === "GET" && !segment) {
      const all = [...this.gateways.values()].map((g) => this.#advance(g.name)).filter((g) => g !== undefined);
      return [
        200,
        paged(
          all,
          query,
          (g) => g.name,
          "all",
          (page) => ({ project, gateways: page.map(gatewayView) }),
        ),
      ];
    }
    if (method === "POST" && segment === "plan") return [200, this.#plan(parseOrThrow(PlanRequest, body))];
    if (method === "POST" && segment === "apply") return this.#apply(parseOrThrow(ApplyRequest, body));
    if (method === "POST" && segment === "delete") {
      const { names, cascade } = body as { names: string[]; cascade?: boolean };
      // All or nothing, as the real one.
      for (const name of names) this.#refuseLosingServices(this.#existing(name), cascade === true, "delete");
      for (const name of names) this.#markDeleted(name, cascade === true);
      return [202, {}];
    }
    if (segment && method === "GET" && !action) {
      const gateway = this.#advance(segment);
      this.onPoll?.(gateway);
      if (!gateway) throw new HttpError(404, "not_found", `Gateway ${segment} does not exist`);
      return [200, gatewayView(gateway)];
    }
    if (segment && method === "DELETE" && !action) {
      const cascade = this.#query.get("cascade");
      if (cascade !== null && cascade !== "true" && cascade !== "false") {
        throw new HttpError(400, "invalid_request", "cascade: expected true or false", "cascade");
      }
      return [202, this.#markDeleted(segment, cascade === "true")];
    }
    if (segment && method === "POST" && action === "set-default") {
      const gateway = this.#existing(segment);
      for (const other of this.gateways.values()) other.default = false;
      gateway.default = true;
      return [200, gatewayView(gateway)];
    }
    throw new HttpError(405, "method_not_allowed", `${method} ${path} is not supported`);
  }

  /** As the Worker's plan route: the busy rule, then the plan of `schema/plan.ts`. */
  #plan({ spec }: v.InferOutput<typeof PlanRequest>): GatewayPlan {
    const conf = parseGatewayConfiguration(spec.configuration);
    const name = conf.name ?? `gateway-${++this.#generated}`;
    const stored = this.gateways.get(name);
    const current = stored ? gatewayView(stored) : null;
    const busy = current && busyRefusal(current);
    if (busy) refused({ ok: false, error: busy });
    const effective = { ...conf, name };
    return {
      project_name: this.project,
      user: this.planOmitsUser ? "" : this.user,
      spec: echoSpec(spec),
      effective_spec: { ...echoSpec(spec), configuration: effective },
      current_resource: current,
      ...planGateway(current?.configuration ?? null, effective),
    };
  }

  /** As the Worker's apply route and the gateway's object: 201 when it creates, 200 otherwise. */
  #apply({ plan, force, recreate, cascade }: v.InferOutput<typeof ApplyRequest>): [number, Gateway] {
    const conf = parseGatewayConfiguration(plan.spec.configuration);
    const name = conf.name ?? `gateway-${++this.#generated}`;
    const existing = this.gateways.get(name);
    if (!existing) {
      const gateway = this.#newGateway(conf, name);
      if (conf.default !== false && ![...this.gateways.values()].some((g) => g.default)) gateway.default = true;
      this.gateways.set(name, gateway);
      return [201, gatewayView(gateway)];
    }
    const decision = decideGatewayApply(existing, {
      configuration: { ...conf, name },
      currentResource: plan.current_resource,
      force,
      recreate,
    });
    if (!decision.ok) refused(decision);
    if (decision.value.kind === "recreate") {
      // Checked as a create is (by the caller); the old gateway goes, then the new one is created.
      this.#refuseLosingServices(existing, cascade, "re-create");
      this.#markDeleted(name, true);
      this.#pendingRecreate.set(name, { ...conf, name });
      return [200, gatewayView(existing)];
    }
    existing.configuration = { ...conf, name, default: existing.configuration.default };
    existing.wildcard_domain = conf.domain;
    existing.dns_records = dnsRecords(
      conf.domain,
      existing.replicas.map((r) => r.hostname),
    );
    if (conf.default !== null) existing.default = conf.default;
    return [200, gatewayView(existing)];
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
      dns_records: [],
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

  #markDeleted(name: string, cascade: boolean): Gateway {
    const gateway = this.#existing(name);
    if (gateway.to_be_deleted) {
      // A deletion cancels a pending re-create.
      this.#pendingRecreate.delete(name);
      return gateway;
    }
    this.#refuseLosingServices(gateway, cascade, "delete");
    gateway.to_be_deleted = true;
    this.#pollsLeft.set(name, this.deleteAfterPolls);
    return gateway;
  }

  #refuseLosingServices(gateway: Gateway, cascade: boolean, action: "delete" | "re-create"): void {
    if (cascade || gateway.to_be_deleted) return;
    const names = [...this.services.values()].filter((s) => s.gateway === gateway.name).map((s) => s.name);
    if (names.length === 0) return;
    const refusal = servicesRefusal(gateway.name, names.sort(), action);
    throw new HttpError(refusal.status, refusal.code, refusal.message, refusal.field);
  }

  #routeService(
    method: string,
    path: string,
    name: string | undefined,
    replicaId: string | undefined,
    body: unknown,
  ): [number, unknown] {
    if (method === "GET" && !name) {
      const all = [...this.services.values()];
      return [
        200,
        paged(
          all,
          this.#query,
          (s) => s.name,
          "all",
          (services) => ({ project: this.project, services }),
        ),
      ];
    }
    if (method === "POST" && name === "plan" && !replicaId) {
      return [200, this.#planService(parseOrThrow(ServicePlanRequest, body))];
    }
    if (method === "POST" && name === "apply" && !replicaId) {
      return this.#applyService(parseOrThrow(ServiceApplyRequest, body));
    }
    if (!name) throw new HttpError(405, "method_not_allowed", `${method} ${path} is not supported`);
    const service = this.#existingService(name);
    if (method === "GET" && !replicaId) return [200, service];
    if (method === "DELETE" && !replicaId) {
      this.services.delete(name);
      this.#traffic.forget(name);
      this.#bump(service.gateway);
      return [200, service];
    }
    if (method === "PUT" && replicaId) {
      const put = body as { url?: unknown; role?: unknown; bootstrap_port?: unknown } | undefined;
      const endpoint = v.safeParse(ReplicaEndpoint, {
        id: replicaId,
        url: put?.url,
        role: put?.role,
        bootstrap_port: put?.bootstrap_port,
      });
      if (!endpoint.success) {
        const issue = endpoint.issues[0];
        const field = formatPath((issue.path ?? []).map((p) => p.key as string));
        throw new HttpError(400, "invalid", `${field}: ${issue.message}`, field);
      }
      const { url, role, bootstrap_port } = endpoint.output;
      const existing = service.replicas.find((r) => r.id === replicaId);
      if (
        existing &&
        existing.url === url &&
        (existing.role ?? null) === role &&
        (existing.bootstrap_port ?? null) === bootstrap_port
      ) {
        return [200, service];
      }
      if (existing) Object.assign(existing, { url, role, bootstrap_port });
      else service.replicas.push({ id: replicaId, url, role, bootstrap_port, registered_at: new Date().toISOString() });
      this.#changed(service);
      return [existing ? 200 : 201, service];
    }
    if (method === "DELETE" && replicaId) {
      if (!service.replicas.some((r) => r.id === replicaId)) {
        throw new HttpError(404, "not_found", `Replica ${replicaId} of service ${name} does not exist`);
      }
      service.replicas = service.replicas.filter((r) => r.id !== replicaId);
      this.#changed(service);
      return [200, service];
    }
    throw new HttpError(405, "method_not_allowed", `${method} ${path} is not supported`);
  }

  /** As the Worker's service plan route (`schema/plan.ts`). */
  #planService({ spec }: v.InferOutput<typeof ServicePlanRequest>): ServicePlan {
    const conf = parseServiceConfiguration(spec.configuration);
    const gateway = this.#resolveGateway(conf);
    const current = this.services.get(conf.name) ?? null;
    return {
      project_name: this.project,
      user: this.planOmitsUser ? "" : this.user,
      spec: echoSpec(spec),
      effective_spec: { ...echoSpec(spec), configuration: conf },
      current_resource: current,
      ...planService(current, conf, gateway.name),
    };
  }

  /** As the Worker's service apply route and the gateway's object: 201 when it creates, 200 otherwise. */
  #applyService({ plan, force }: v.InferOutput<typeof ServiceApplyRequest>): [number, Service] {
    const conf = parseServiceConfiguration(plan.spec.configuration);
    const gateway = this.#resolveGateway(conf);
    const existing = this.services.get(conf.name);
    const move = serviceMoveRefusal(conf.name, existing?.gateway ?? null, gateway.name);
    if (move) refused(move);
    this.#refuseServiceHost(gateway, conf);
    const decision = decideServiceApply(existing ?? null, {
      configuration: conf,
      currentResource: plan.current_resource,
      force,
    });
    if (!decision.ok) refused(decision);
    if (!existing) return [201, this.#createService(conf, gateway)];
    if (decision.value === "unchanged") return [200, existing];
    existing.configuration = conf;
    Object.assign(existing, this.#addresses(conf, gateway));
    this.#changed(existing);
    return [200, existing];
  }

  /** The configured gateway, else the project's live default, refused as the Worker refuses them. */
  #resolveGateway(conf: ServiceConfiguration): Gateway {
    const found = conf.gateway
      ? this.gateways.get(conf.gateway)
      : [...this.gateways.values()].find((g) => g.default && !g.to_be_deleted);
    const name = decided(
      serviceGateway(conf.gateway, found ? { name: found.name, gone: found.to_be_deleted } : null, this.project),
    );
    return this.gateways.get(name)!;
  }

  /** As the gateway's object: a gateway that takes no services, or a scheme it cannot serve. */
  #refuseServiceHost(gateway: Gateway, conf: ServiceConfiguration): void {
    const host = serviceHost(gateway);
    const refusal = serviceHostRefusal(host) ?? serviceHttpsRefusal(host, conf.https);
    if (refusal) refused(refusal);
  }

  #createService(conf: ServiceConfiguration, gateway: Gateway): Service {
    const now = new Date().toISOString();
    const service: Service = {
      id: `svc-${++this.#ids}`,
      name: conf.name,
      project_name: this.project,
      gateway: gateway.name,
      configuration: conf,
      ...this.#addresses(conf, gateway),
      created_at: now,
      updated_at: now,
      replicas: [],
      config_version: 0,
      gateway_replicas: [],
      stats: null,
      traffic: null,
      // As the real one before its first evaluation (the fake has no autoscaler).
      scaling: conf.scaling
        ? { desired_replicas: null, current_replicas: 0, reason: null, last_change_at: null, last_evaluated_at: null }
        : null,
    };
    this.services.set(service.name, service);
    this.#changed(service);
    return service;
  }

  /** `<name>.<domain>`, on the gateway's port when its hosts have one (local hosts do). */
  #addresses(conf: ServiceConfiguration, gateway: Gateway): Pick<Service, "url" | "model_url"> {
    const scheme =
      conf.https === false || (conf.https === "auto" && !gateway.configuration.certificate) ? "http" : "https";
    const domain = gateway.wildcard_domain ?? gateway.configuration.domain ?? "example.com";
    const port = /:\d+$/.exec(gateway.replicas[0]?.hostname ?? "")?.[0] ?? "";
    return {
      url: `${scheme}://${conf.name}.${domain}${port}`,
      model_url: conf.model ? `${scheme}://gateway.${domain}${port}${conf.model.prefix}` : null,
    };
  }

  /** A new configuration version of the service's gateway, taken by its agents as `agentState` says. */
  #changed(service: Service): void {
    const version = this.#bump(service.gateway);
    const gateway = this.gateways.get(service.gateway);
    service.updated_at = new Date().toISOString();
    service.config_version = version;
    // The view's `pd`, computed as the real control plane's service view does.
    service.pd = pdView(
      service.name,
      pdRouting(service.configuration.router ?? gateway?.configuration.router ?? null) !== null,
      service.replicas,
    );
    // The gateway's replicas take the version as its services' do (`agentState`).
    for (const r of gateway?.replicas ?? []) {
      r.config = {
        ...r.config,
        desired_version: version,
        applied_version: this.agentState === "in_sync" ? version : version > 1 ? version - 1 : null,
        error: this.agentState === "rejected" ? this.agentError : null,
      };
    }
    service.gateway_replicas = (gateway?.replicas ?? []).map(
      (r): GatewayReplicaSync => ({
        replica_num: r.replica_num,
        applied_version: this.agentState === "in_sync" ? version : version > 1 ? version - 1 : null,
        state: this.agentState,
        error: this.agentState === "rejected" ? this.agentError : null,
        traffic: null,
      }),
    );
    this.#traffic.show(service);
  }

  #bump(gateway: string): number {
    const version = (this.#configVersions.get(gateway) ?? 0) + 1;
    this.#configVersions.set(gateway, version);
    return version;
  }

  #existingService(name: string): Service {
    const service = this.services.get(name);
    if (!service) throw new HttpError(404, "not_found", `Service ${name} does not exist`);
    return service;
  }

  /** One step of the lifecycle per look: submitted → provisioning → running (or failed); deleted → gone. */
  #advance(name: string): Gateway | undefined {
    const gateway = this.gateways.get(name);
    if (!gateway) return undefined;
    if (gateway.to_be_deleted) {
      const left = this.#pollsLeft.get(name) ?? 0;
      if (left <= 0) {
        this.gateways.delete(name);
        for (const s of [...this.services.values()]) {
          if (s.gateway !== name) continue;
          this.services.delete(s.name);
          this.#traffic.forget(s.name);
        }
        const next = this.#pendingRecreate.get(name);
        this.#pendingRecreate.delete(name);
        if (!next) return undefined;
        const created = this.#newGateway(next, name);
        created.default = gateway.default;
        this.gateways.set(name, created);
        return created;
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
          hostname: hostnameOf(conf, r.replica_num),
        }));
        gateway.dns_records = dnsRecords(
          conf.domain,
          gateway.replicas.map((r) => r.hostname),
        );
      }
    }
    return gateway;
  }
}

/** What the service rules need of a gateway (the object derives `domain` the same way, interpolated). */
const serviceHost = (gateway: Gateway): ServiceHost => ({
  name: gateway.name,
  status: gateway.status,
  to_be_deleted: gateway.to_be_deleted,
  domain: gateway.configuration.domain,
  certificate: gateway.configuration.certificate,
});

/** Answers a refusal of `schema/plan.ts` as the Worker renders it (its status from the Worker's own mapping). */
function refused({ error }: Refused): never {
  throw new HttpError(failureError(error).status, error.code, error.message, error.field);
}

const decided = <T>(decision: Decision<T>): T => (decision.ok ? decision.value : refused(decision));

/** Where a replica's host listens: local hosts are processes on loopback, each on its own port. */
const hostnameOf = (conf: GatewayConfiguration, num: number) =>
  conf.backend === "local" ? `127.0.0.1:${45531 + num}` : `10.0.0.${num + 1}`;

function replica(conf: GatewayConfiguration, num: number, status: GatewayReplica["status"]): GatewayReplica {
  return {
    replica_num: num,
    hostname: status === "running" ? hostnameOf(conf, num) : null,
    backend: conf.backend,
    region: conf.region,
    instance_id: `i-${num}`,
    created_at: new Date().toISOString(),
    status,
    status_message: null,
    config: { desired_version: 1, applied_version: null, error: null, rejected_services: [] },
    agent: null,
  };
}

/**
 * As the Worker's view (`durable-objects/state.ts`): `hostname` is the load balancer's (what the
 * stored gateway holds), else the one active replica's address.
 */
function gatewayView(gateway: Gateway): Gateway {
  const active = gateway.replicas.filter((r) => r.status !== "terminating" && r.status !== "terminated");
  // `default` is a project fact the Worker fills in (`withDefault`): the live flag, false once deleting.
  const isDefault = gateway.default && !gateway.to_be_deleted;
  return {
    ...gateway,
    default: isDefault,
    configuration: { ...gateway.configuration, default: isDefault },
    hostname: gateway.hostname ?? (active.length === 1 ? active[0]!.hostname : null),
  };
}

function send(res: ServerResponse, status: number, body: unknown | ApiErrorBody, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}
