/**
 * @module
 * A policy made at its first decision. A serving process holds a policy per service, but for a
 * service whose policy keeps host-wide state the host's routing state decides (`routing-state.ts`),
 * and the process's own policy decides only when the host's state does not answer in time
 * (`routing-gate.ts`): most never decide, and a tree policy's empty tree, maps and eviction schedule
 * cost ~1 KiB each (3 MiB of a process's heap at 10,000 services, docs/gateway-host.md#figures).
 */
import type { Loaded, Policy } from "./policy.ts";

export class LazyPolicy<W extends Loaded> implements Policy<W> {
  readonly name: string;
  readonly needsText: boolean;
  #made: Policy<W> | null = null;
  #replicas: readonly W[];
  readonly #make: (replicas: readonly W[]) => Policy<W>;

  /** `name` and `needsText` are those of the policy `make` returns. */
  constructor(name: string, needsText: boolean, replicas: readonly W[], make: (replicas: readonly W[]) => Policy<W>) {
    this.name = name;
    this.needsText = needsText;
    this.#replicas = replicas;
    this.#make = make;
  }

  /** The policy, once a decision made it (its counts are the metrics'); null before. */
  get made(): Policy<W> | null {
    return this.#made;
  }

  select(candidates: readonly W[], text: string, now: number): W {
    this.#made ??= this.#make(this.#replicas);
    return this.#made.select(candidates, text, now);
  }

  retain(replicas: readonly W[]): void {
    if (this.#made) this.#made.retain(replicas);
    else this.#replicas = replicas;
  }
}

/** The policy behind `policy`, or null while a lazy one has made none. */
export function madePolicy<W extends Loaded>(policy: Policy<W>): Policy<W> | null {
  return policy instanceof LazyPolicy ? (policy.made as Policy<W> | null) : policy;
}
