/**
 * @module
 * What changed in a gateway's configuration document between two versions: Envoy's delta xDS in
 * this protocol's terms. The object sends a delta to an agent that holds `base_version`; the agent
 * applies it only on top of exactly that version (anything else is a gap: it asks to resync), and
 * answers with the ACK/NACK of `version` as for a whole document. The version is the nonce: a
 * version names exactly one state of the document, so an ACK/NACK of it names the delta it answers.
 *
 * A delta carries services whole (a replica registered re-sends its service, not the gateway), the
 * names of services removed, and the document's envelope (`head`) only when something outside the
 * services changed. A change that touches every service (the gateway's domain, router or
 * certificate) is sent as a whole document instead.
 *
 * Only agents that say they take deltas get them: the socket's upgrade carries `?deltas=1`
 * (`GET /api/v1/agent/connect?deltas=1`), the pull `?since=N`. Older agents get whole documents.
 */
import * as v from "valibot";
import { ConfigDocument, ConfigService } from "./config-document.ts";

const Version = v.pipe(v.number(), v.integer(), v.minValue(1));

/** The document without its version and services: what a delta re-sends when it changed. */
export const ConfigHead = v.omit(ConfigDocument, ["version", "services"]);
export type ConfigHead = v.InferOutput<typeof ConfigHead>;

export const ConfigDelta = v.pipe(
  v.object({
    /** The version this delta applies on top of (the agent's applied version). */
    base_version: Version,
    /** The version after it. */
    version: Version,
    /** Services added or changed since `base_version`, whole, in name order. */
    services: v.array(ConfigService),
    /** Names of services removed since `base_version`. */
    removed: v.array(v.string()),
    /** The envelope, when any of it changed since `base_version`; absent: unchanged. */
    head: v.optional(ConfigHead),
  }),
  v.check((d) => d.version > d.base_version, "version: expected a version after base_version"),
);
export type ConfigDelta = v.InferOutput<typeof ConfigDelta>;

/**
 * The answer to an agent's pull with `?since=<applied version>` (`GET /api/v1/agent/config`): the
 * same messages the socket pushes. Without `since` the pull answers a whole document, as it always did.
 */
export type ConfigAnswer = { type: "config"; document: ConfigDocument } | { type: "config_delta"; delta: ConfigDelta };
