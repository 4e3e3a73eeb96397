/**
 * @module
 * What a routing table derives from all of its routes (the upstream origins, which services declare
 * each model), kept per route so a delta changes it in O(changed) (`routes-delta.ts`) instead of a
 * walk of every route. A whole document builds it once (`routes.ts`); each delta then adds and
 * removes the routes it touches, in place.
 */

/** What the index reads of a route (`routes.ts`'s `ServiceRoute`, which builds on this module). */
export interface IndexedRoute {
  readonly name: string;
  readonly model: { readonly name: string } | null;
  readonly balancer: { readonly replicas: readonly { readonly origin: string }[] };
}

/** The origins of the table's replicas, each counted once per replica that has it. */
export class Origins implements Iterable<string> {
  readonly #counts = new Map<string, number>();

  has(origin: string): boolean {
    return this.#counts.has(origin);
  }

  get size(): number {
    return this.#counts.size;
  }

  [Symbol.iterator](): Iterator<string> {
    return this.#counts.keys();
  }

  add(origin: string): void {
    this.#counts.set(origin, (this.#counts.get(origin) ?? 0) + 1);
  }

  /** One replica fewer with `origin`; true when it was the last. */
  remove(origin: string): boolean {
    const n = this.#counts.get(origin);
    if (n === undefined) return false;
    if (n > 1) {
      this.#counts.set(origin, n - 1);
      return false;
    }
    this.#counts.delete(origin);
    return true;
  }
}

export class TableIndex {
  readonly origins = new Origins();
  /** Model name → the services declaring it. */
  readonly #models = new Map<string, Set<string>>();

  add(route: IndexedRoute): void {
    for (const r of route.balancer.replicas) this.origins.add(r.origin);
    if (!route.model) return;
    let names = this.#models.get(route.model.name);
    if (!names) {
      names = new Set();
      this.#models.set(route.model.name, names);
    }
    names.add(route.name);
  }

  /** Takes `route` out; the origins no replica has any more go to `gone`. */
  remove(route: IndexedRoute, gone: string[]): void {
    for (const r of route.balancer.replicas) if (this.origins.remove(r.origin)) gone.push(r.origin);
    if (!route.model) return;
    const names = this.#models.get(route.model.name);
    names?.delete(route.name);
    if (names?.size === 0) this.#models.delete(route.model.name);
  }

  /**
   * The service that owns `model`: the first in name order of those declaring it (the document's
   * order: the control plane sends services by name), found among them alone.
   */
  modelOwner(model: string): string | undefined {
    let owner: string | undefined;
    for (const name of this.#models.get(model) ?? []) if (owner === undefined || name < owner) owner = name;
    return owner;
  }
}
