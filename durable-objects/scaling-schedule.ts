/**
 * @module
 * When autoscaling runs inside a GatewayObject (the decisions themselves: `scaling.ts`): after an
 * agent's stats, at the alarm a held decision asked for, and at once when an agent holds a request
 * for a service scaled to zero.
 */
import { failure, type Outcome, ok } from "../core/outcome.ts";
import { type AgentIdentity, agentSeen } from "./agent-identity.ts";
import type { GatewayContext } from "./gateway-context.ts";
import { evaluateAll, requestWhileZero } from "./scaling.ts";

/** Evaluates the services that are due; true when a decision changed (an event waits for D1). */
export function evaluateDue(gw: GatewayContext, now: number): boolean {
  return evaluateAll(gw.state, gw.services, gw.state.replicas(), { now }).changed;
}

/** Makes sure the alarm runs when the earliest held scaling decision may go through. */
export async function scheduleScaling(gw: GatewayContext): Promise<void> {
  const at = gw.services.nextScalingEvaluation();
  if (at === null) return;
  const current = await gw.ctx.storage.getAlarm();
  if (current === null || current > at) await gw.ctx.storage.setAlarm(at);
}

/**
 * An agent holds a request for `service`, which has no replica (the HTTP fallback of the socket's
 * `scale_from_zero`): the desired count goes to max(1, min) at once. Repeats change nothing.
 */
export async function scaleFromZero(
  gw: GatewayContext,
  identity: AgentIdentity,
  service: string,
): Promise<Outcome<{ changed: boolean }>> {
  const seen = await agentSeen(gw, identity, null);
  if (!seen.ok) return seen;
  if (!gw.services.get(service))
    return failure("not_found", "not_found", `Service ${service} does not exist`, "service");
  return ok({ changed: await recordFromZero(gw, service) });
}

/** The signal itself (socket or HTTP); true when the desired count changed. */
export async function recordFromZero(gw: GatewayContext, service: string): Promise<boolean> {
  const s = gw.services.get(service);
  // A signal may race the service's deletion: nothing to scale then.
  if (!s || !requestWhileZero(gw.state, gw.services, s, Date.now())) return false;
  await gw.flush();
  return true;
}
