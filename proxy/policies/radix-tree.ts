/**
 * @module
 * SGLang's approximate multi-tenant radix tree (`sgl-router/src/policies/tree.rs`): the routing
 * texts the proxy sent to each worker ("tenant"), sharing common prefixes. It learns only from the
 * proxy's own decisions; nothing is asked of the workers.
 *
 * Characters are Unicode code points, as Rust's `chars()`: labels are JS strings walked by UTF-16
 * unit, but never split inside a surrogate pair, and every count is in code points. A tenant's
 * size is the sum of the label lengths of the nodes it is on; eviction removes a tenant's
 * least-recently-used leaves until it is within its budget. Timestamps are an epoch counter
 * (SGLang ≥ 0.3), so order does not depend on the clock.
 */

const HIGH_SURROGATE = /[\uD800-\uDBFF]/;

/** Code points in `s` (a lone surrogate counts as one, as `Array.from` does). */
export function codePointLength(s: string): number {
  if (!HIGH_SURROGATE.test(s)) return s.length;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/**
 * A copy that does not keep `s`'s parent string alive: V8 slices share their parent, so a label cut
 * from a 32 K prompt would otherwise hold the whole prompt (and the tree's memory budget would lie).
 * Flattening the concatenation writes a fresh string.
 */
function own(s: string): string {
  return s.length < 13 ? s : ` ${s}`.slice(1);
}

class Node<T> {
  label: string;
  /** Code points in `label`. */
  chars: number;
  parent: Node<T> | null;
  /** By the first code point of the child's label. */
  children: Map<number, Node<T>> | null = null;
  /** Tenant → epoch of its last insert through this node. */
  tenants = new Map<T, number>();
  /** The tenant that last cached this node: the answer of a match ending here (SGLang ≥ 0.3). */
  lastTenant: T | undefined = undefined;

  constructor(label: string, chars: number, parent: Node<T> | null) {
    this.label = label;
    this.chars = chars;
    this.parent = parent;
  }

  /** The tenant is on this node and on none of its children: its eviction candidate. */
  isLeafOf(tenant: T): boolean {
    if (!this.tenants.has(tenant)) return false;
    if (this.children) for (const child of this.children.values()) if (child.tenants.has(tenant)) return false;
    return true;
  }
}

/** Chunk size for comparing labels: slice equality is a memory compare, far faster than startsWith. */
const CHUNK = 256;

/** UTF-16 units `label` and `text` (from `at`) share, backed off so no surrogate pair is cut. */
function sharedUnits(label: string, text: string, at: number): number {
  const max = Math.min(label.length, text.length - at);
  if (max === label.length && text.slice(at, at + max) === label) return max;
  let k = 0;
  while (k + CHUNK <= max && label.slice(k, k + CHUNK) === text.slice(at + k, at + k + CHUNK)) k += CHUNK;
  while (k < max && label.charCodeAt(k) === text.charCodeAt(at + k)) k++;
  if (k > 0 && k < label.length) {
    const c = label.charCodeAt(k - 1);
    if (c >= 0xd800 && c <= 0xdbff) k--;
  }
  return k;
}

export interface PrefixMatch<T> {
  /** Code points of the text found in the tree. */
  matched: number;
  /** Code points of the whole text. */
  total: number;
  /** A tenant that holds the matched prefix; undefined when nothing matched. */
  tenant: T | undefined;
}

export class RadixTree<T> {
  readonly #root = new Node<T>("", 0, null);
  readonly #size = new Map<T, number>();
  #epoch = 0;

  /** Registers a tenant with nothing cached (SGLang's `insert("", url)` for every worker). */
  addTenant(tenant: T): void {
    this.#root.tenants.set(tenant, 0);
    if (!this.#size.has(tenant)) this.#size.set(tenant, 0);
  }

  /** Characters held for `tenant` (0 for an unknown tenant). */
  size(tenant: T): number {
    return this.#size.get(tenant) ?? 0;
  }

  tenants(): IterableIterator<T> {
    return this.#size.keys();
  }

  /** Records that `tenant` was sent `text`. */
  insert(text: string, tenant: T): void {
    const epoch = ++this.#epoch;
    this.addTenant(tenant);
    let added = 0;
    let node = this.#root;
    let i = 0;
    while (i < text.length) {
      const key = text.codePointAt(i)!;
      const child = node.children?.get(key);
      if (child === undefined) {
        const label = own(text.slice(i));
        const leaf = new Node<T>(label, codePointLength(label), node);
        leaf.tenants.set(tenant, epoch);
        leaf.lastTenant = tenant;
        node.children ??= new Map();
        node.children.set(key, leaf);
        added += leaf.chars;
        break;
      }
      const k = sharedUnits(child.label, text, i);
      let next = child;
      if (k < child.label.length) {
        // Split: the shared part becomes a node of its own, owned by whoever owned the whole.
        const head = own(child.label.slice(0, k));
        const mid = new Node<T>(head, codePointLength(head), node);
        mid.tenants = new Map(child.tenants);
        child.label = own(child.label.slice(k));
        child.chars -= mid.chars;
        child.parent = mid;
        mid.children = new Map([[child.label.codePointAt(0)!, child]]);
        node.children!.set(key, mid);
        next = mid;
      }
      if (!next.tenants.has(tenant)) added += next.chars;
      next.tenants.set(tenant, epoch);
      next.lastTenant = tenant;
      node = next;
      i += k;
    }
    if (added > 0) this.#size.set(tenant, this.#size.get(tenant)! + added);
  }

  /**
   * The longest prefix of `text` in the tree and a tenant holding it. A match that ends inside a
   * label still counts the shared characters; the tenant is the node's last writer if it is still
   * there, else its first.
   */
  prefixMatch(text: string): PrefixMatch<T> {
    const astral = HIGH_SURROGATE.test(text);
    const total = astral ? codePointLength(text) : text.length;
    let node = this.#root;
    let matched = 0;
    let i = 0;
    while (i < text.length) {
      const child = node.children?.get(text.codePointAt(i)!);
      if (child === undefined) break;
      const k = sharedUnits(child.label, text, i);
      node = child;
      if (k < child.label.length) {
        matched += astral ? codePointLength(text.slice(i, i + k)) : k;
        break;
      }
      matched += child.chars;
      i += k;
    }
    if (node === this.#root) return { matched: 0, total, tenant: undefined };
    const last = node.lastTenant;
    const tenant = last !== undefined && node.tenants.has(last) ? last : node.tenants.keys().next().value;
    return { matched, total, tenant };
  }

  /**
   * For each of `tenants`, the code points of `text`'s longest prefix that tenant holds, into
   * `matched` (same order; entries past `tenants.length` are left alone); returns the text's length in code points. One walk down the text's
   * path: a tenant's match is the depth of the deepest node on it that holds the tenant (a match
   * ending inside a label counts the shared characters, as {@link prefixMatch}). Eviction removes a
   * tenant from leaves upward, so a node's tenants are among its parent's and the walk stops at the
   * first node holding none of them.
   */
  matchEach(text: string, tenants: readonly T[], matched: number[]): number {
    const astral = HIGH_SURROGATE.test(text);
    const total = astral ? codePointLength(text) : text.length;
    const n = tenants.length;
    for (let j = 0; j < n; j++) matched[j] = 0;
    let node = this.#root;
    let depth = 0;
    let i = 0;
    while (i < text.length) {
      const child = node.children?.get(text.codePointAt(i)!);
      if (child === undefined) break;
      const k = sharedUnits(child.label, text, i);
      const partial = k < child.label.length;
      depth += partial ? (astral ? codePointLength(text.slice(i, i + k)) : k) : child.chars;
      let held = false;
      const on = child.tenants;
      for (let j = 0; j < n; j++) {
        if (on.has(tenants[j]!)) {
          matched[j] = depth;
          held = true;
        }
      }
      if (!held || partial) break;
      node = child;
      i += k;
    }
    return total;
  }

  /** Forgets a tenant (a worker that left): its nodes go when no other tenant holds them. */
  removeTenant(tenant: T): void {
    if (!this.#size.has(tenant)) return;
    this.#size.delete(tenant);
    this.#root.tenants.delete(tenant);
    const stack = [this.#root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (!node.children) continue;
      for (const [key, child] of node.children) {
        if (!child.tenants.delete(tenant)) continue;
        if (child.tenants.size === 0) node.children.delete(key);
        else stack.push(child);
      }
    }
  }

  /** Exactly these tenants from now on: the ones not among them leave the tree, new ones join. */
  retainTenants(tenants: readonly T[]): void {
    const keep = new Set(tenants);
    for (const tenant of [...this.tenants()]) if (!keep.has(tenant)) this.removeTenant(tenant);
    for (const tenant of tenants) this.addTenant(tenant);
  }

  /**
   * SGLang's `evict_tenant_by_size`: every (leaf, tenant) pair goes into a min-heap by last access;
   * popping removes the tenant from the leaf while the tenant is over `maxSize`, and a parent that
   * thereby becomes the tenant's leaf joins the heap.
   */
  evict(maxSize: number): void {
    const heap = new EvictionHeap<T>();
    const stack = [this.#root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.children) for (const child of node.children.values()) stack.push(child);
      if (node === this.#root) continue;
      for (const [tenant, at] of node.tenants) {
        if ((this.#size.get(tenant) ?? 0) > maxSize && node.isLeafOf(tenant)) heap.push(at, node, tenant);
      }
    }
    for (let entry = heap.pop(); entry !== undefined; entry = heap.pop()) {
      const { node, tenant } = entry;
      const size = this.#size.get(tenant);
      if (size === undefined || size <= maxSize || !node.tenants.has(tenant)) continue;
      node.tenants.delete(tenant);
      this.#size.set(tenant, Math.max(0, size - node.chars));
      const parent = node.parent!;
      if (node.tenants.size === 0 && (node.children === null || node.children.size === 0)) {
        parent.children!.delete(node.label.codePointAt(0)!);
      }
      if (parent !== this.#root && parent.isLeafOf(tenant)) heap.push(parent.tenants.get(tenant)!, parent, tenant);
    }
  }
}

interface HeapEntry<T> {
  at: number;
  node: Node<T>;
  tenant: T;
}

/** A binary min-heap by access epoch (least recently used first). */
class EvictionHeap<T> {
  readonly #items: HeapEntry<T>[] = [];

  push(at: number, node: Node<T>, tenant: T): void {
    const items = this.#items;
    items.push({ at, node, tenant });
    let i = items.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (items[up]!.at <= items[i]!.at) break;
      [items[up], items[i]] = [items[i]!, items[up]!];
      i = up;
    }
  }

  pop(): HeapEntry<T> | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && items[l]!.at < items[m]!.at) m = l;
        if (r < items.length && items[r]!.at < items[m]!.at) m = r;
        if (m === i) break;
        [items[m], items[i]] = [items[i]!, items[m]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * When a tree policy evicts (`eviction_interval`, `max_tree_size`): on its first decision once the
 * interval has passed since the last eviction, as SGLang's thread does on a timer — no timer to leak,
 * and no tree grows without decisions. An interval of 0 never evicts.
 */
export class EvictionSchedule {
  #last: number;

  constructor(now: number) {
    this.#last = now;
  }

  /** Evicts `tree` to `maxTreeSize` characters per tenant when due; true when it did. */
  run<T>(tree: RadixTree<T>, intervalSeconds: number, maxTreeSize: number, now: number): boolean {
    if (intervalSeconds <= 0 || now - this.#last < intervalSeconds * 1000) return false;
    this.#last = now;
    tree.evict(maxTreeSize);
    return true;
  }
}
