/**
 * @module
 * `GatewayObject`: one Durable Object per gateway (`idFromName(projectId + "/" + name)`), the only
 * writer of that gateway's state. RPC methods change desired state and return at once; the alarm
 * runs the reconciler that provisions, retries, scales and deletes. Every change is written
 * through to the D1 catalog; a failed write-through is retried by the alarm.
 */
import { DurableObject } from "cloudflare:workers";
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import * as v from "valibot";
import type { ProjectAcmeSettings } from "../schema/acme.ts";
import {
  AgentMessage,
  type CertificateState,
  CLOSE_CODES,
  MAX_NACK_ERROR,
  type RouterReport,
  type ServerMessage,
  type ServiceRejection,
} from "../schema/agent-protocol.ts";
import type { Gateway } from "../schema/api.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import { diffConfigurations, type GatewayConfiguration } from "../schema/gateway.ts";
import { servicesRefusal } from "../schema/gateway-deletion.ts";
import { sameJson } from "../schema/json.ts";
import {
  decideGatewayApply,
  decideServiceApply,
  type ServiceHost,
  serviceHostRefusal,
  serviceHttpsRefusal,
} from "../schema/plan.ts";
import type { PlannedResource } from "../schema/plan-envelope.ts";
import type { ServiceConfiguration } from "../schema/service.ts";
import type { Service } from "../schema/service-api.ts";
import { randomBase62, secretsEqual } from "../worker/crypto.ts";
import { serviceTokens } from "../worker/db/schema.ts";
import type { Env } from "../worker/env.ts";
import type { ErrorInfo, Outcome } from "../worker/errors.ts";
import { backendFor } from "./backends/index.ts";
import { removeFromCatalog, syncCatalog } from "./catalog-sync.ts";
import { certificateEvents } from "./certificate-report.ts";
import { DnsAutomation } from "./dns/dns-sync.ts";
import { documentAcme, openProjectAcme, ProjectAcmeStore, readProjectAcmeRow } from "./project-acme.ts";
import { reconcile, setReplicaStatus, settleGatewayStatus } from "./reconciler.ts";
import { evaluateAll, evaluateService, requestWhileZero } from "./scaling.ts";
import { buildConfigDocument, gatewayDomain, type ServiceRow, ServiceStore, serviceView } from "./services.ts";
import { type DefaultIntent, type GatewayRow, GatewayState, type ReplicaRow } from "./state.ts";
import { pokeDispatchers } from "./webhook-deliveries.ts";

const DNS_RETRY_MS = 30_000;
const DNS_RELEASE_ATTEMPTS = 5;

export interface ApplyInput {
  projectId: string;
  projectName: string;
  /** Validated, with defaults applied and `name` set. */
  configuration: GatewayConfiguration & { name: string };
  configurationPath: string | null;
  /** What the client planned against; `null` when it planned a create. */
  currentResource: PlannedResource;
  force: boolean;
  /** Re-create an existing gateway: delete it, then create this configuration (see `recreate`). */
  recreate: boolean;
  /** The deletion (of a re-create) may take the gateway's services with it. */
  cascade: boolean;
  actor: string;
  controlPlaneUrl: string;
}

export interface AgentRegistration {
  gatewayId: string;
  replicaNum: number;
  secret: string;
  version: string | null;
}

export interface AgentIdentity {
  gatewayId: string;
  replicaId: string;
  replicaNum: number;
}

export interface ServiceApplyInput {
  configuration: ServiceConfiguration;
  configurationPath: string | null;
  currentResource: PlannedResource;
  force: boolean;
  actor: string;
}

/** What a hibernated agent socket remembers about itself. */
/** An agent's health (HTTP heartbeat or WebSocket `health`); `routers` only from agents that know them. */
interface HealthReport {
  version: string | null;
  status: string;
  message: string | null;
  routers?: RouterReport[];
}

interface SocketAttachment {
  replicaId: string;
  replicaNum: number;
  /** Token expiry (seconds since the epoch): the socket is closed with 4001 once it passes. */
  exp: number;
}

const SYNC_RETRY_MAX_MS = 5 * 60_000;

const fail = (status: ErrorInfo["status"], code: string, message: string, field?: string) =>
  ({ ok: false, error: { status, code, message, ...(field ? { field } : {}) } }) as const;
