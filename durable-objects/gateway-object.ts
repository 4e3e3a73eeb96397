/**
 * @module
 * `GatewayObject`: one Durable Object per gateway (`idFromName(projectId + "/" + name)`), the only
 * writer of that gateway's state. RPC methods change desired state and return at once; the alarm
 * runs the reconciler that provisions, retries, scales and deletes. Every change is written
 * through to the D1 catalog; a failed write-through is retried by the alarm.
 */
import { DurableObject } from "cloudflare:workers";
import type { Gateway } from "../schema/api.ts";
import { diffConfigurations, type GatewayConfiguration, isInPlace } from "../schema/gateway.ts";
import { randomBase62, secretsEqual } from "../worker/crypto.ts";
import type { Env } from "../worker/env.ts";
import type { ErrorInfo, Outcome } from "../worker/errors.ts";
import { backendFor } from "./backends/index.ts";
import { removeFromCatalog, syncCatalog } from "./catalog-sync.ts";
import { reconcile, setGatewayStatus, setReplicaStatus, settleGatewayStatus } from "./reconciler.ts";
import { type DefaultIntent, type GatewayRow, GatewayState } from "./state.ts";

export interface ApplyInput {
  projectId: string;
  projectName: string;
  /** Validated, with defaults applied and `name` set. */
  configuration: GatewayConfiguration & { name: string };
  configurationPath: string | null;
  /** What the client planned against; `null` when it planned a create. */
  currentResource: { id: string; configuration: unknown } | null;
  force: boolean;
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

const SYNC_RETRY_MAX_MS = 5 * 60_000;

const fail = (status: ErrorInfo["status"], code: string, message: string, field?: string) =>
  ({ ok: false, error: { status, code, message, ...(field ? { field } : {}) } }) as const;
const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });

/** Compares configurations as a client sees them: `default` is the live flag, so it is left out. */
function sameConfiguration(a: unknown, b: GatewayConfiguration): boolean {
  if (!a || typeof a !== "object") return false;
  const changes = diffConfigurations(
    { ...(a as GatewayConfiguration), default: null },
    { ...b, default: null, name: b.name },
  );
  return changes.length === 0;
}

export class GatewayObject extends DurableObject<Env> {
  private readonly state: GatewayState;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.state = new GatewayState(ctx.storage.sql);
    ctx.blockConcurrencyWhile(async () => this.state.migrate());
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
    if (current.to_be_deleted) return fail(409, "being_deleted", `Gateway ${name} is being deleted. Try again later.`);
    if (current.status === "failed") {
      return fail(
        409,
        "failed",
        `Gateway ${name} is in FAILED status and cannot be updated in-place. Delete it and re-apply.`,
      );
    }
    if (!input.force) {
      const planned = input.currentResource;
      if (!planned || planned.id !== current.id || !sameConfiguration(planned.configuration, current.configuration)) {
        return fail(409, "conflict", "Failed to apply plan. Resource has been changed. Try again or use force apply.");
      }
    }
    const changes = diffConfigurations(current.configuration, next);
    const fields = changes.map((c) => c.field);
    if (!isInPlace(fields)) {
      const fixed = fields.filter((f) => !["domain", "default", "replicas"].includes(f));
      return fail(
        409,
        "not_updatable",
        `Gateway ${name} cannot be updated in-place (changed: ${fixed.join(", ")}). Delete it and re-apply.`,
        fixed[0],
      );
    }
    if (changes.length > 0) {
      const intent: DefaultIntent | null =
        next.default === true ? "set" : next.default === false ? "unset" : current.default_intent;
      const replicasChanged = fields.includes("replicas");
      this.state.updateGateway({
        configuration: { ...next, name, default: next.default ?? current.configuration.default },
        configuration_path: input.configurationPath ?? current.configuration_path,
        last_update_at: Date.now(),
        default_intent: intent,
        ...(replicasChanged ? { scale_attempt: 0, last_scale_attempt_at: null } : {}),
      });
      this.state.event(`Gateway updated. Changed fields: ${fields.join(", ")}`, input.actor);
      if (replicasChanged && current.status === "running") setGatewayStatus(this.state, current, "running", null);
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
    this.state.event("Gateway created. Status: SUBMITTED", input.actor);
    await this.kick();
    await this.flush();
    return ok({ gateway: this.state.snapshot()!, created: true });
  }

  /** Marks the gateway for deletion; replicas are terminated and the row removed asynchronously. */
  async markForDeletion(actor: string): Promise<Outcome<Gateway>> {
    const g = this.state.gateway();
    if (!g) return fail(404, "not_found", "Gateway does not exist");
    if (!g.to_be_deleted) {
      this.state.updateGateway({ to_be_deleted: true, default_intent: null });
      this.state.event("Gateway marked for deletion", actor);
      await this.kick();
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
  async agentSeen(
    identity: AgentIdentity,
    report: { version: string | null; status: string; message: string | null } | null,
  ): Promise<Outcome<AgentIdentity>> {
    const g = this.state.gateway();
    const r = this.state.replica(identity.replicaId);
    if (!g || g.id !== identity.gatewayId || !r || r.status === "terminated" || r.status === "terminating") {
      return fail(401, "unauthorized", "this gateway replica is no longer active");
    }
    if (report) {
      const message = report.status === "healthy" ? null : (report.message ?? `agent reports ${report.status}`);
      const changed = r.status_message !== message && r.status === "running";
      this.state.updateReplica(r.id, {
        agent_last_seen_at: new Date().toISOString(),
        ...(report.version ? { agent_version: report.version } : {}),
        ...(changed ? { status_message: message } : {}),
      });
      if (changed) await this.flush();
    }
    return ok({ gatewayId: g.id, replicaId: r.id, replicaNum: r.replica_num });
  }

  override async alarm(): Promise<void> {
    let wakeAt: number | null = null;
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
      if (result.kind === "deleted") {
        await removeFromCatalog(this.env.DB, this.state);
        await this.ctx.storage.deleteAlarm();
        await this.ctx.storage.deleteAll();
        // The object lives on (the name can be reused for a new gateway): recreate empty tables.
        this.state.migrate();
        return;
      }
      wakeAt = result.wakeAt;
    } catch (e) {
      console.error("gateway reconcile failed", e);
      wakeAt = Date.now() + 30_000;
    }
    const syncRetry = await this.flush();
    // An RPC may have kicked the reconciler while this pass ran: keep whichever run is sooner.
    const next = [wakeAt, syncRetry, await this.ctx.storage.getAlarm()].filter((t): t is number => t !== null);
    if (next.length > 0) await this.ctx.storage.setAlarm(Math.min(...next));
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
    this.state.event(`Gateway replica ${replicaNum} submitted`);
  }

  /** Runs the reconciler as soon as possible (alarms are the only place that calls clouds). */
  private async kick(): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    const now = Date.now();
    if (current === null || current > now) await this.ctx.storage.setAlarm(now);
  }

  /** Writes the catalog through to D1; returns when to retry if it failed. */
  private async flush(): Promise<number | null> {
    const g = this.state.gateway();
    if (!g) return null;
    try {
      await syncCatalog(this.env.DB, this.state, this.ctx.id.toString());
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
