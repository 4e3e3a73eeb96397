/**
 * @module
 * The host's routing state: for every service whose policy keeps state that must be one per host
 * (`round_robin`'s counter, the in-flight loads `power_of_two`, `least_load`, `cache_aware` and
 * `prefix_load` compare, the tree policies' prefix tree, least_load's picks since a scrape), one
 * policy instance and one load per replica. It lives in the
 * proxy's parent process, which answers its child processes' batched questions (`routing-gate.ts`),
 * or in the server itself when it runs without child processes.
 *
 * Every decision takes a lease: the chosen replica's load is +1 from the decision until the process
 * hands the lease back (−1) when the exchange ends. Leases are kept per owner (a child process),
 * so the loads a child held are given back when it dies.
 *
 * `random` keeps nothing (each process decides it itself); a service with no `router:` is plain
 * round robin per process, like nginx's upstreams without a shared zone (no IPC on that path).
 */
import type { ConfigDocument, ConfigService } from "../schema/config-document.ts";
import { sameJson } from "../schema/json.ts";
import type { RouterConfig } from "../schema/router.ts";
import type { ScrapedLoad } from "./engine/replica-scrape.ts";
import { AGREEMENT_TOLERANCE, type Mesh } from "./mesh/mesh.ts";
import { createPolicy, type Policy } from "./policies/index.ts";
import type { Agreement, EngineLoad } from "./policies/policy.ts";

/** Whether a service's router keeps state that must be one per host. */
export const sharesState = (router: RouterConfig | null): boolean => router !== null && router.policy !== "random";

/** A replica as the host's state knows it: its id and the load of the whole host on it. */
export interface HostReplica {
  readonly id: string;
  readonly url: string;
  inFlight: number;
  /** The gateway's other replicas' in-flight requests on it, as their last digests told (`mesh/mesh.ts`). */
  peerInFlight: number;
  /** Its engine's load at the last fresh scrape (`engine/replica-scrape.ts`); null or absent: none fresh. */
  engine?: EngineLoad | null;
}

interface ServiceState {
  readonly router: RouterConfig;
  readonly policy: Policy<HostReplica>;
  readonly replicas: readonly HostReplica[];
  /** The replicas by `replicaKey` (the scraper's answers find theirs without a search). */
  readonly byKey: ReadonlyMap<string, HostReplica>;
  /** The tree policies' prefix tree (what other gateway replicas learned is inserted into it); null for the others. */
  readonly tree: { insert(text: string, tenant: HostReplica): void } | null;
  readonly byId: ReadonlyMap<string, HostReplica>;
}

const replicaKey = (id: string, url: string) => `${id}\u0000${url}`;

/** How the tree policies agree with the gateway's other replicas on new prefixes (`policies/policy.ts`). */
const AGREEMENT: Record<string, Agreement<HostReplica>> = Object.fromEntries(
  Object.entries(AGREEMENT_TOLERANCE).map(([policy, tolerance]) => [
    policy,
    { tolerance, id: (r: HostReplica) => r.id },
  ]),
);

export interface Decision {
  /** The chosen replica's id. */
  id: string;
  /** Hand it to `release` when the exchange ends. */
  lease: number;
}

export class RoutingState {
  #services = new Map<string, ServiceState>();
  /** Owner (0: this process) → lease → the replica it holds a load on. */
  readonly #leases = new Map<number, Map<number, HostReplica>>();
  #nextLease = 1;
  /** The gateway's other replicas' learning (`mesh/mesh.ts`); null: this host is alone. */
  #mesh: Mesh | null = null;

