import { describe, expect, it } from "vitest";
import { codePointLength, RadixTree } from "./radix-tree.ts";

describe("radix tree (SGLang tree.rs semantics)", () => {
  it("counts characters as code points, as Rust's chars()", () => {
    expect(codePointLength("héllo")).toBe(5);
    expect(codePointLength("a😀b")).toBe(3);
    expect("a😀b".length).toBe(4);
    const tree = new RadixTree<string>();
    tree.insert("😀😀x", "w1");
    expect(tree.size("w1")).toBe(3);
    expect(tree.prefixMatch("😀😀y")).toEqual({ matched: 2, total: 3, tenant: "w1" });
    // Same high surrogate, different low one: the match stops before the pair, not inside it.
    tree.insert("😀😁", "w2");
    expect(tree.prefixMatch("😀😁")).toEqual({ matched: 2, total: 2, tenant: "w2" });
    expect(tree.size("w2")).toBe(2);
    expect(tree.prefixMatch("😀😂")).toEqual({ matched: 1, total: 2, tenant: "w2" });
  });

  it("a tenant's size is the sum of the labels of the nodes it is on, through splits", () => {
    const tree = new RadixTree<string>();
    tree.addTenant("a");
    tree.addTenant("b");
    expect([tree.size("a"), tree.size("b")]).toEqual([0, 0]);
    tree.insert("hello world", "a");
    tree.insert("hello there", "b"); // splits "hello world" into "hello " + "world"
    tree.insert("hello", "a"); // splits "hello " again: no new characters for a
    expect(tree.size("a")).toBe(11);
    expect(tree.size("b")).toBe(11);
    tree.insert("hello world!", "b"); // b gains "world" (5) and "!" (1)
    expect(tree.size("b")).toBe(17);
    expect(tree.size("a")).toBe(11);
  });

  it("prefix match counts a partial label and names the node's last writer", () => {
    const tree = new RadixTree<string>();
    expect(tree.prefixMatch("abc")).toEqual({ matched: 0, total: 3, tenant: undefined });
    tree.insert("abcdef", "a");
    expect(tree.prefixMatch("abcxyz")).toEqual({ matched: 3, total: 6, tenant: "a" });
    tree.insert("abcdef", "b");
    expect(tree.prefixMatch("abcdef").tenant).toBe("b");
    tree.insert("abcdef", "a");
    expect(tree.prefixMatch("abcdef").tenant).toBe("a");
    expect(tree.prefixMatch("")).toEqual({ matched: 0, total: 0, tenant: undefined });
    expect(tree.prefixMatch("zzz").matched).toBe(0);
  });

  it("falls back to a remaining tenant when the last writer was evicted from the node", () => {
    const tree = new RadixTree<string>();
    tree.insert("shared-prefix-one", "a");
    tree.insert("shared-prefix-two", "b");
    tree.removeTenant("b");
    expect(tree.prefixMatch("shared-prefix-two")).toEqual({ matched: 14, total: 17, tenant: "a" });
  });

  it("evicts least recently used leaves of tenants over budget, parents once they become leaves", () => {
    const tree = new RadixTree<string>();
    tree.insert("aaaa1111", "w"); // oldest
    tree.insert("bbbb2222", "w");
    tree.insert("aaaa3333", "w"); // splits aaaa | 1111, 3333; refreshes aaaa
    tree.insert("cccc4444", "w"); // newest
    expect(tree.size("w")).toBe(28);
    tree.evict(20);
    // Oldest leaf first: 1111 (28 → 24), then bbbb2222 (→ 16 ≤ 20): stop.
    expect(tree.size("w")).toBe(16);
    expect(tree.prefixMatch("aaaa1111").matched).toBe(4);
    expect(tree.prefixMatch("bbbb2222").matched).toBe(0);
    expect(tree.prefixMatch("aaaa3333").matched).toBe(8);
    expect(tree.prefixMatch("cccc4444").matched).toBe(8);
    tree.evict(8);
    // 3333 then aaaa (now a leaf of w, 12 → 8), leaving the newest leaf.
    expect(tree.size("w")).toBe(8);
    expect(tree.prefixMatch("aaaa3333").matched).toBe(0);
    expect(tree.prefixMatch("cccc4444").matched).toBe(8);
  });

  it("evicts per tenant: a shared node stays while another tenant holds it", () => {
    const tree = new RadixTree<string>();
    tree.insert("system prompt A", "big");
    tree.insert("system prompt B", "big");
    tree.insert("system prompt A", "small");
    tree.evict(15);
    // big (16 chars: "system prompt " + A + B) loses its oldest leaf "A" only; small (15) keeps all.
    expect(tree.size("big")).toBe(15);
    expect(tree.size("small")).toBe(15);
    expect(tree.prefixMatch("system prompt A")).toEqual({ matched: 15, total: 15, tenant: "small" });
    tree.evict(0);
    expect(tree.size("big")).toBe(0);
    expect(tree.size("small")).toBe(0);
    expect(tree.prefixMatch("system prompt A").matched).toBe(0);
  });

  it("removes a tenant and the nodes only it held", () => {
    const tree = new RadixTree<string>();
    tree.insert("abc", "a");
    tree.insert("abd", "b");
    tree.removeTenant("a");
    expect([...tree.tenants()]).toEqual(["b"]);
    expect(tree.prefixMatch("abc")).toEqual({ matched: 2, total: 3, tenant: "b" });
    expect(tree.size("a")).toBe(0);
  });
});

describe("matchEach", () => {
  it("gives each tenant its own longest prefix in one walk, partial labels included", () => {
    const t = new RadixTree<string>();
    t.insert("hello world", "a");
    t.insert("hello there", "b");
    t.insert("help", "c");
    const m: number[] = [];
    expect(t.matchEach("hello world!", ["a", "b", "c", "d"], m)).toBe(12);
    expect(m).toEqual([11, 6, 3, 0]);
    expect(t.matchEach("hello wxyz", ["b", "a"], m)).toBe(10);
    // `matched` is a scratch array: only its first tenants.length entries are written.
    expect(m.slice(0, 2)).toEqual([6, 7]);
    expect(t.matchEach("", ["a"], m)).toBe(0);
    expect(m[0]).toBe(0);
  });
});
