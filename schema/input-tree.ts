/**
 * @module
 * Checks every input document (API bodies, configuration files) gets before its schema sees it:
 *
 * - Keys `__proto__`, `constructor` and `prototype` are unknown fields. `JSON.parse` (and the YAML
 *   reader) keep them as own properties, but valibot skips them while walking objects and records
 *   (its `_isValidObjectKey`), so a strict mapping would silently drop them where any other unknown
 *   key is refused.
 * - Nesting is bounded: code downstream (diffs, canonical forms, structured clones) recurses, and a
 *   few thousand levels of `{"a":{"a":…}}` overflow its stack. No document of ours nests deeper than
 *   a dozen levels.
 *
 * The walk itself is iterative, so it cannot overflow on what it is there to refuse.
 */
import type { FieldIssue, PathSegment } from "./field-issue.ts";

export const MAX_INPUT_DEPTH = 64;

const RESERVED_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/**
 * The issues of `input`'s shape: one for nesting beyond {@link MAX_INPUT_DEPTH} (reported alone,
 * since nothing else may walk such a value), else one per reserved key.
 */
export function inputTreeIssues(input: unknown): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const stack: { value: unknown; path: PathSegment[] }[] = [{ value: input, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== "object") continue;
    if (path.length >= MAX_INPUT_DEPTH) {
      return [{ path, message: `nested deeper than ${MAX_INPUT_DEPTH} levels` }];
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: [...path, i] });
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      if (RESERVED_KEYS.has(key)) issues.push({ path: [...path, key], message: "unknown field" });
      else stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, key] });
    }
  }
  return issues;
}