  /** Shares what this host routes with its peers, and learns what they routed (null: stop). */
  setMesh(mesh: Mesh | null): void {
    this.#mesh?.shareLoads(null);
    if (!mesh) for (const s of this.#services.values()) for (const r of s.replicas) r.peerInFlight = 0;
    this.#mesh = mesh;
    mesh?.retain(this.#treeServices());
    mesh?.shareLoads({
      local: () => this.#localLoads(),
      peers: (totals) => {
        for (const [name, s] of this.#services) {
          const byId = totals.get(name);
          for (const r of s.replicas) r.peerInFlight = byId?.get(r.id) ?? 0;
        }
      },
    });
  }

  /** This host's in-flight counts of the services whose policy reads its peers' (prefix_load's `fleetLoadOf`). */
  *#localLoads(): Iterable<{ service: string; id: string; n: number }> {
    for (const [service, s] of this.#services) {
      if (s.router.policy !== "prefix_load") continue;
      for (const r of s.replicas) if (r.inFlight > 0) yield { service, id: r.id, n: r.inFlight };
    }
  }

  #treeServices(): string[] {
    return [...this.#services].filter(([, s]) => s.tree !== null).map(([name]) => name);
  }

  /** Follows a new document: loads and policy state carry over while a replica (id, URL) and the router stay. */
  retain(doc: ConfigDocument | null): void {
    const next = new Map<string, ServiceState>();
    for (const service of doc?.services ?? []) {
      const state = this.#follow(service, this.#services.get(service.name));
      if (state) next.set(service.name, state);
    }
    this.#services = next;
    this.#mesh?.retain(this.#treeServices());
  }

  /** Follows a delta: only the services it changes or removes; every other one keeps its state as it is. */
  retainChanged(changed: readonly ConfigService[], removed: readonly string[]): void {
    let trees = false;
    for (const name of removed) {
      trees ||= this.#services.get(name)?.tree != null;
      this.#services.delete(name);
    }
    for (const service of changed) {
      const before = this.#services.get(service.name);
      const state = this.#follow(service, before);
      trees ||= before?.tree != null || state?.tree != null;
      if (state) this.#services.set(service.name, state);
      else this.#services.delete(service.name);
    }
    if (trees) this.#mesh?.retain(this.#treeServices());
  }

  /** A service's state under `service`, from what it had (loads, policy) while the router stays; null: nothing shared. */
  #follow(service: ConfigService, before: ServiceState | undefined): ServiceState | null {
    if (!sharesState(service.router)) return null;
    const router = service.router!;
    const known = before?.byKey;
    const replicas = service.replicas.map(
      (r): HostReplica =>
        known?.get(replicaKey(r.id, r.url)) ?? { id: r.id, url: r.url, inFlight: 0, peerInFlight: 0, engine: null },
    );
    let policy = before && sameJson(before.router, router) ? before.policy : null;
    if (policy) policy.retain(replicas);
    else policy = createPolicy<HostReplica>(router, replicas);
    const byKey = new Map(replicas.map((r) => [replicaKey(r.id, r.url), r]));
    const byId = new Map(replicas.map((r) => [r.id, r]));
    const tree = "tree" in policy ? (policy.tree as ServiceState["tree"]) : null;
    return { router, policy, replicas, byKey, byId, tree };
  }

  /**
   * The policy's choice among the service's replicas whose ids are in `eligible` (null: all), its
   * load +1 under a new lease of `owner`; null when the service or every eligible id is unknown
   * here (the asker's document is newer or older: it decides itself).
   */
  decide(
    owner: number,
    service: string,
    text: string,
    eligible: readonly string[] | null,
    now: number,
  ): Decision | null {
    const state = this.#services.get(service);
    if (!state || state.replicas.length === 0) return null;
    let candidates = state.replicas;
    if (eligible !== null) {
      candidates = state.replicas.filter((r) => eligible.includes(r.id));
      if (candidates.length === 0) return null;
    }
    const mesh = this.#mesh;
    if (mesh !== null && state.tree !== null && text !== "") {
      mesh.learn(service, state.tree, text, state.byId);
      // With peers, a new prefix goes where they would send it too; alone, SGLang's random tie-break.
      (state.policy as { agreement?: Agreement<HostReplica> | null }).agreement = mesh.hasPeers()
        ? (AGREEMENT[state.policy.name] ?? null)
        : null;
    }
    const chosen = state.policy.select(candidates, text, now);
    if (mesh !== null && state.tree !== null && text !== "") mesh.routed(service, text, chosen.id);
    chosen.inFlight++;
    const lease = this.#nextLease++;
    let leases = this.#leases.get(owner);
    if (!leases) {
      leases = new Map();
      this.#leases.set(owner, leases);
    }
    leases.set(lease, chosen);
    return { id: chosen.id, lease };
  }

  /** The exchange that took `lease` ended; unknown or returned leases are ignored (exactly once). */
  release(owner: number, lease: number): void {
    const leases = this.#leases.get(owner);
    const replica = leases?.get(lease);
    if (!replica) return;
    leases!.delete(lease);
    replica.inFlight--;
  }

  /** `owner` is gone (a child process died): every load it held is released. */
  forget(owner: number): void {
    const leases = this.#leases.get(owner);
    if (!leases) return;
    this.#leases.delete(owner);
    for (const replica of leases.values()) replica.inFlight--;
  }

  /**
   * A replica's engine load from the scraper: fresh figures (stamped with the host's in-flight count
   * on it now, when the scrape answered: `combinedLoad` adds what the gateway sent it since), or null
   * (stale, failed, unsupported: policies fall back to in-flight). Unknown replicas are ignored.
   */
  setEngine(service: string, id: string, url: string, load: ScrapedLoad | null): void {
    const replica = this.#services.get(service)?.byKey.get(replicaKey(id, url));
    if (!replica) return;
    replica.engine = load && { ...load, inFlightAtScrape: replica.inFlight };
  }

  /** The host's loads (diagnostics, tests). */
  loads(): { service: string; id: string; inFlight: number; peerInFlight: number; engine: EngineLoad | null }[] {
    return [...this.#services].flatMap(([service, s]) =>
      s.replicas.map((r) => ({
        service,
        id: r.id,
        inFlight: r.inFlight,
        peerInFlight: r.peerInFlight,
        engine: r.engine ?? null,
      })),
    );
  }

  /** The policy state of a service (tests, benchmarks). */
  policy(service: string): Policy<HostReplica> | undefined {
    return this.#services.get(service)?.policy;
  }
}
