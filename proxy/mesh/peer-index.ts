/**
 * @module
 * What the other gateway replicas of this gateway routed, per service, as they told it
 * (`digest.ts`): prefix hash → the ids of the replicas a peer sent that prefix to. Bounded: at most
 * `MAX_PEER_HASHES` hashes per service, the oldest forgotten first.
 *
 * It is read lazily, by the decision that needs it: before the policy runs on a text, the text's
 * prefix hashes are looked up (one pass over the text, only while the index is not empty), and what
 * peers learned is inserted into the service's own prefix tree — the deepest matched prefix per
 * replica — then removed from the index (the tree holds it now, with its eviction). So a peer's
 * knowledge enters the same tree, budget and eviction as the host's own, with no tree of texts the
 * host never saw.
 */
import { eachPrefixHash } from "./hash.ts";

/** Most prefix hashes held per service (≈ 100 B each: a few MB at most per service). */
export const MAX_PEER_HASHES = 50_000;
/** Most replicas remembered per hash (a prefix copied to more replicas than that keeps the latest). */
const MAX_IDS_PER_HASH = 8;

/** A replica's id and how much of a text peers said it holds (UTF-16 units, a whole code point). */
export interface Learned {
  id: string;
  units: number;
}

export class PeerIndex {
  readonly #byHash = new Map<number, string[]>();
  /** Deepest block any entry reached (the lookup walks no further). */
  #maxBlocks = 0;
  readonly #cap: number;

  constructor(cap = MAX_PEER_HASHES) {
    this.#cap = cap;
  }

  get size(): number {
    return this.#byHash.size;
  }

  /** A peer sent a text with these prefix hashes (`prefixLadder`), `blocks` whole blocks long, to replica `id`. */
  add(id: string, ladder: readonly number[], blocks: number): void {
    if (blocks > this.#maxBlocks) this.#maxBlocks = blocks;
    for (const h of ladder) {
      const ids = this.#byHash.get(h);
      if (ids) {
        this.#byHash.delete(h);
        if (!ids.includes(id)) {
          ids.push(id);
          if (ids.length > MAX_IDS_PER_HASH) ids.shift();
        }
        this.#byHash.set(h, ids);
        continue;
      }
      if (this.#byHash.size >= this.#cap) this.#byHash.delete(this.#byHash.keys().next().value!);
      this.#byHash.set(h, [id]);
    }
  }

  /**
   * The deepest prefix of `text` peers reported per replica; the entries matched are removed (the
   * caller inserts them into its tree). Empty when nothing matched.
   */
  take(text: string): Learned[] {
    if (this.#byHash.size === 0) return [];
    let out: Learned[] | null = null;
    const byHash = this.#byHash;
    eachPrefixHash(text, this.#maxBlocks, (h, units) => {
      const ids = byHash.get(h);
      if (!ids) return true;
      byHash.delete(h);
      out ??= [];
      for (const id of ids) {
        const known = out.find((l) => l.id === id);
        if (known) known.units = units;
        else out.push({ id, units });
      }
      return true;
    });
    if (out === null) return [];
    for (const l of out as Learned[]) {
      // Never end inside a surrogate pair (the tree counts code points).
      const c = text.charCodeAt(l.units - 1);
      if (c >= 0xd800 && c <= 0xdbff) l.units--;
    }
    return out;
  }

  clear(): void {
    this.#byHash.clear();
    this.#maxBlocks = 0;
  }
}

/** What `importLearned` needs of a tree: `RadixTree`'s insert. */
export interface LearningTree<T> {
  insert(text: string, tenant: T): void;
}

/**
 * Inserts into `tree` what peers learned of `text`'s prefixes, for the replicas `byId` knows;
 * returns how many prefixes it inserted.
 */
export function importLearned<T>(
  index: PeerIndex,
  tree: LearningTree<T>,
  text: string,
  byId: (id: string) => T | undefined,
): number {
  let n = 0;
  for (const l of index.take(text)) {
    const tenant = byId(l.id);
    if (tenant === undefined || l.units <= 0) continue;
    tree.insert(text.slice(0, l.units), tenant);
    n++;
  }
  return n;
}
