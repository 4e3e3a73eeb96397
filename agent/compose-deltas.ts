/**
 * @module
 * Consecutive configuration deltas composed into one (raw, as they came off the wire: validation
 * happens once, on the composition, in `isolate-delta.ts`). When changes arrive faster than a host
 * applies them (a burst of applies and registrations), the deltas waiting behind the one being
 * applied are applied as one: each costs the proxy a pass over its tables, so applying them one by
 * one let a backlog grow without bound, and the last change of a burst waited for every earlier one.
 */

interface RawDelta {
  base_version: number;
  version: number;
  services: { name: string }[];
  removed: string[];
  head?: unknown;
}

/** The shape composition relies on; anything else is left alone (applied, or refused, by itself). */
function raw(candidate: unknown): RawDelta | null {
  const d = candidate as Partial<RawDelta> | null;
  if (typeof d !== "object" || d === null) return null;
  if (!Number.isSafeInteger(d.base_version) || !Number.isSafeInteger(d.version)) return null;
  if (!Array.isArray(d.services) || !Array.isArray(d.removed)) return null;
  if (!d.services.every((s) => typeof (s as { name?: unknown } | null)?.name === "string")) return null;
  if (!d.removed.every((n) => typeof n === "string")) return null;
  return d as RawDelta;
}

/**
 * `first` then `second`, as one delta from `first.base_version` to `second.version`; null when they
 * are not consecutive or either is malformed. A service's last entry wins; one removed and added
 * again is an entry, one added and removed is a removal; the newest envelope wins.
 */
export function composeDeltas(first: unknown, second: unknown): RawDelta | null {
  const a = raw(first);
  const b = raw(second);
  if (!a || !b || b.base_version !== a.version) return null;
  const services = new Map(a.services.map((s) => [s.name, s]));
  const removed = new Set(a.removed);
  for (const name of b.removed) {
    services.delete(name);
    removed.add(name);
  }
  for (const s of b.services) {
    services.set(s.name, s);
    removed.delete(s.name);
  }
  const head = b.head !== undefined ? b.head : a.head;
  return {
    base_version: a.base_version,
    version: b.version,
    services: [...services.values()].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)),
    removed: [...removed].sort(),
    ...(head !== undefined ? { head } : {}),
  };
}
