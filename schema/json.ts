/**
 * @module
 * Structural equality of JSON values: key order does not matter, and `undefined` equals `null`
 * (a stored configuration writes absent fields as null). Used to diff configurations and to
 * check a client's plan against the stored resource.
 */

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value ?? null;
}

export const sameJson = (a: unknown, b: unknown): boolean =>
  JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
