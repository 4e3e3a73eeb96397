/**
 * @module
 * Reads YAML configuration files and remembers where every node came from, so a schema error can be
 * reported at the line and column the user has to edit (`gateway.dstack.yml:7:11: router.policy: …`).
 */
import { isAlias, isCollection, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, visit } from "yaml";
import type { PathSegment } from "./issues.ts";

export interface Position {
  /** 1-based. */
  line: number;
  /** 1-based. */
  col: number;
}

/**
 * Which end of a mapping entry to point at: `value` for "this value is wrong", `key` for "this key
 * should not be here" (unknown fields), where pointing at the value would be misleading.
 */
export type LocateTarget = "value" | "key";

export interface YamlFile {
  value: unknown;
  /** Where `path` is written; falls back to its nearest existing parent; `null` for an empty document. */
  locate(path: readonly PathSegment[], target?: LocateTarget): Position | null;
}

/** A file that is not well-formed YAML (syntax, duplicate keys, dangling aliases). */
export class YamlError extends Error {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly reason: string;
  constructor(file: string, position: Position, reason: string) {
    super(`${file}:${position.line}:${position.col}: ${reason}`);
    this.name = "YamlError";
    this.file = file;
    this.line = position.line;
    this.col = position.col;
    this.reason = reason;
  }
}

export function parseYamlFile(text: string, filename: string): YamlFile {
  const lineCounter = new LineCounter();
  // uniqueKeys: a duplicated key silently overriding the first is a classic config-file trap.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, col };
  };
  const first = doc.errors[0];
  if (first) {
    const reason =
      first.code === "DUPLICATE_KEY"
        ? `duplicate key ${keyAt(doc, first.pos[0]) ?? ""}`.trim()
        : reasonOf(first.message);
    throw new YamlError(filename, at(first.pos[0]), reason);
  }

  let value: unknown;
  try {
    // A small alias budget: configuration files have no business expanding to megabytes.
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    const offset = firstUnresolvedAlias(doc) ?? 0;
    throw new YamlError(filename, at(offset), reasonOf(e instanceof Error ? e.message : String(e)));
  }

  const locate = (path: readonly PathSegment[], target: LocateTarget = "value"): Position | null => {
    const root = doc.contents;
    if (!root) return null;
    let node: Node = root;
    let keyNode: Node | null = null;
    for (const segment of path) {
      const entry = childOf(node, segment);
      if (!entry) break;
      keyNode = entry.key;
      // `domain:` with nothing after it has an empty value node at the end of the line: the key reads better.
      const value = entry.value && !isEmptyScalar(entry.value) ? entry.value : null;
      node = value ?? entry.key ?? node;
      if (!value) break;
    }
    const chosen = target === "key" && keyNode ? keyNode : node;
    return chosen.range ? at(chosen.range[0]) : null;
  };

  return { value, locate };
}

function childOf(node: Node, segment: PathSegment): { key: Node | null; value: Node | null } | null {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = pair.key;
      const keyValue = isScalar(key) ? key.value : key;
      if (keyValue === segment || (keyValue != null && String(keyValue) === String(segment))) {
        return { key: isScalar(key) || isCollection(key) ? key : null, value: asNode(pair.value) };
      }
    }
    return null;
  }
  if (isSeq(node) && typeof segment === "number") {
    const item = asNode(node.items[segment]);
    return item ? { key: null, value: item } : null;
  }
  return null;
}

function isEmptyScalar(node: Node): boolean {
  return isScalar(node) && node.value === null && node.source === "";
}

function asNode(value: unknown): Node | null {
  return isScalar(value) || isCollection(value) || isAlias(value) ? value : null;
}

function firstUnresolvedAlias(doc: ReturnType<typeof parseDocument>): number | null {
  let offset: number | null = null;
  visit(doc, {
    Alias(_, alias) {
      if (alias.resolve(doc) === undefined && alias.range) {
        offset = alias.range[0];
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return offset;
}

/** The quoted key written at `offset`, for "duplicate key" messages. */
function keyAt(doc: ReturnType<typeof parseDocument>, offset: number): string | null {
  let found: string | null = null;
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) {
        found = JSON.stringify(String(pair.key.value));
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}

/** The library phrases some reasons for its own API ("please use parseAllDocuments()"); users edit files. */
function reasonOf(message: string): string {
  if (message.startsWith("Source contains multiple documents")) return "expected a single YAML document, found several";
  const trimmed = message.replace(/\s+/g, " ").trim();
  return trimmed.charAt(0).toLowerCase() + trimmed.slice(1);
}
