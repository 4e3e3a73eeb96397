/**
 * @module
 * `GatewayObject`: one Durable Object per gateway (`idFromName(projectId + "/" + name)`), the only
 * writer of that gateway's state. This class is its RPC surface and reads as a table of contents:
 * each method hands its work to the module that owns the concern. RPC methods change desired state
 * and return at once; the alarm runs the reconciler that provisions, retries, scales and deletes.
 * Every change is written through to the D1 catalog; a failed write-through is retried by the alarm.
 * Refusals come back as domain outcomes (`Outcome`); the Worker decides their HTTP status.
 *
 *   gateway commands ........ gateway-commands.ts   (apply, re-create, delete)
 *   agent identity, health .. agent-identity.ts     (bootstrap exchange, token checks, heartbeats)
 *   configuration documents . agent-config.ts       (pull, ACK/NACK)
 *     deltas, changes ....... config-delta.ts, config-changes.ts, change-log.ts
 *   agent socket ............ agent-socket.ts       (hibernatable WebSockets) + agent-reports.ts
 *   services ................ service-commands.ts   (apply, delete, replicas, API views)
 *   traffic history ......... service-history.ts    (1-minute rollups of the agents' reports, 24 h)
 *   project refresh ......... project-refresh.ts    (service tokens, ACME settings from D1)
 *   autoscaling signals ..... scaling-schedule.ts
 *   alarm ................... gateway-alarm.ts      (reconcile, DNS, deletion, re-create)
 *   write-through ........... write-through.ts
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../core/env.ts";
import type { Outcome } from "../core/outcome.ts";
import type { ServiceRejection } from "../schema/agent-protocol.ts";
import type { Gateway } from "../schema/api.ts";
import type { ConfigAnswer } from "../schema/config-delta.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import type { Service } from "../schema/service-api.ts";
import type { MetricsPoint, MetricsRange } from "../schema/service-metrics.ts";
import { configFor, configSince, recordConfigResult } from "./agent-config.ts";
import {
  type AgentIdentity,
  type AgentRegistration,
  agentSeen,
  type HealthReport,
  registerAgent,
} from "./agent-identity.ts";
import { acceptAgentSocket, answerPings, onAgentClose, onAgentMessage } from "./agent-socket.ts";
import { ChangeLog } from "./change-log.ts";
import { measureServices } from "./config-changes.ts";
import { DnsAutomation } from "./dns/dns-sync.ts";
import { runAlarm } from "./gateway-alarm.ts";
import { type ApplyInput, applyGateway, markForDeletion, serviceNames } from "./gateway-commands.ts";
import { type GatewayContext, migrateStorage } from "./gateway-context.ts";
import { openProjectAcme, ProjectAcmeStore } from "./project-acme.ts";
import { refreshProjectAcme, refreshServiceTokens } from "./project-refresh.ts";
import { scaleFromZero } from "./scaling-schedule.ts";
import {
  applyService,
  deleteService,
  getService,
  listServices,
  putServiceReplica,
  removeServiceReplica,
  type ServiceApplyInput,
  servicesNamed,
} from "./service-commands.ts";
import { ServiceHistory } from "./service-history.ts";
import { type ReplicaRegistration, ServiceStore } from "./service-store.ts";
import { GatewayState } from "./state.ts";
import { CatalogWriteThrough } from "./write-through.ts";

export type { AgentIdentity, AgentRegistration, ApplyInput, HealthReport, ServiceApplyInput };

export class GatewayObject extends DurableObject<Env> {
  private readonly gw: GatewayContext;
  private readonly writeThrough: CatalogWriteThrough;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const state = new GatewayState(ctx.storage.sql);
    const services = new ServiceStore(ctx.storage.sql);
    const changes = new ChangeLog(ctx.storage.sql);
    this.writeThrough = new CatalogWriteThrough(env, state, services, changes, ctx.id.toString());
    this.gw = {
      ctx,
      env,
      state,
      services,
      changes,
      acmeStore: new ProjectAcmeStore(ctx.storage.sql),
      dns: new DnsAutomation(ctx.storage.sql, env, (message) => state.event(message)),
      history: new ServiceHistory(ctx.storage.sql),
      projectAcme: null,
      flush: () => this.flush(),
    };
    answerPings(ctx);
    ctx.blockConcurrencyWhile(async () => {
      migrateStorage(this.gw);
      measureServices(this.gw);
      const g = state.gateway();
      if (g) this.gw.projectAcme = await openProjectAcme(env, g.project_id, this.gw.acmeStore.get());
    });
  }

  // ---- the gateway ------------------------------------------------------------------------

  /** The gateway as the API shows it (without `default`, which lives in D1), or `null`. */
  async describe(): Promise<Gateway | null> {
    return this.gw.state.snapshot();
  }

  async apply(input: ApplyInput): Promise<Outcome<{ gateway: Gateway; created: boolean }>> {
    return applyGateway(this.gw, input);
  }

  /** The gateway's services, by name (a deletion takes them with it). */
  async serviceNames(): Promise<string[]> {
    return serviceNames(this.gw);
  }

  async markForDeletion(actor: string, cascade = false): Promise<Outcome<Gateway>> {
    return markForDeletion(this.gw, actor, cascade);
  }

  // ---- agents -----------------------------------------------------------------------------

  async registerAgent(input: AgentRegistration): Promise<Outcome<AgentIdentity>> {
    return registerAgent(this.gw, input);
  }

  async agentSeen(identity: AgentIdentity, report: HealthReport | null): Promise<Outcome<AgentIdentity>> {
    return agentSeen(this.gw, identity, report);
  }

  async configFor(identity: AgentIdentity, knownVersion: number | null): Promise<Outcome<ConfigDocument | null>> {
    return configFor(this.gw, identity, knownVersion);
  }

  /** The pull of an agent that takes deltas: a delta from `since`, a whole document, or null (current). */
  async configSince(identity: AgentIdentity, since: number): Promise<Outcome<ConfigAnswer | null>> {
    return configSince(this.gw, identity, since);
  }

  async recordConfigResult(
    identity: AgentIdentity,
    version: number,
    error: string | null,
    rejected: ServiceRejection[] = [],
  ): Promise<Outcome<null>> {
    return recordConfigResult(this.gw, identity, version, error, rejected);
  }

  async scaleFromZero(identity: AgentIdentity, service: string): Promise<Outcome<{ changed: boolean }>> {
    return scaleFromZero(this.gw, identity, service);
  }

  /** Upgrade from the Worker (which verified the agent's JWT): a hibernatable socket per replica. */
  override async fetch(request: Request): Promise<Response> {
    return acceptAgentSocket(this.gw, request);
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    return onAgentMessage(this.gw, ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    onAgentClose(ws, code, reason);
  }

  // ---- services ---------------------------------------------------------------------------

  async listServices(): Promise<Service[]> {
    return listServices(this.gw);
  }

  /** The named services (a page of the project's list), read without viewing the others. */
  async servicesNamed(names: string[]): Promise<Service[]> {
    return servicesNamed(this.gw, names);
  }

  async getService(name: string): Promise<Service | null> {
    return getService(this.gw, name);
  }

  /** The service's history over `range` (`schema/service-metrics.ts`), or null without the service. */
  async serviceMetrics(name: string, range: MetricsRange): Promise<MetricsPoint[] | null> {
    if (!this.gw.services.get(name)) return null;
    return this.gw.history.points(name, range, Date.now());
  }

  async applyService(input: ServiceApplyInput): Promise<Outcome<{ service: Service; created: boolean }>> {
    return applyService(this.gw, input);
  }

  async deleteService(name: string, actor: string): Promise<Outcome<Service>> {
    return deleteService(this.gw, name, actor);
  }

  async putServiceReplica(
    name: string,
    replica: ReplicaRegistration,
    actor: string,
  ): Promise<Outcome<{ service: Service; created: boolean }>> {
    return putServiceReplica(this.gw, name, replica, actor);
  }

  async removeServiceReplica(name: string, id: string, actor: string): Promise<Outcome<Service>> {
    return removeServiceReplica(this.gw, name, id, actor);
  }

  // ---- the project's settings -------------------------------------------------------------

  /** After a service token is created or revoked (and when the gateway is created). */
  async refreshAuthTokens(): Promise<void> {
    return refreshServiceTokens(this.gw);
  }

  /** After `PUT/DELETE /projects/:p/acme` (and when the gateway is created). */
  async refreshAcme(): Promise<void> {
    return refreshProjectAcme(this.gw);
  }

  // ---- background -------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    return runAlarm(this.gw);
  }

  /** The catalog write-through (tests call it to replay a crash between D1's commit and the outbox's ack). */
  private flush(): Promise<number | null> {
    return this.writeThrough.flush();
  }
}
