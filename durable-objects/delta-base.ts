/**
 * @module
 * Whether a delta can start from the version an agent holds (pure, so it is unit-tested beside):
 * not from nothing or 0, not from the current version or one the object never reached (its storage
 * was wiped), and not from below `full_version` (a change of every service, or a pruned tombstone,
 * happened after it: only a whole document says what changed).
 */

export interface DeltaVersions {
  config_version: number;
  full_version: number;
}

export function deltaPossible(g: DeltaVersions, since: number | null): since is number {
  return since !== null && since >= 1 && since < g.config_version && since >= g.full_version;
}
