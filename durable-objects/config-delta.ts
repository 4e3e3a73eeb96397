/**
 * @module
 * What an agent holding version N gets (`schema/config-delta.ts`): nothing when it is current, a
 * delta built from the changes after N, or a whole document when a delta cannot say what changed
 * (N is 0 or unknown, newer than the object's version, or below `full_version`: a change that
 * touched every service, or a pruned tombstone). A delta costs O(changes): indexed reads of the
 * services changed after N, their replicas only, and the tombstones after N.
 */
import type { ConfigAnswer, ConfigDelta } from "../schema/config-delta.ts";
import { buildConfigDocument, configHead, serviceEntries } from "./config-document.ts";
import { deltaPossible } from "./delta-base.ts";
import type { GatewayContext } from "./gateway-context.ts";
import { documentAcme } from "./project-acme.ts";
import type { GatewayRow } from "./state.ts";

/** The whole document, as an answer. */
export function wholeAnswer(gw: GatewayContext, g: GatewayRow): ConfigAnswer {
  return { type: "config", document: buildConfigDocument(g, gw.services, documentAcme(g, gw.projectAcme)) };
}

/** The delta from `since` to the current version (`deltaPossible` must hold). */
export function buildDelta(gw: GatewayContext, g: GatewayRow, since: number): ConfigDelta {
  const services = serviceEntries(g, gw.services.changedSince(since), gw.services.replicasChangedSince(since));
  return {
    base_version: since,
    version: g.config_version,
    services,
    removed: gw.changes.removedSince(since),
    ...(g.head_version > since ? { head: configHead(g, gw.services, documentAcme(g, gw.projectAcme)) } : {}),
  };
}

/** What an agent at `since` (null: unknown) needs; null when it holds the current version. */
export function configAnswer(gw: GatewayContext, g: GatewayRow, since: number | null): ConfigAnswer | null {
  if (since !== null && since === g.config_version) return null;
  if (!deltaPossible(g, since)) return wholeAnswer(gw, g);
  return { type: "config_delta", delta: buildDelta(gw, g, since) };
}
