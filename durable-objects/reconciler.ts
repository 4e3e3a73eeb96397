/**
 * @module
 * One reconciliation pass of a gateway, run from the GatewayObject's alarm: move the gateway and
 * each replica one step towards the desired state, then say when to run again. Safe to repeat at
 * any point: a create is recorded (attempt counter, client token) before the cloud is called, and
 * its instance found again by that token if the answer was lost.
 *
 * Why one file of ~470 lines: it is one state machine. The steps (create, poll, terminate, and the
 * ACM load balancer's create/register/delete) share the retry schedule, the status transitions and
 * the order in which `reconcile` runs them; split apart, each piece would import the others back.
 */
import type { GatewayStatus, ReplicaStatus } from "../schema/api.ts";
import { BackendError, type GatewayBackend, type InstanceSpec, type LoadBalancerSpec } from "./backends/types.ts";
import { type GatewayRow, type GatewayState, type ReplicaRow, upper } from "./state.ts";

/** dstack's retry schedule for provisioning: 1, 2, 5, 10 and then every 30 minutes, 15 attempts. */
export const RETRY_DELAYS_MS = [60_000, 120_000, 300_000, 600_000, 1_800_000] as const;
export const MAX_ATTEMPTS = 15;
export const PROVISION_POLL_MS = 2_000;
export const AGENT_REGISTER_TIMEOUT_MS = 10 * 60_000;
const TERMINATE_RETRY_MAX_MS = 10 * 60_000;

export const retryDelay = (attempt: number): number =>
  RETRY_DELAYS_MS[Math.min(Math.max(attempt - 1, 0), RETRY_DELAYS_MS.length - 1)]!;

export interface ReconcileContext {
  state: GatewayState;
  objectId: string;
  /** Created lazily: a pass that calls no cloud needs no credentials. */
  backend: () => Promise<GatewayBackend>;
  now?: () => number;
  /** Between looks at a provisioning host (default `PROVISION_POLL_MS`; tests against fake clouds shorten it). */
  provisionPollMs?: number;
}

const STATUS_PRIORITY: Record<ReplicaStatus, number> = {
  submitted: 0,
  provisioning: 1,
  running: 2,
  terminating: 3,
  terminated: 4,
};