const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
/** What the service rules (`schema/plan.ts`) need of the gateway. */
const serviceHost = (g: GatewayRow): ServiceHost => ({
  name: g.name,
  status: g.status,
  to_be_deleted: g.to_be_deleted,
  domain: gatewayDomain(g),
  certificate: g.configuration.certificate,
});

export class GatewayObject extends DurableObject<Env> {
  private readonly state: GatewayState;
  private readonly services: ServiceStore;
  private readonly acmeStore: ProjectAcmeStore;
  /** The project's ACME settings, opened from the sealed copy when the object wakes. */
  private projectAcme: ProjectAcmeSettings | null = null;
  private readonly dns: DnsAutomation;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.state = new GatewayState(ctx.storage.sql);
    this.services = new ServiceStore(ctx.storage.sql);
    this.acmeStore = new ProjectAcmeStore(ctx.storage.sql);
    this.dns = new DnsAutomation(ctx.storage.sql, env, (message) => this.state.event(message));
    // Keep-alive pings are answered without waking a hibernated object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
    ctx.blockConcurrencyWhile(async () => {
      this.migrateStorage();
      const g = this.state.gateway();
      if (g) this.projectAcme = await openProjectAcme(env, g.project_id, this.acmeStore.get());
    });
  }

  /**
   * Creates every table of the object, in one place: when it wakes, and after a deletion wiped its
   * storage (the object lives on, and the name can be used for a new gateway at once).
   */
  private migrateStorage(): void {
    this.state.migrate();
    this.acmeStore.migrate();
    this.dns.migrate();
  }

  /** The gateway as the API shows it (without `default`, which lives in D1), or `null`. */
  async describe(): Promise<Gateway | null> {
    return this.state.snapshot();
  }

  async apply(input: ApplyInput): Promise<Outcome<{ gateway: Gateway; created: boolean }>> {
    const current = this.state.gateway();
    const next = input.configuration;
    if (!current) return this.create(input);
    const name = current.name;
    if (current.project_id !== input.projectId) {
      return fail(409, "conflict", `Gateway ${name} belongs to another project`);
    }
    const decision = decideGatewayApply(current, input);
    if (!decision.ok) return decision;
    if (decision.value.kind === "recreate") return this.recreate(current, input);
    const changes = decision.value.changes;
    const fields = changes.map((c) => c.field);
    if (changes.length > 0) {
      const intent: DefaultIntent | null =
        next.default === true ? "set" : next.default === false ? "unset" : current.default_intent;
      const replicasChanged = fields.includes("replicas");
      // Hosts are derived from the domain: agents need a new document when it changes.
      const domainChanged = fields.includes("domain");
      this.state.updateGateway({
        configuration: { ...next, name, default: next.default ?? current.configuration.default },
        configuration_path: input.configurationPath ?? current.configuration_path,
        last_update_at: Date.now(),
        default_intent: intent,
        ...(replicasChanged ? { scale_attempt: 0, last_scale_attempt_at: null } : {}),
        ...(domainChanged ? { config_version: current.config_version + 1 } : {}),
      });
      this.state.event(`Gateway updated. Changed fields: ${fields.join(", ")}`, input.actor);
      if (domainChanged) this.broadcastConfig();
      await this.kick();
    }
    await this.flush();
    return ok({ gateway: this.state.snapshot()!, created: false });
  }

  private async create(input: ApplyInput): Promise<Outcome<{ gateway: Gateway; created: boolean }>> {
    const now = Date.now();
    const config = input.configuration;
    this.state.insertGateway({
      id: crypto.randomUUID(),
      project_id: input.projectId,
      project_name: input.projectName,
      name: config.name,
      configuration: config,
      configuration_path: input.configurationPath,
      status: "submitted",
      status_message: null,
      created_at: new Date(now).toISOString(),
      last_update_at: now,
      to_be_deleted: false,
      control_plane_url: input.controlPlaneUrl,
      hostname: null,
      backend_data: null,
      scale_attempt: 0,
      last_scale_attempt_at: null,
      default_intent: config.default === true ? "set" : config.default === false ? null : "if_none",
    });
    this.state.event("Gateway created. Status: SUBMITTED", input.actor, {
      type: "gateway.status",
      data: { from: null, to: "submitted", message: null },
    });
    await this.refreshAuthTokens();
    await this.refreshAcme();
    await this.kick();
    await this.flush();
    return ok({ gateway: this.state.snapshot()!, created: true });
  }

  /**
   * A re-create, decided here before anything is destroyed: the configuration was validated and
   * the backend checked as for a create (by the Worker), the plan is current, and no service goes
   * unless allowed. Then the gateway is marked for deletion with the create to run once it is gone
   * (in the alarm, on this same object): the old replicas are terminated with the old
   * configuration's backend, and the new ones provisioned with the new. Nothing can refuse the
   * create afterwards: it only records the new gateway.
   */
  private async recreate(
    current: GatewayRow,
    input: ApplyInput,
  ): Promise<Outcome<{ gateway: Gateway; created: boolean }>> {
    const refusal = this.refuseLosingServices(current, input.cascade, "re-create");
    if (refusal) return refusal;
    const next: ApplyInput = { ...input, recreate: false, cascade: false, currentResource: null, force: false };
    const fields = diffConfigurations(current.configuration, input.configuration).map((c) => c.field);
    this.state.updateGateway({ to_be_deleted: true, default_intent: null, recreate: JSON.stringify(next) });
    this.state.event(
      `Gateway marked for re-creation${fields.length > 0 ? `. Changed fields: ${fields.join(", ")}` : ""}`,
      input.actor,
    );
    await this.kick();
    await this.flush();
    return ok({ gateway: this.state.snapshot()!, created: false });
  }

  /** The gateway's services, by name (a deletion takes them with it). */
  async serviceNames(): Promise<string[]> {
    return this.services.list().map((s) => s.name);
  }

  /** Refuses to delete (or re-create) a gateway that still has services, unless `cascade`. */
  private refuseLosingServices(g: GatewayRow, cascade: boolean, action: "delete" | "re-create") {
    const names = this.services.list().map((s) => s.name);
    if (cascade || names.length === 0) return null;
    const e = servicesRefusal(g.name, names, action);
    return fail(409, e.code, e.message, e.field);
  }

  /**
   * Marks the gateway for deletion; replicas are terminated and the row removed asynchronously.
   * Its services (and their replica registrations) go with it only when `cascade` says so.
   */
  async markForDeletion(actor: string, cascade = false): Promise<Outcome<Gateway>> {
    const g = this.state.gateway();
    if (!g) return fail(404, "not_found", "Gateway does not exist");
    if (!g.to_be_deleted) {
      const refusal = this.refuseLosingServices(g, cascade, "delete");
      if (refusal) return refusal;
      const names = this.services.list().map((s) => s.name);
      this.state.updateGateway({ to_be_deleted: true, default_intent: null });
      this.state.event(
        `Gateway marked for deletion${names.length > 0 ? ` with its services: ${names.join(", ")}` : ""}`,
        actor,
      );
      await this.kick();
      await this.flush();
    } else if (g.recreate) {
      // Deleting a gateway that waits to be re-created: it stays deleted.
      this.state.updateGateway({ recreate: null });
      this.state.event("Gateway re-creation cancelled: the gateway is deleted", actor);
      await this.flush();
    }
    return ok(this.state.snapshot()!);
  }

  /** Exchanges a replica's one-time bootstrap secret for its identity (the Worker then signs a JWT). */
  async registerAgent(input: AgentRegistration): Promise<Outcome<AgentIdentity>> {
    const denied = fail(401, "invalid_bootstrap", "invalid or already used bootstrap secret");
    const g = this.state.gateway();
    if (!g || g.id !== input.gatewayId || g.to_be_deleted) return denied;
    const replica = this.state
      .replicas()
      .find(
        (r) =>
          r.replica_num === input.replicaNum &&
          (r.status === "submitted" || r.status === "provisioning") &&
          r.bootstrap_secret !== null,
      );
    if (!replica?.bootstrap_secret || !(await secretsEqual(input.secret, replica.bootstrap_secret))) return denied;
    const now = new Date().toISOString();
    // Single use: the secret is forgotten in the same write that records the registration.
    this.state.updateReplica(replica.id, {
      bootstrap_secret: null,
      agent_registered_at: now,
      agent_last_seen_at: now,
      agent_version: input.version,
    });
    this.state.event(`Gateway replica ${replica.replica_num} agent registered`);
    if (replica.status === "provisioning") {
      setReplicaStatus(this.state, replica, "running", null);
      settleGatewayStatus(this.state);
    }
    await this.kick();
    await this.flush();
    return ok({ gatewayId: g.id, replicaId: replica.id, replicaNum: replica.replica_num });
  }

  /** Confirms a token's replica is still part of this gateway (used for heartbeats and refresh). */
  async agentSeen(identity: AgentIdentity, report: HealthReport | null): Promise<Outcome<AgentIdentity>> {
    const g = this.state.gateway();
    const r = this.state.replica(identity.replicaId);
    if (!g || g.id !== identity.gatewayId || !r || r.status === "terminated" || r.status === "terminating") {
      return fail(401, "unauthorized", "this gateway replica is no longer active");
    }
    if (report) await this.recordHealth(r, report);
    return ok({ gatewayId: g.id, replicaId: r.id, replicaNum: r.replica_num });
  }

  /** An agent's health report (HTTP heartbeat or WebSocket): telemetry, plus the replica's message. */
  private async recordHealth(r: ReplicaRow, report: HealthReport) {
    this.state.updateReplica(
      r.id,
      { agent_last_seen_at: new Date().toISOString(), ...(report.version ? { agent_version: report.version } : {}) },
      { bump: false },
    );
    // Older agents say nothing about routers: what they last said (nothing) stands.
    const routers = report.routers ? JSON.stringify(report.routers) : null;
    if (routers !== null && routers !== r.routers) {
      this.state.updateReplica(r.id, { routers });
      await this.flush();
    }
    const message = report.status === "healthy" ? null : (report.message ?? `agent reports ${report.status}`);
    if (r.status === "running" && r.status_message !== message) {
      this.state.updateReplica(r.id, { status_message: message });
      await this.flush();
    }
  }

  // ---- services -------------------------------------------------------------------------

  async listServices(): Promise<Service[]> {
    const g = this.state.gateway();
    if (!g) return [];
    const replicas = this.state.replicas();
    return this.services.list().map((s) => serviceView(g, s, this.services, replicas));
  }

  async getService(name: string): Promise<Service | null> {
    const g = this.state.gateway();
    const s = this.services.get(name);
    return g && s ? serviceView(g, s, this.services, this.state.replicas()) : null;
  }

  async applyService(input: ServiceApplyInput): Promise<Outcome<{ service: Service; created: boolean }>> {
    const g = this.state.gateway();
    if (!g) return fail(404, "not_found", "Gateway does not exist");
    const refusal = this.refuseServices(g);
    if (refusal) return refusal;
    const c = input.configuration;
    const https = serviceHttpsRefusal(serviceHost(g), c.https);
    if (https) return https;
    const current = this.services.get(c.name);
    const decision = decideServiceApply(current ?? null, input);
    if (!decision.ok) return decision;
    if (current && decision.value === "unchanged") {
      return ok({ service: serviceView(g, current, this.services, this.state.replicas()), created: false });
    }
    const now = new Date().toISOString();
    const version = this.bumpConfig(g);
    const row: ServiceRow = {
      name: c.name,
      id: current?.id ?? crypto.randomUUID(),
      configuration: c,
      configuration_path: input.configurationPath,
      created_at: current?.created_at ?? now,
      updated_at: now,
      config_version: version,
    };
    this.services.upsert(row);
    // A new range or target takes effect now, not at the next stats report.
    evaluateService(this.state, this.services, row, this.runningReplicas(), { now: Date.now(), force: true });
    if (current) this.state.event(`Service ${c.name} updated`, input.actor);
    else
      this.state.event(`Service ${c.name} created`, input.actor, {
        type: "service.registered",
        data: { service: c.name },
      });
    this.broadcastConfig();
    await this.scheduleScaling();
    await this.flush();
    return ok({ service: serviceView(g, row, this.services, this.state.replicas()), created: !current });
  }

  async deleteService(name: string, actor: string): Promise<Outcome<Service>> {
    const g = this.state.gateway();
    const s = this.services.get(name);
    if (!g || !s) return fail(404, "not_found", `Service ${name} does not exist`);
    const view = serviceView(g, s, this.services, this.state.replicas());
    this.bumpConfig(g);
    this.services.remove(name);
    this.state.event(`Service ${name} deleted`, actor, { type: "service.unregistered", data: { service: name } });
    this.broadcastConfig();
    await this.flush();
    return ok(view);
  }

  async putServiceReplica(
    name: string,
    replica: { id: string; url: string },
    actor: string,
  ): Promise<Outcome<{ service: Service; created: boolean }>> {
    const g = this.state.gateway();
    if (!g || !this.services.get(name)) return fail(404, "not_found", `Service ${name} does not exist`);
    const refusal = this.refuseServices(g);
    if (refusal) return refusal;
    const change = this.services.putReplica(name, replica.id, replica.url);
    if (change !== "unchanged") {
      this.services.touch(name, this.bumpConfig(g));
      this.state.event(
        `Service ${name} replica ${replica.id} ${change === "created" ? "registered" : "updated"}`,
        actor,
        { type: "service.replica.registered", data: { service: name, replica_id: replica.id, url: replica.url } },
      );
      this.broadcastConfig();
      await this.flush();
    }
    const view = serviceView(g, this.services.get(name)!, this.services, this.state.replicas());
    return ok({ service: view, created: change === "created" });
  }

  async removeServiceReplica(name: string, id: string, actor: string): Promise<Outcome<Service>> {
    const g = this.state.gateway();
    if (!g || !this.services.get(name)) return fail(404, "not_found", `Service ${name} does not exist`);
    if (!this.services.removeReplica(name, id)) {
      return fail(404, "not_found", `Service ${name} has no replica ${id}`);
    }
    this.services.touch(name, this.bumpConfig(g));
    this.state.event(`Service ${name} replica ${id} unregistered`, actor, {
      type: "service.replica.unregistered",
      data: { service: name, replica_id: id },
    });
    this.broadcastConfig();
    await this.flush();
    return ok(serviceView(g, this.services.get(name)!, this.services, this.state.replicas()));
  }

  /**
   * Re-reads the project's service tokens from D1 (called after one is created or revoked, and when
   * the gateway is created); a change is a new configuration version, which is how revocation
   * reaches the gateways without any per-request call.
   */
  async refreshAuthTokens(): Promise<void> {
    const g = this.state.gateway();
    if (!g || g.to_be_deleted) return;
    const rows = await drizzle(this.env.DB)
      .select({ id: serviceTokens.id, secret_sha256: serviceTokens.secretHash })
      .from(serviceTokens)
      .where(and(eq(serviceTokens.projectId, g.project_id), isNull(serviceTokens.revokedAt)));
    const fresh = this.state.gateway();
    if (!fresh || !this.services.replaceServiceTokens(rows)) return;
    this.bumpConfig(fresh);
    this.broadcastConfig();
    await this.flush();
  }

  /**
   * Re-reads the project's ACME settings from D1 (after `PUT/DELETE /projects/:p/acme`, and when
   * the gateway is created); a change of the document's `acme` is a new configuration version.
   */
  async refreshAcme(): Promise<void> {
    const g = this.state.gateway();
    if (!g || g.to_be_deleted) return;
    const sealed = await readProjectAcmeRow(this.env, g.project_id);
    const settings = await openProjectAcme(this.env, g.project_id, sealed);
    const fresh = this.state.gateway();
    if (!fresh) return;
    const before = documentAcme(fresh, this.projectAcme);
    this.acmeStore.put(sealed);
    this.projectAcme = settings;
    if (sameJson(before, documentAcme(fresh, settings))) return;
    this.bumpConfig(fresh);
    this.broadcastConfig();
    await this.flush();
  }

  private refuseServices(g: GatewayRow) {
    return serviceHostRefusal(serviceHost(g));
  }

  /** Bumps the configuration version (in the same synchronous step as the change it covers). */
  private bumpConfig(g: GatewayRow): number {
    const version = g.config_version + 1;
    this.state.updateGateway({ config_version: version });
    g.config_version = version;
    return version;
  }

  // ---- agents: configuration documents, ACK/NACK, stats ------------------------------------

  private document(): ConfigDocument | null {
    const g = this.state.gateway();
    return g ? buildConfigDocument(g, this.services, documentAcme(g, this.projectAcme)) : null;
  }

  /** The current document for an agent's HTTP pull; `null` when it already has this version. */
  async configFor(identity: AgentIdentity, knownVersion: number | null): Promise<Outcome<ConfigDocument | null>> {
    const seen = await this.agentSeen(identity, null);
    if (!seen.ok) return seen;
    const doc = this.document()!;
    return ok(knownVersion !== null && knownVersion >= doc.version ? null : doc);
  }

  async recordConfigResult(
    identity: AgentIdentity,
    version: number,
    error: string | null,
    rejected: ServiceRejection[] = [],
  ): Promise<Outcome<null>> {
    const seen = await this.agentSeen(identity, null);
    if (!seen.ok) return seen;
    this.applyResult(identity.replicaId, version, error, rejected);
    await this.flush();
    return ok(null);
  }

  /**
   * An ACK (`error` null) may still list services the agent did not apply (kept at their last good
   * state or left out): they are stored with the applied version and shown per replica and per service.
   */
  private applyResult(replicaId: string, version: number, error: string | null, rejected: ServiceRejection[]): void {
    const r = this.state.replica(replicaId);
    const g = this.state.gateway();
    if (!r || !g || version > g.config_version) return;
    if (error === null) {
      if ((r.config_applied_version ?? 0) >= version) return;
      const before = new Set(
        r.config_rejected ? (JSON.parse(r.config_rejected) as ServiceRejection[]).map((x) => x.service) : [],
      );
      this.state.updateReplica(r.id, {
        config_applied_version: version,
        config_error: null,
        config_error_version: null,
        config_rejected: rejected.length > 0 ? JSON.stringify(rejected) : null,
      });
      // One event per newly refused service, not one per version that still refuses it.
      for (const x of rejected.filter((x) => !before.has(x.service))) {
        const what = x.kept ? "keeps serving its last good state" : "does not serve it";
        this.state.event(
          `Gateway replica ${r.replica_num} rejected service ${x.service} in configuration version ${version} and ${what}: ${x.error.slice(0, 500)}`,
        );
      }
    } else {
      this.state.updateReplica(r.id, { config_error: error.slice(0, MAX_NACK_ERROR), config_error_version: version });
      this.state.event(
        `Gateway replica ${r.replica_num} rejected configuration version ${version}: ${error.slice(0, 500)}`,
      );
    }
  }

  /** Upgrade from the Worker (which verified the agent's JWT): a hibernatable socket per replica. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const identity: AgentIdentity = {
      gatewayId: request.headers.get("x-gateplane-gateway-id") ?? "",
      replicaId: request.headers.get("x-gateplane-replica-id") ?? "",
      replicaNum: Number(request.headers.get("x-gateplane-replica-num")),
    };
    const exp = Number(request.headers.get("x-gateplane-token-exp"));
    const seen = await this.agentSeen(identity, null);
    if (!seen.ok) return new Response(seen.error.message, { status: 401 });
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [identity.replicaId]);
    server.serializeAttachment({
      replicaId: identity.replicaId,
      replicaNum: identity.replicaNum,
      exp,
    } satisfies SocketAttachment);
    this.send(server, { type: "config", document: this.document()! });
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const att = ws.deserializeAttachment() as SocketAttachment | null;
    if (!att) return ws.close(CLOSE_CODES.BAD_MESSAGE, "unknown socket");
    if (att.exp * 1000 < Date.now()) return ws.close(CLOSE_CODES.TOKEN_REFUSED, "token expired");
    let parsed: unknown;
    try {
      parsed = JSON.parse(typeof message === "string" ? message : new TextDecoder().decode(message));
    } catch {
      return ws.close(CLOSE_CODES.BAD_MESSAGE, "messages are JSON");
    }
    const result = v.safeParse(AgentMessage, parsed);
    if (!result.success) return ws.close(CLOSE_CODES.BAD_MESSAGE, "unknown message");
    const r = this.state.replica(att.replicaId);
    if (!r || r.status === "terminating" || r.status === "terminated") {
      return ws.close(CLOSE_CODES.REPLICA_GONE, "this gateway replica is no longer active");
    }
    const msg = result.output;
    switch (msg.type) {
      case "ping":
        this.send(ws, { type: "pong" });
        return;
      case "ack":
      case "nack":
        this.applyResult(
          r.id,
          msg.version,
          msg.type === "nack" ? msg.error : null,
          msg.type === "ack" ? msg.rejected : [],
        );
        await this.flush();
        return;
      case "stats": {
        // Received-at on this clock, not the host's: staleness must not depend on the host's clock.
        const now = Date.now();
        this.state.updateReplica(
          r.id,
          { stats: JSON.stringify(msg.services), stats_at: now, agent_last_seen_at: new Date(now).toISOString() },
          { bump: false },
        );
        const changed = this.evaluateScaling(now);
        await this.scheduleScaling();
        if (changed) await this.flush();
        return;
      }
      case "scale_from_zero":
        await this.recordFromZero(msg.service);
        return;
      case "health":
        await this.recordHealth(r, msg);
        return;
      case "certificates": {
        const previous = r.certificates ? (JSON.parse(r.certificates) as CertificateState[]) : [];
        const text = JSON.stringify(msg.hosts);
        if (text === r.certificates) return;
        this.state.updateReplica(r.id, { certificates: text });
        for (const e of certificateEvents(r.replica_num, previous, msg.hosts)) {
          this.state.event(e.message, null, e.typed);
        }
        await this.flush();
        return;
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Complete the close handshake; the agent reconnects by itself.
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  private send(ws: WebSocket, message: ServerMessage): void {
    try {
      ws.send(JSON.stringify(message));
    } catch {
      // A socket that cannot take a frame is gone; the agent reconnects and pulls.
    }
  }

  /** Pushes the current document to every connected agent. */
  private broadcastConfig(): void {
    const doc = this.document();
    if (!doc) return;
    for (const ws of this.ctx.getWebSockets()) this.send(ws, { type: "config", document: doc });
  }

  /** Disconnects agents of replicas that are going away. */
  private closeRetiredSockets(): void {
    for (const r of this.state.replicas()) {
      if (r.status !== "terminating" && r.status !== "terminated") continue;
      for (const ws of this.ctx.getWebSockets(r.id))
        ws.close(CLOSE_CODES.REPLICA_GONE, "this gateway replica is no longer active");
    }
  }

  // ---- autoscaling ------------------------------------------------------------------------

  private runningReplicas(): ReplicaRow[] {
    return this.state.replicas().filter((r) => r.status === "running");
  }

  /** Evaluates the services that are due; true when a decision changed (an event waits for D1). */
  private evaluateScaling(now: number): boolean {
    return evaluateAll(this.state, this.services, this.state.replicas(), { now }).changed;
  }

  /** Makes sure the alarm runs when the earliest held scaling decision may go through. */
  private async scheduleScaling(): Promise<void> {
    const at = this.services.nextScalingEvaluation();
    if (at === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  /**
   * An agent holds a request for `service`, which has no replica (WebSocket message or the HTTP
   * fallback): the desired count goes to max(1, min) at once. Repeats change nothing.
   */
  async scaleFromZero(identity: AgentIdentity, service: string): Promise<Outcome<{ changed: boolean }>> {
    const seen = await this.agentSeen(identity, null);
    if (!seen.ok) return seen;
    if (!this.services.get(service)) return fail(404, "not_found", `Service ${service} does not exist`, "service");
    return ok({ changed: await this.recordFromZero(service) });
  }

  private async recordFromZero(service: string): Promise<boolean> {
    const s = this.services.get(service);
    // A signal may race the service's deletion: nothing to scale then.
    if (!s || !requestWhileZero(this.state, this.services, s, Date.now())) return false;
    await this.flush();
    return true;
  }

  override async alarm(): Promise<void> {
    let wakeAt: number | null = null;
    let scalingAt: number | null = null;
    try {
      scalingAt = evaluateAll(this.state, this.services, this.state.replicas(), { now: Date.now() }).next;
    } catch (e) {
      // A scaling problem must not stop the reconciler.
      console.error("autoscaling evaluation failed", e);
    }
    try {
      const result = await reconcile(
        {
          state: this.state,
          objectId: this.ctx.id.toString(),
          backend: () => {
            const g = this.state.gateway() as GatewayRow;
            return backendFor(this.env, g.project_id, g.configuration.backend);
          },
        },
        (g, num) => this.addReplica(g, num),
      );
      this.closeRetiredSockets();
      const dns = await this.syncDns(result.kind === "deleted");
      if (result.kind === "deleted" && dns !== null) {
        // The wildcard record goes before the gateway does; a provider outage delays that a little.
        await this.ctx.storage.setAlarm(dns);
        return;
      }
      if (result.kind === "deleted") {
        await pokeDispatchers(this.env, await removeFromCatalog(this.env.DB, this.state));
        // Read after the awaits: a delete may have cancelled the re-create meanwhile.
        const recreate = this.state.gateway()?.recreate ?? null;
        await this.ctx.storage.deleteAlarm();
        await this.ctx.storage.deleteAll();
        this.migrateStorage();
        // What memory held of the old gateway goes with its storage.
        this.projectAcme = null;
        // A re-create: the new gateway takes the name now, in this same object.
        if (recreate) await this.create(JSON.parse(recreate) as ApplyInput);
        return;
      }
      wakeAt = result.wakeAt === null ? dns : dns === null ? result.wakeAt : Math.min(result.wakeAt, dns);
    } catch (e) {
      console.error("gateway reconcile failed", e);
      wakeAt = Date.now() + 30_000;
    }
    const syncRetry = await this.flush();
    // An RPC may have kicked the reconciler while this pass ran: keep whichever run is sooner.
    const next = [wakeAt, syncRetry, scalingAt, await this.ctx.storage.getAlarm()].filter(
      (t): t is number => t !== null,
    );
    if (next.length > 0) await this.ctx.storage.setAlarm(Math.min(...next));
  }

  /**
   * DNS automation (when the project has DNS credentials): returns when to try again after a
   * provider failure, or null. A deletion waits for at most five failed removals, then leaves the
   * records (with an event saying so).
   */
  private async syncDns(releasing: boolean): Promise<number | null> {
    const g = this.state.gateway();
    if (!g) return null;
    const result = await this.dns.sync(g.project_id, this.state.snapshot(), releasing);
    if (result.ok) return null;
    if (releasing && this.dns.releaseFailures >= DNS_RELEASE_ATTEMPTS) {
      this.dns.abandon();
      return null;
    }
    return Date.now() + DNS_RETRY_MS;
  }

  private addReplica(g: GatewayRow, replicaNum: number): void {
    // Kept in clear until the agent uses it: a retried create must hand the same secret to the host.
    const secret = randomBase62(43);
    this.state.insertReplica({
      id: crypto.randomUUID(),
      replica_num: replicaNum,
      region: g.configuration.region,
      bootstrap_secret: secret,
    });
    this.state.event(`Gateway replica ${replicaNum} submitted`, null, {
      type: "gateway.replica.status",
      data: { replica_num: replicaNum, from: null, to: "submitted", message: null },
    });
  }

  /** Runs the reconciler as soon as possible (alarms are the only place that calls clouds). */
  private async kick(): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    const now = Date.now();
    if (current === null || current > now) await this.ctx.storage.setAlarm(now);
  }

  private flushing: Promise<unknown> = Promise.resolve();

  /**
   * Writes the catalog through to D1; returns when to retry if it failed. Flushes run one at a
   * time: two interleaved across their awaits could commit an older snapshot after a newer one.
   */
  private flush(): Promise<number | null> {
    const run = this.flushing.then(() => this.flushOnce());
    this.flushing = run.catch(() => null);
    return run;
  }

  private async flushOnce(): Promise<number | null> {
    const g = this.state.gateway();
    if (!g) return null;
    try {
      const fed = await syncCatalog(this.env.DB, this.state, this.services, this.ctx.id.toString());
      await pokeDispatchers(this.env, fed);
      const after = this.state.gateway();
      if (after && (after.version > after.synced_version || after.default_intent)) return Date.now() + 50;
      return null;
    } catch (e) {
      console.error("catalog write-through failed", e);
      const attempt = g.sync_attempt + 1;
      const retryAt = Date.now() + Math.min(2_000 * 2 ** (attempt - 1), SYNC_RETRY_MAX_MS);
      this.state.setSyncState({ sync_attempt: attempt, next_sync_at: retryAt });
      return retryAt;
    }
  }
}
