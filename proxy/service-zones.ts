/**
 * @module
 * The host's rate-limit zones as the pool's parent follows them without a routing table: each
 * service's zone ids, so a delta drops the zones of the services it changes or removes and adds
 * theirs now (`ZoneRegistry.retainChanged`) without compiling every service's rules again; a whole
 * document (and a rollback) follows every service (`ZoneRegistry.retain`). A zone whose rule stays
 * keeps its buckets either way.
 */
import type { ConfigService } from "../schema/config-document.ts";
import { compileRateLimits } from "./rate-limit.ts";
import type { ZoneRegistry, ZoneSpec } from "./rate-limit-store.ts";

export class ServiceZones {
  readonly #registry: ZoneRegistry;
  readonly #ids = new Map<string, string[]>();

  constructor(registry: ZoneRegistry) {
    this.#registry = registry;
  }

  /** A whole document's services: O(services). */
  retain(services: readonly ConfigService[]): void {
    this.#ids.clear();
    this.#registry.retain(this.#compile(services));
  }

  /** A delta's: O(changed). */
  retainChanged(changed: readonly ConfigService[], removed: readonly string[]): void {
    const dropped: string[] = [];
    for (const name of [...removed, ...changed.map((s) => s.name)]) {
      dropped.push(...(this.#ids.get(name) ?? []));
      this.#ids.delete(name);
    }
    this.#registry.retainChanged(this.#compile(changed), dropped);
  }

  #compile(services: readonly ConfigService[]): ZoneSpec[] {
    const zones: ZoneSpec[] = [];
    for (const service of services) {
      const specs = compileRateLimits(service).map((rule) => rule.zone);
      if (specs.length > 0)
        this.#ids.set(
          service.name,
          specs.map((z) => z.id),
        );
      zones.push(...specs);
    }
    return zones;
  }
}