const isActive = (r: ReplicaRow) => !r.scale_in && r.status !== "terminating" && r.status !== "terminated";
const describeError = (e: unknown) => (e instanceof Error ? e.message : String(e));
const minutes = (ms: number) => (ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`);

export function setGatewayStatus(state: GatewayState, g: GatewayRow, status: GatewayStatus, message: string | null) {
  if (g.status === status && g.status_message === message) return;
  state.updateGateway({ status, status_message: message });
  if (g.status !== status) {
    state.event(
      `Gateway status changed ${upper(g.status)} -> ${upper(status)}${message ? ` (${message})` : ""}`,
      null,
      {
        type: "gateway.status",
        data: { from: g.status, to: status, message },
      },
    );
  }
  g.status = status;
  g.status_message = message;
}

export function setReplicaStatus(
  state: GatewayState,
  r: ReplicaRow,
  status: ReplicaStatus,
  message: string | null,
  extra: Partial<ReplicaRow> = {},
) {
  const changes: Partial<ReplicaRow> = { ...extra, status, status_message: message };
  if (status === "terminated") changes.terminated_at = new Date().toISOString();
  state.updateReplica(r.id, changes);
  if (r.status !== status) {
    state.event(
      `Gateway replica ${r.replica_num} status changed ${upper(r.status)} -> ${upper(status)}${message ? ` (${message})` : ""}`,
      null,
      { type: "gateway.replica.status", data: { replica_num: r.replica_num, from: r.status, to: status, message } },
    );
  }
  Object.assign(r, changes);
}

/** Provisioning → running once every wanted replica runs; resets the scale-out attempts. */
export function settleGatewayStatus(state: GatewayState): void {
  const g = state.gateway();
  if (!g || g.to_be_deleted || g.status === "failed") return;
  const active = state.replicas().filter(isActive);
  const allRunning = active.length === g.configuration.replicas && active.every((r) => r.status === "running");
  if (allRunning && g.status === "provisioning") setGatewayStatus(state, g, "running", null);
  if (allRunning && g.scale_attempt > 0) state.updateGateway({ scale_attempt: 0 });
}

function instanceSpec(g: GatewayRow, r: ReplicaRow, objectId: string): InstanceSpec {
  const name = `gp-${g.project_name}-${g.name}-${r.replica_num}`.toLowerCase().slice(0, 60).replace(/-+$/, "");
  return {
    name,
    clientToken: r.id,
    region: r.region,
    instanceType: g.configuration.instance_type,
    publicIp: g.configuration.public_ip,
    tags: {
      ...(g.configuration.tags ?? {}),
      owner: "gateplane",
      gateplane_project: g.project_name,
      gateplane_gateway: g.name,
      gateplane_replica: String(r.replica_num),
    },
    bootstrap: {
      control_plane_url: g.control_plane_url,
      object_id: objectId,
      gateway_id: g.id,
      gateway_name: g.name,
      project_name: g.project_name,
      replica_num: r.replica_num,
      bootstrap_secret: r.bootstrap_secret ?? "",
    },
    router: g.configuration.router ?? null,
  };
}

/** The gateway's `backend_data`: its load balancer (ACM gateways) and that step's retry state. */
interface GatewayBackendData {
  load_balancer?: Record<string, unknown>;
  lb_attempt?: number;
  lb_next_attempt_at?: number;
  lb_delete_attempt?: number;
  lb_delete_next_at?: number;
}

const needsLoadBalancer = (g: GatewayRow) => g.configuration.certificate?.type === "acm";
const gatewayData = (g: GatewayRow | null): GatewayBackendData =>
  g?.backend_data ? (JSON.parse(g.backend_data) as GatewayBackendData) : {};
const saveGatewayData = (state: GatewayState, changes: Partial<GatewayBackendData>) =>
  state.updateGateway({ backend_data: JSON.stringify({ ...gatewayData(state.gateway()), ...changes }) });

function loadBalancerSpec(g: GatewayRow): LoadBalancerSpec {
  const cert = g.configuration.certificate;
  return {
    gatewayId: g.id,
    projectName: g.project_name,
    gatewayName: g.name,
    region: g.configuration.region,
    publicIp: g.configuration.public_ip,
    certificateArn: cert?.type === "acm" ? cert.arn : "",
    tags: {
      ...(g.configuration.tags ?? {}),
      owner: "gateplane",
      gateplane_project: g.project_name,
      gateplane_gateway: g.name,
    },
  };
}

/**
 * ACM gateways get their load balancer before any replica (dstack's order): the gateway stays
 * submitted until it exists, retrying on dstack's schedule. Returns when to try again.
 */
async function loadBalancerStep(ctx: ReconcileContext, g: GatewayRow, now: number): Promise<number | null> {
  const { state } = ctx;
  const data = gatewayData(g);
  if (data.lb_next_attempt_at && now < data.lb_next_attempt_at) return data.lb_next_attempt_at;
  const attempt = (data.lb_attempt ?? 0) + 1;
  // Recorded before the call, so a delete knows to look for what a lost answer left behind.
  saveGatewayData(state, { lb_attempt: attempt });
  try {
    const backend = await ctx.backend();
    if (!backend.createLoadBalancer) {
      throw new BackendError("NotSupported", `the ${backend.type} backend has no load balancers`, { retryable: false });
    }
    const info = await backend.createLoadBalancer(loadBalancerSpec(g), data.load_balancer ?? null, (partial) =>
      saveGatewayData(state, { load_balancer: partial }),
    );
    const fresh = state.gateway();
    if (fresh?.status !== "submitted") return null;
    state.updateGateway({ hostname: info.hostname });
    saveGatewayData(state, { load_balancer: info.backendData, lb_next_attempt_at: 0 });
    state.event(`Gateway load balancer ready: ${info.hostname}`);
    setGatewayStatus(state, fresh, "provisioning", null);
    return null;
  } catch (e) {
    const fresh = state.gateway();
    if (fresh?.status !== "submitted") return null;
    const message = describeError(e);
    const retryable = e instanceof BackendError ? e.retryable : false;
    if (retryable && attempt < MAX_ATTEMPTS) {
      const delay = retryDelay(attempt);
      saveGatewayData(state, { lb_next_attempt_at: now + delay });
      setGatewayStatus(
        state,
        fresh,
        "submitted",
        `Load balancer attempt ${attempt}/${MAX_ATTEMPTS} failed, retrying in ${minutes(delay)}: ${message}`,
      );
      state.event(`Gateway load balancer attempt ${attempt} failed: ${message}`);
      return now + delay;
    }
    setGatewayStatus(state, fresh, "failed", `Failed to create the gateway load balancer: ${message}`);
    return null;
  }
}

/** Removes the load balancer once every replica is gone; returns when to retry, or null when done. */
async function deleteLoadBalancerStep(ctx: ReconcileContext, g: GatewayRow, now: number): Promise<number | null> {
  const { state } = ctx;
  const data = gatewayData(g);
  if (!needsLoadBalancer(g) || (!data.lb_attempt && !data.load_balancer)) return null;
  if (data.lb_delete_next_at && now < data.lb_delete_next_at) return data.lb_delete_next_at;
  try {
    const backend = await ctx.backend();
    await backend.deleteLoadBalancer?.(loadBalancerSpec(g), data.load_balancer ?? null);
    saveGatewayData(state, { load_balancer: undefined, lb_attempt: 0 });
    state.event("Gateway load balancer deleted");
    return null;
  } catch (e) {
    const attempt = (data.lb_delete_attempt ?? 0) + 1;
    const next = now + Math.min(5_000 * 2 ** (attempt - 1), TERMINATE_RETRY_MAX_MS);
    saveGatewayData(state, { lb_delete_attempt: attempt, lb_delete_next_at: next });
    state.event(`Gateway load balancer deletion attempt ${attempt} failed: ${describeError(e)}`);
    return next;
  }
}

/** Puts a running replica's instance behind the gateway's load balancer (once; idempotent anyway). */
async function registerTargetStep(ctx: ReconcileContext, g: GatewayRow, r: ReplicaRow, now: number) {
  const lb = gatewayData(g).load_balancer;
  if (!needsLoadBalancer(g) || !lb || !r.instance_id || g.to_be_deleted) return null;
  const data = r.backend_data ? (JSON.parse(r.backend_data) as Record<string, unknown>) : {};
  if (data.lb_target === r.instance_id) return null;
  try {
    const backend = await ctx.backend();
    await backend.registerReplica?.(r.instance_id, r.region, lb);
    saveReplicaData(ctx.state, r.id, { ...data, lb_target: r.instance_id });
    ctx.state.event(`Gateway replica ${r.replica_num} registered with the load balancer`);
    return null;
  } catch (e) {
    ctx.state.event(`Gateway replica ${r.replica_num} load balancer registration failed: ${describeError(e)}`);
    return now + 5_000;
  }
}

const saveReplicaData = (state: GatewayState, id: string, data: Record<string, unknown>) =>
  state.updateReplica(id, { backend_data: JSON.stringify(data) });

export interface NewReplica {
  replicaNum: number;
}

/** Scale out or in towards `configuration.replicas`; returns when a gated scale-out may retry. */
function reconcileCount(
  ctx: ReconcileContext,
  g: GatewayRow,
  now: number,
  addReplica: (num: number) => void,
): number | null {
  const { state } = ctx;
  const replicas = state.replicas();
  const active = replicas.filter(isActive);
  const diff = g.configuration.replicas - active.length;
  if (diff > 0) {
    if (g.status === "running") {
      if (g.scale_attempt >= MAX_ATTEMPTS) return null;
      if (g.scale_attempt > 0 && g.last_scale_attempt_at !== null) {
        const due = g.last_scale_attempt_at + retryDelay(g.scale_attempt);
        if (now < due) return due;
      }
      const attempt = g.scale_attempt + 1;
      state.updateGateway({ scale_attempt: attempt, last_scale_attempt_at: now });
      if (attempt === MAX_ATTEMPTS) {
        state.event(`Gateway made its ${MAX_ATTEMPTS}th and final replica scale-out attempt`);
      }
    }
    const used = new Set(replicas.filter((r) => r.status !== "terminated").map((r) => r.replica_num));
    let num = 0;
    for (let i = 0; i < diff; i++) {
      while (used.has(num)) num++;
      used.add(num);
      addReplica(num);
    }
  } else if (diff < 0) {
    const victims = [...active]
      .sort((a, b) => STATUS_PRIORITY[a.status] - STATUS_PRIORITY[b.status] || a.created_ms - b.created_ms)
      .slice(0, -diff);
    for (const r of victims) {
      state.updateReplica(r.id, { scale_in: true });
      state.event(`Gateway replica ${r.replica_num} scaled in`);
    }
  }
  return null;
}

async function createStep(ctx: ReconcileContext, g: GatewayRow, r: ReplicaRow, now: number): Promise<void> {
  const { state } = ctx;
  const attempt = r.attempt + 1;
  // Persist the attempt before the call: a restart after this point looks the instance up by token.
  state.updateReplica(r.id, { attempt });
  try {
    const backend = await ctx.backend();
    const spec = instanceSpec(g, r, ctx.objectId);
    const network = await backend.ensureNetwork({
      projectName: g.project_name,
      gatewayName: g.name,
      region: r.region,
      publicIp: g.configuration.public_ip,
      tags: spec.tags,
    });
    const info = await backend.createInstance(spec, network);
    const fresh = state.replica(r.id);
    if (fresh?.status !== "submitted") return;
    setReplicaStatus(state, fresh, "provisioning", null, {
      instance_id: info.instanceId,
      hostname: info.hostname,
      backend_data: info.backendData ? JSON.stringify(info.backendData) : null,
      provisioning_since: Date.now(),
      next_attempt_at: 0,
    });
    if (fresh.agent_registered_at) setReplicaStatus(state, fresh, "running", null);
  } catch (e) {
    const fresh = state.replica(r.id);
    if (fresh?.status !== "submitted") return;
    const message = describeError(e);
    const retryable = e instanceof BackendError ? e.retryable : false;
    if (retryable && attempt < MAX_ATTEMPTS) {
      const delay = retryDelay(attempt);
      state.updateReplica(r.id, {
        next_attempt_at: now + delay,
        status_message: `Attempt ${attempt}/${MAX_ATTEMPTS} failed, retrying in ${minutes(delay)}: ${message}`,
      });
      state.event(`Gateway replica ${r.replica_num} provisioning attempt ${attempt} failed: ${message}`);
      return;
    }
    failReplica(state, g, fresh, message);
  }
}

/** A replica that cannot come up: terminate what may exist; fail a gateway still provisioning. */
function failReplica(state: GatewayState, g: GatewayRow, r: ReplicaRow, message: string) {
  const hasInstance = r.instance_id !== null || r.attempt > 0;
  setReplicaStatus(state, r, hasInstance ? "terminating" : "terminated", message, { next_attempt_at: 0 });
  if (g.status === "provisioning" || g.status === "submitted") {
    setGatewayStatus(state, g, "failed", `Failed to provision gateway replica ${r.replica_num}: ${message}`);
  }
}

async function provisioningStep(ctx: ReconcileContext, g: GatewayRow, r: ReplicaRow, now: number): Promise<void> {
  const { state } = ctx;
  if (r.agent_registered_at) {
    setReplicaStatus(state, r, "running", null);
    return;
  }
  if (r.provisioning_since !== null && now - r.provisioning_since > AGENT_REGISTER_TIMEOUT_MS) {
    failReplica(state, g, r, `the gateway agent did not register within ${minutes(AGENT_REGISTER_TIMEOUT_MS)}`);
    return;
  }
  if (!r.instance_id) return;
  try {
    const backend = await ctx.backend();
    const info = await backend.describeInstance(r.instance_id, r.region);
    const fresh = state.replica(r.id);
    if (fresh?.status !== "provisioning") return;
    if (!info || info.state === "terminated") {
      failReplica(state, g, fresh, "the instance was terminated outside of the control plane");
      return;
    }
    if (info.hostname && info.hostname !== fresh.hostname) state.updateReplica(r.id, { hostname: info.hostname });
  } catch (e) {
    // Describe is only advisory while waiting for the agent; a later pass tries again.
    if (!(e instanceof BackendError)) throw e;
  }
}

async function terminateStep(ctx: ReconcileContext, g: GatewayRow, r: ReplicaRow, now: number): Promise<void> {
  const { state } = ctx;
  try {
    const backend = await ctx.backend();
    let instanceId = r.instance_id;
    if (!instanceId && r.attempt > 0) {
      instanceId = (await backend.findInstance(instanceSpec(g, r, ctx.objectId)))?.instanceId ?? null;
    }
    const lb = gatewayData(g).load_balancer;
    if (instanceId && lb && needsLoadBalancer(g)) await backend.deregisterReplica?.(instanceId, r.region, lb);
    if (instanceId) await backend.terminateInstance(instanceId, r.region);
    const fresh = state.replica(r.id);
    if (fresh?.status !== "terminating") return;
    setReplicaStatus(state, fresh, "terminated", fresh.status_message, {
      instance_id: instanceId,
      bootstrap_secret: null,
    });
  } catch (e) {
    const attempt = r.terminate_attempt + 1;
    const delay = Math.min(5_000 * 2 ** (attempt - 1), TERMINATE_RETRY_MAX_MS);
    state.updateReplica(r.id, { terminate_attempt: attempt, next_attempt_at: now + delay });
    state.event(`Gateway replica ${r.replica_num} termination attempt ${attempt} failed: ${describeError(e)}`);
  }
}

/** Marks replicas for termination when the gateway goes away, fails, or scales them in. */
function markTerminating(state: GatewayState, g: GatewayRow) {
  for (const r of state.replicas()) {
    if (r.status === "terminating" || r.status === "terminated") continue;
    const reason = g.to_be_deleted ? null : g.status === "failed" ? null : r.scale_in ? "Scaled in" : undefined;
    if (reason === undefined) continue;
    if (r.status === "submitted" && r.attempt === 0) setReplicaStatus(state, r, "terminated", reason);
    else setReplicaStatus(state, r, "terminating", reason, { next_attempt_at: 0 });
  }
}

export type PassResult = { kind: "continue"; wakeAt: number | null } | { kind: "deleted" };

/**
 * Runs one pass. `newReplica` inserts a replica row (it needs randomness and hashing, which the
 * object owns). Returns when to run again, or that the gateway is gone.
 */
export async function reconcile(
  ctx: ReconcileContext,
  newReplica: (g: GatewayRow, replicaNum: number) => void,
): Promise<PassResult> {
  const now = (ctx.now ?? Date.now)();
  const { state } = ctx;
  let g = state.gateway();
  if (!g) return { kind: "continue", wakeAt: null };
  const wake: number[] = [];

  if (!g.to_be_deleted && g.status === "submitted") {
    if (!needsLoadBalancer(g)) setGatewayStatus(state, g, "provisioning", null);
    else {
      const retryAt = await loadBalancerStep(ctx, g, now);
      if (retryAt) wake.push(retryAt);
      g = state.gateway();
      if (!g) return { kind: "continue", wakeAt: null };
    }
  }
  if (!g.to_be_deleted && (g.status === "provisioning" || g.status === "running")) {
    const gated = reconcileCount(ctx, g, now, (num) => newReplica(g as GatewayRow, num));
    if (gated) wake.push(gated);
  }
  markTerminating(state, g);

  for (const r of state.replicas()) {
    g = state.gateway();
    if (!g) return { kind: "continue", wakeAt: null };
    if (r.next_attempt_at > now && (r.status === "submitted" || r.status === "terminating")) {
      wake.push(r.next_attempt_at);
      continue;
    }
    if (r.status === "submitted" && !g.to_be_deleted && g.status !== "failed") await createStep(ctx, g, r, now);
    else if (r.status === "provisioning") await provisioningStep(ctx, g, r, now);
    else if (r.status === "terminating") await terminateStep(ctx, g, r, now);
    const fresh = state.replica(r.id);
    // ELBv2 only takes running instances; a replica runs once its agent registered from the host.
    if (fresh?.status === "running") {
      const retryAt = await registerTargetStep(ctx, g, fresh, now);
      if (retryAt) wake.push(retryAt);
    }
  }

  g = state.gateway();
  if (!g) return { kind: "continue", wakeAt: null };
  markTerminating(state, g);
  settleGatewayStatus(state);

  const replicas = state.replicas();
  if (g.to_be_deleted && replicas.every((r) => r.status === "terminated")) {
    const retryAt = await deleteLoadBalancerStep(ctx, g, now);
    if (retryAt === null) return { kind: "deleted" };
    return { kind: "continue", wakeAt: retryAt };
  }
  for (const r of replicas) {
    if (r.status === "provisioning") wake.push(now + (ctx.provisionPollMs ?? PROVISION_POLL_MS));
    if (r.status === "submitted" || r.status === "terminating") wake.push(Math.max(r.next_attempt_at, now + 100));
  }
  const active = replicas.filter(isActive).length;
  if (!g.to_be_deleted && g.status !== "failed" && active !== g.configuration.replicas && wake.length === 0) {
    wake.push(now + 1_000);
  }
  return { kind: "continue", wakeAt: wake.length > 0 ? Math.min(...wake) : null };
}
