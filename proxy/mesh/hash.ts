/**
 * @module
 * What a gateway host tells its peers about the routing texts it sent, without the texts: 53-bit
 * hashes of a text's prefixes at block boundaries (every `BLOCK` UTF-16 units), chained (the hash
 * at block j covers the whole prefix up to it), so equal prefixes hash equal on every host.
 *
 * A digest carries a sparse ladder of them (blocks 1, 2, 3, 4, 6, 8, 12, 16, 24, … and the last),
 * at most `MAX_LADDER`: a peer recognises any prefix of the text to within a third of its length
 * (the deepest ladder rung at or below it), with O(log length) numbers per text instead of the text.
 * Prompts never leave the host; a hash reveals a prompt only to someone who can already guess it.
 */
import { MAX_LADDER } from "../../schema/mesh.ts";

export { MAX_LADDER };

/** UTF-16 units per block of a prefix hash. */
export const BLOCK = 32;

const SEED_A = 0x811c9dc5;
const SEED_B = 0x01000193 ^ 0x5bd1e995;

/** The 53-bit value of two FNV-1a lanes. */
const combine = (a: number, b: number): number => (a & 0x1fffff) * 0x1_0000_0000 + (b >>> 0);

/** Is `j` (blocks, ≥ 1) a rung of the ladder: 2^k or 3 × 2^(k−1)? */
export function isRung(j: number): boolean {
  if ((j & (j - 1)) === 0) return true;
  if (j % 3 !== 0) return false;
  const h = j / 3;
  return (h & (h - 1)) === 0;
}

/** Prefix hashes of `text` at its ladder's rungs and at its last whole block, shallowest first. */
export function prefixLadder(text: string): number[] {
  const blocks = Math.floor(text.length / BLOCK);
  const out: number[] = [];
  eachPrefixHash(text, blocks, (hash, units) => {
    const j = units / BLOCK;
    if (j === blocks || isRung(j)) out.push(hash);
    return true;
  });
  return out.length > MAX_LADDER ? [...out.slice(0, MAX_LADDER - 1), out[out.length - 1]!] : out;
}

/**
 * Calls `visit(hash, units)` for the prefix hash at every block boundary of `text` (units: UTF-16
 * units covered), up to `maxBlocks` blocks; stops when `visit` returns false.
 */
export function eachPrefixHash(text: string, maxBlocks: number, visit: (hash: number, units: number) => boolean): void {
  const blocks = Math.min(maxBlocks, Math.floor(text.length / BLOCK));
  let a = SEED_A;
  let b = SEED_B;
  for (let j = 1; j <= blocks; j++) {
    const end = j * BLOCK;
    for (let i = end - BLOCK; i < end; i++) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
    }
    if (!visit(combine(a, b), end)) return;
  }
}

/** A rate-limit key's pseudonym in a digest (keys can be API keys: they do not leave the host either). */
export function keyHash(zone: string, key: string): number {
  let a = SEED_A;
  let b = SEED_B;
  const s = `${zone}\u0000${key}`;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return combine(a, b);
}
