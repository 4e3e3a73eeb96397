/**
 * @module
 * What a serving process does with the health news its host shares (its parent's active checks,
 * `checker.ts`; other processes' passive outcomes, `passive-share.ts`): set it on the balancers of the
 * routing table in force, and remember the active verdicts so that a replica a later document or
 * delta brings starts with the host's latest word on it.
 */
import type { RoutingTable } from "../routes.ts";
import type { ActiveVerdict } from "./checker.ts";
import type { PassiveEvent } from "./passive-share.ts";

const keyOf = (id: string, url: string) => `${id}\u0000${url}`;

/** Sets each verdict on its replica's balancer in `table` (a replica it does not have is skipped). */
export function setVerdicts(table: RoutingTable, verdicts: Iterable<ActiveVerdict>, now: number): void {
  for (const v of verdicts) {
    const balancer = table.byName.get(v.service)?.balancer;
    const replica = balancer?.replicas.find((r) => r.id === v.id && r.url === v.url);
    if (replica && (replica.active !== v.verdict || replica.lastCheck !== v.last))
      balancer!.setActive(replica, v.verdict, v.last, v.error, now);
  }
}

/** Sets other processes' passive outcomes on the balancers of `table`. */
export function setPassive(table: RoutingTable, events: readonly PassiveEvent[], now: number): void {
  for (const e of events) {
    const balancer = table.byName.get(e.service)?.balancer;
    const replica = balancer?.replicas.find((r) => r.id === e.id && r.url === e.url);
    if (!replica) continue;
    if (e.kind === "failure") balancer!.remoteFailed(replica, e, now);
    else balancer!.remoteSucceeded(replica, e, now);
  }
}

/** The host's latest active verdict per replica, by service; bounded by the table in force. */
export class VerdictMemory {
  readonly #byService = new Map<string, Map<string, ActiveVerdict>>();
  #count = 0;

  get size(): number {
    return this.#count;
  }

  /** Remembers `verdicts`; forgets those of replicas `table` no longer has once they outnumber its replicas 4 to 1. */
  remember(verdicts: readonly ActiveVerdict[], table: RoutingTable): void {
    for (const v of verdicts) {
      let byKey = this.#byService.get(v.service);
      if (!byKey) {
        byKey = new Map();
        this.#byService.set(v.service, byKey);
      }
      const key = keyOf(v.id, v.url);
      if (!byKey.has(key)) this.#count++;
      byKey.set(key, v);
    }
    if (this.#count > 4 * replicaCount(table)) this.#forget(table);
  }

  *all(): Iterable<ActiveVerdict> {
    for (const byKey of this.#byService.values()) yield* byKey.values();
  }

  /** The verdicts remembered for `services` (a delta's). */
  *of(services: readonly { name: string }[]): Iterable<ActiveVerdict> {
    for (const s of services) yield* this.#byService.get(s.name)?.values() ?? [];
  }

  /** Drops verdicts of replicas `table` no longer has (bounded memory). */
  #forget(table: RoutingTable): void {
    for (const [service, byKey] of this.#byService) {
      const live = new Set(table.byName.get(service)?.balancer.replicas.map((r) => keyOf(r.id, r.url)));
      for (const key of byKey.keys()) {
        if (live.has(key)) continue;
        byKey.delete(key);
        this.#count--;
      }
      if (byKey.size === 0) this.#byService.delete(service);
    }
  }
}

function replicaCount(table: RoutingTable): number {
  let n = 0;
  for (const route of table.byHost.values()) n += route.balancer.replicas.length;
  return n;
}
