/**
 * @module
 * Validation errors shared by every part: a list of `{path, message}` with a rendering that names the
 * field first (`router.policy: expected one of …`), the way every config and API error is shown.
 */
import * as v from "valibot";
import type { FieldIssue, PathSegment } from "./field-issue.ts";
import { inputTreeIssues } from "./input-tree.ts";

export type { FieldIssue, PathSegment };

export const formatPath = (path: readonly PathSegment[]): string =>
  path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");

export const formatIssue = (issue: FieldIssue): string =>
  issue.path.length > 0 ? `${formatPath(issue.path)}: ${issue.message}` : issue.message;

/** Thrown when a document does not satisfy its schema; carries every issue, first one first. */
export class ValidationError extends Error {
  readonly issues: FieldIssue[];
  constructor(issues: FieldIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "ValidationError";
    this.issues = issues;
  }
  /** The field of the first issue, as the API's `error.field`. */
  get field(): string | undefined {
    const first = this.issues[0];
    return first && first.path.length > 0 ? formatPath(first.path) : undefined;
  }
}

/** valibot issues → our issues. Unknown keys of strict objects are reported under their own path. */
export function fromValibot(issues: readonly v.BaseIssue<unknown>[]): FieldIssue[] {
  const out: FieldIssue[] = [];
  const seen = new Set<string>();
  for (const issue of issues) {
    const path: PathSegment[] = (issue.path ?? []).map((item) => item.key as PathSegment);
    const message = issue.message;
    const key = `${formatPath(path)}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, message });
  }
  return out;
}

/**
 * Throws the issues of `input`'s shape (reserved keys, nesting depth: `input-tree.ts`) before any
 * schema walks it. Every parser of outside input calls this first.
 */
export function checkInputTree(input: unknown): void {
  const issues = inputTreeIssues(input);
  if (issues.length > 0) throw new ValidationError(issues);
}

/** Parses `input` with `schema` or throws a {@link ValidationError}. */
export function parseOrThrow<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> {
  checkInputTree(input);
  const result = v.safeParse(schema, input);
  if (!result.success) throw new ValidationError(fromValibot(result.issues));
  return result.output;
}

/** Human name of a JSON value's type for "expected X, got Y" messages. */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  return String(value);
}

/** Message for a value of the wrong kind: `expected a string, got 5`. */
export const expected = (what: string) => (issue: v.BaseIssue<unknown>) =>
  `expected ${what}, got ${describeType(issue.input)}`;

/** Message for a value outside a set: `expected one of a, b, got "c"`. */
export const oneOf = (values: readonly (string | number)[]) => (issue: v.BaseIssue<unknown>) =>
  `expected one of ${values.join(", ")}, got ${describeType(issue.input)}`;

export const isMapping = (x: unknown): x is Record<string, unknown> =>
  x !== null && typeof x === "object" && !Array.isArray(x);

/**
 * A strict mapping: a list is not a mapping (valibot treats arrays as objects), every unknown key
 * is reported on its own path, and a missing required key says so.
 */
export function mapping<const TEntries extends v.ObjectEntries>(entries: TEntries, what = "a mapping") {
  return v.pipe(
    v.custom<Record<string, unknown>>(isMapping, (issue) => `expected ${what}, got ${describeType(issue.input)}`),
    strictEntries(entries, what),
  );
}

/** The object part of {@link mapping}, for `v.variant` options (which must be plain object schemas). */
export function strictEntries<const TEntries extends v.ObjectEntries>(entries: TEntries, what = "a mapping") {
  const schema = v.objectWithRest(entries, v.never("unknown field"), (issue) =>
    issue.received === "undefined" && issue.expected !== "Object"
      ? "required field is missing"
      : `expected ${what}, got ${describeType(issue.input)}`,
  );
  // Typed as a strict object: the rest schema is `never`, so no extra keys survive parsing.
  return schema as unknown as v.StrictObjectSchema<TEntries, undefined>;
}
