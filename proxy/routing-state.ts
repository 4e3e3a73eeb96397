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
 *
 * A PD service (docs/pd.md) has, besides its own state (its requests on other paths), one state per
 * role under `pdSideKey`: its prefill replicas with `prefill_policy`, its decode replicas with
 * `decode_policy`. The replicas are the same objects in all three, so a replica has one load and one
 * engine signal whichever decision it takes. The role states are this host's own: they are not shared
 * over the mesh (their peers' loads and prefixes are not added).
 */
import type { ConfigDocument, ConfigService } from "../schema/config-document.ts";
import { sameJson } from "../schema/json.ts";
import { pdRouting, type RouterConfig } from "../schema/router.ts";
import type { ScrapedLoad } from "./engine/replica-scrape.ts";
import { AGREEMENT_TOLERANCE, type Mesh } from "./mesh/mesh.ts";
import { type PdSide, pdSideKey, pdSideRouter } from "./pd/pd-side.ts";
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
  /** A PD service's replica: its role (set with each document). */
  role?: PdSide;
  /** Its engine's load at the last fresh scrape (`engine/replica-scrape.ts`); null or absent: none fresh. */
  engine?: EngineLoad | null;
}

interface ServiceState {
  readonly router: RouterConfig;
  readonly policy: Policy<HostReplica>;
  readonly replicas: readonly HostReplica[];
  /** A PD service's role state (`pdSideKey`), else null. */
  readonly role: PdSide | null;
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
  /** By service name, and by `pdSideKey` for a PD service's roles. */
  #services = new Map<string, ServiceState>();
  /** Each service's replicas by `replicaKey` (shared by its states; the scraper's answers find theirs without a search). */
  #replicas = new Map<string, ReadonlyMap<string, HostReplica>>();
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
          if (s.role !== null) continue;
          const byId = totals.get(name);
          for (const r of s.replicas) r.peerInFlight = byId?.get(r.id) ?? 0;
        }
      },
    });
  }

  /** This host's in-flight counts of the services whose policy reads its peers' (prefix_load's `fleetLoadOf`). */
  *#localLoads(): Iterable<{ service: string; id: string; n: number }> {
    for (const [service, s] of this.#services) {
      if (s.role !== null || s.router.policy !== "prefix_load") continue;
      for (const r of s.replicas) if (r.inFlight > 0) yield { service, id: r.id, n: r.inFlight };
    }
  }

  #treeServices(): string[] {
    return [...this.#services].filter(([, s]) => s.tree !== null && s.role === null).map(([name]) => name);
  }

  /** Follows a new document: loads and policy state carry over while a replica (id, URL) and the router stay. */
  retain(doc: ConfigDocument | null): void {
    const next = new Map<string, ServiceState>();
    const nextReplicas = new Map<string, ReadonlyMap<string, HostReplica>>();
    for (const service of doc?.services ?? []) this.#follow(service, next, nextReplicas);
    this.#services = next;
    this.#replicas = nextReplicas;
    this.#mesh?.retain(this.#treeServices());
  }

  /** Follows a delta: only the services it changes or removes; every other one keeps its state as it is. */
  retainChanged(changed: readonly ConfigService[], removed: readonly string[]): void {
    const drop = (name: string) => {
      for (const key of [name, pdSideKey(name, "prefill"), pdSideKey(name, "decode")]) this.#services.delete(key);
      this.#replicas.delete(name);
    };
    for (const name of removed) drop(name);
    const trees: string[] = [];
    const others: string[] = [...removed];
    for (const service of changed) {
      // The service's states are rebuilt from what it had (the policies keep theirs while the router stays).
      const next = new Map<string, ServiceState>();
      const nextReplicas = new Map<string, ReadonlyMap<string, HostReplica>>();
      this.#follow(service, next, nextReplicas);
      drop(service.name);
      for (const [key, state] of next) this.#services.set(key, state);
      for (const [name, replicas] of nextReplicas) this.#replicas.set(name, replicas);
      const own = next.get(service.name);
      if (own?.tree != null && own.role === null) trees.push(service.name);
      else others.push(service.name);
    }
    // The mesh follows the changed services only (a walk of every service per delta is what this avoids).
    this.#mesh?.retainChanged(trees, others);
  }

  /** One service's states (its own, and a PD service's per role) into `next`, from what it had. */
  #follow(
    service: ConfigService,
    next: Map<string, ServiceState>,
    nextReplicas: Map<string, ReadonlyMap<string, HostReplica>>,
  ): void {
    const router = service.router;
    if (!router) return;
    const pd = pdRouting(router);
    const sides = (["prefill", "decode"] as const).filter((side) => pd && sharesState(pdSideRouter(router, side)));
    if (!sharesState(router) && sides.length === 0) return;
    const known = this.#replicas.get(service.name);
    const replicas = service.replicas.map(
      (r): HostReplica =>
        known?.get(replicaKey(r.id, r.url)) ?? { id: r.id, url: r.url, inFlight: 0, peerInFlight: 0, engine: null },
    );
    replicas.forEach((r, i) => {
      const role = pd ? service.replicas[i]!.role : undefined;
      if (role === "prefill" || role === "decode") r.role = role;
      else delete r.role;
    });
    nextReplicas.set(service.name, new Map(replicas.map((r) => [replicaKey(r.id, r.url), r])));
    if (sharesState(router)) next.set(service.name, this.#state(service.name, router, replicas, null));
    for (const side of sides) {
      const members = replicas.filter((_, i) => service.replicas[i]!.role === side);
      const key = pdSideKey(service.name, side);
      next.set(key, this.#state(key, pdSideRouter(router, side), members, side));
    }
  }

  /** A state for `replicas` under `key`, keeping the policy there while its router is unchanged. */
  #state(key: string, router: RouterConfig, replicas: HostReplica[], role: PdSide | null): ServiceState {
    const before = this.#services.get(key);
    let policy = before && sameJson(before.router, router) ? before.policy : null;
    if (policy) policy.retain(replicas);
    else policy = createPolicy<HostReplica>(router, replicas);
    const byId = new Map(replicas.map((r) => [r.id, r]));
    const tree = "tree" in policy ? (policy.tree as ServiceState["tree"]) : null;
    return { router, policy, replicas, role, byId, tree };
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
    const mesh = state.role === null ? this.#mesh : null;
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
    const replica = this.#replicas.get(service)?.get(replicaKey(id, url));
    if (!replica) return;
    replica.engine = load && { ...load, inFlightAtScrape: replica.inFlight };
  }

  /** The host's loads (diagnostics, tests): each replica once, a PD service's with its role. */
  loads(): {
    service: string;
    id: string;
    role?: PdSide;
    inFlight: number;
    peerInFlight: number;
    engine: EngineLoad | null;
  }[] {
    return [...this.#replicas].flatMap(([service, byKey]) =>
      [...byKey.values()].map((r) => ({
        service,
        id: r.id,
        ...(r.role ? { role: r.role } : {}),
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
