/**
 * @module
 * The GatewayObject's alarm: one pass of everything that runs in the background. Autoscaling
 * decisions that are due, the reconciler (provision, retry, scale, delete), DNS automation, the
 * catalog write-through's retries, and the end of a deletion: the storage wiped and, for a
 * re-create, the new gateway recorded in the same object. Then the next alarm, at the soonest time
 * any of them asked for.
 */
import { randomBase62 } from "../core/crypto.ts";
import { pokeDispatchers } from "../core/webhook-deliveries.ts";
import { closeRetiredSockets } from "./agent-socket.ts";
import { backendTiming } from "./backends/clouds/worker-settings.ts";
import { backendFor } from "./backends/index.ts";
import { removeFromCatalog } from "./catalog-sync.ts";
import { type ApplyInput, createGateway } from "./gateway-commands.ts";
import { type GatewayContext, migrateStorage } from "./gateway-context.ts";
import { reconcile } from "./reconciler.ts";
import { evaluateAll } from "./scaling.ts";
import type { GatewayRow } from "./state.ts";

const DNS_RETRY_MS = 30_000;
const DNS_RELEASE_ATTEMPTS = 5;

export async function runAlarm(gw: GatewayContext): Promise<void> {
  let wakeAt: number | null = null;
  let scalingAt: number | null = null;
  try {
    scalingAt = evaluateAll(gw.state, gw.services, gw.state.replicas(), { now: Date.now() }).next;
  } catch (e) {
    // A scaling problem must not stop the reconciler.
    console.error("autoscaling evaluation failed", e);
  }
  try {
    const result = await reconcile(
      {
        state: gw.state,
        objectId: gw.ctx.id.toString(),
        backend: () => {
          const g = gw.state.gateway() as GatewayRow;
          return backendFor(gw.env, g.project_id, g.configuration.backend);
        },
        // `CLOUD_PROVISION_POLL_MS`: unset in production (2 s); tests against fake clouds shorten it.
        provisionPollMs: backendTiming(gw.env).provisionPollMs,
      },
      (g, num) => addReplica(gw, g, num),
    );
    closeRetiredSockets(gw);
    const dns = await syncDns(gw, result.kind === "deleted");
    if (result.kind === "deleted" && dns !== null) {
      // The wildcard record goes before the gateway does; a provider outage delays that a little.
      await gw.ctx.storage.setAlarm(dns);
      return;
    }
    if (result.kind === "deleted") {
      await finishDeletion(gw);
      return;
    }
    wakeAt = result.wakeAt === null ? dns : dns === null ? result.wakeAt : Math.min(result.wakeAt, dns);
  } catch (e) {
    console.error("gateway reconcile failed", e);
    wakeAt = Date.now() + 30_000;
  }
  const syncRetry = await gw.flush();
  // An RPC may have kicked the reconciler while this pass ran: keep whichever run is sooner.
  const next = [wakeAt, syncRetry, scalingAt, await gw.ctx.storage.getAlarm()].filter((t): t is number => t !== null);
  if (next.length > 0) await gw.ctx.storage.setAlarm(Math.min(...next));
}

/** The gateway is gone: out of the catalog, storage wiped; a waiting re-create takes the name now. */
async function finishDeletion(gw: GatewayContext): Promise<void> {
  await pokeDispatchers(gw.env, await removeFromCatalog(gw.env.DB, gw.state));
  // Read after the awaits: a delete may have cancelled the re-create meanwhile.
  const recreate = gw.state.gateway()?.recreate ?? null;
  await gw.ctx.storage.deleteAlarm();
  await gw.ctx.storage.deleteAll();
  migrateStorage(gw);
  // What memory held of the old gateway goes with its storage.
  gw.projectAcme = null;
  // A re-create: the new gateway takes the name now, in this same object.
  if (recreate) await createGateway(gw, JSON.parse(recreate) as ApplyInput);
}

/**
 * DNS automation (when the project has DNS credentials): returns when to try again after a
 * provider failure, or null. A deletion waits for at most five failed removals, then leaves the
 * records (with an event saying so).
 */
async function syncDns(gw: GatewayContext, releasing: boolean): Promise<number | null> {
  const g = gw.state.gateway();
  if (!g) return null;
  const result = await gw.dns.sync(g.project_id, gw.state.snapshot(), releasing);
  if (result.ok) return null;
  if (releasing && gw.dns.releaseFailures >= DNS_RELEASE_ATTEMPTS) {
    gw.dns.abandon();
    return null;
  }
  return Date.now() + DNS_RETRY_MS;
}

function addReplica(gw: GatewayContext, g: GatewayRow, replicaNum: number): void {
  // Kept in clear until the agent uses it: a retried create must hand the same secret to the host.
  const secret = randomBase62(43);
  gw.state.insertReplica({
    id: crypto.randomUUID(),
    replica_num: replicaNum,
    region: g.configuration.region,
    bootstrap_secret: secret,
  });
  gw.state.event(`Gateway replica ${replicaNum} submitted`, null, {
    type: "gateway.replica.status",
    data: { replica_num: replicaNum, from: null, to: "submitted", message: null },
  });
}
