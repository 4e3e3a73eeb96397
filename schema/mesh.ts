/**
 * @module
 * A mesh digest: what one gateway host routed and admitted since its last digest, sent every
 * `DIGEST_INTERVAL_MS` over its control-plane socket; the gateway's Durable Object relays it to
 * the gateway's other hosts (`durable-objects/mesh-relay.ts`). Bounded on both ends: the sender
 * caps and samples (`proxy/mesh/mesh.ts`), the object and every receiver validate it against this schema (a
 * digest over the bounds is dropped whole, never half applied).
 */
import * as v from "valibot";

/** Most prefix hashes per routing text in a digest (`proxy/mesh/hash.ts`'s ladder). */
export const MAX_LADDER = 48;

/** How often a host sends what it learned (the relay's delay adds to it). */
export const DIGEST_INTERVAL_MS = 500;
/** Most routing decisions per digest; beyond, a uniform sample of the interval's (reservoir). */
export const MAX_DIGEST_ROUTES = 256;
/** Most rate-limit keys per digest; keys first admitted after the cap wait for the next digest. */
export const MAX_DIGEST_CHARGES = 2048;
/** Most requests one key can be charged per digest (a bucket's excess is capped anyway). */
export const MAX_CHARGE = 1_000_000;
/** Most (service, replica) in-flight counts per digest; a host with more sends the first (few hosts do). */
export const MAX_DIGEST_LOADS = 1024;
/** Most requests in flight one host can report on one replica. */
export const MAX_IN_FLIGHT = 1_000_000;

const Hash = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));

export const MeshRoute = v.object({
  /** Service. */
  s: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
  /** The replica id it went to. */
  r: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  /** Whole blocks of the routing text (`proxy/mesh/hash.ts`). */
  b: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(2 ** 30)),
  /** Prefix hashes at the ladder's rungs. */
  h: v.pipe(v.array(Hash), v.minLength(1), v.maxLength(MAX_LADDER)),
});

export const MeshCharge = v.object({
  /** Rate-limit zone id. */
  z: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
  /** `keyHash(zone, key)` (`proxy/mesh/hash.ts`). */
  k: Hash,
  /** Requests admitted under the key since the last digest. */
  n: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_CHARGE)),
});

export const MeshLoad = v.object({
  /** Service. */
  s: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
  /** Replica id. */
  r: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  /** Requests the sender has in flight on it now (a replica it has none on is left out). */
  n: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_IN_FLIGHT)),
});

export type MeshLoad = v.InferOutput<typeof MeshLoad>;

export const MeshDigest = v.pipe(
  v.object({
    routes: v.pipe(v.array(MeshRoute), v.maxLength(MAX_DIGEST_ROUTES)),
    charges: v.pipe(v.array(MeshCharge), v.maxLength(MAX_DIGEST_CHARGES)),
    /** Decisions of the interval left out of `routes` by the sample. */
    sampled_out: v.pipe(v.number(), v.integer(), v.minValue(0)),
    /**
     * The sender, a random name it draws at start: a peer's `loads` replace that sender's last ones.
     * Absent in digests of hosts that share no loads (before this field).
     */
    origin: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
    /**
     * The sender's in-flight requests per (service, replica) at the digest, all of them (an empty
     * list: none anywhere); a receiver adds them to its own in the policies' load.
     */
    loads: v.optional(v.pipe(v.array(MeshLoad), v.maxLength(MAX_DIGEST_LOADS))),
  }),
  v.check((d) => d.loads === undefined || d.origin !== undefined, "loads need an origin"),
);
export type MeshDigest = v.InferOutput<typeof MeshDigest>;
