/**
 * @module
 * Sizes and durations as users write them (`64MB`, `512k`, `5m`), one parser for every field that
 * takes one.
 */
import * as v from "valibot";
import { describeType, expected } from "./issues.ts";

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
};
const DURATION_UNITS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600 };

/** `64MB`, `512k`, `1048576` → bytes (nginx-style units, powers of 1024). */
export function parseSize(value: number | string): number | null {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? value : null;
  const m = value.trim().match(/^(\d+)\s*([a-zA-Z]*)$/);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  return m && unit !== undefined ? Number(m[1]) * unit : null;
}

/** `300`, `300s`, `5m`, `1h` → seconds. */
export function parseDuration(value: number | string): number | null {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value : null;
  const m = value.trim().match(/^(\d+(?:\.\d+)?)\s*([smh]?)$/);
  const unit = m ? DURATION_UNITS[m[2]!] : undefined;
  return m && unit !== undefined ? Number(m[1]) * unit : null;
}

/** A size up to `max` bytes: always a safe integer, so the configuration document carries it exactly. */
export const size = (max: number, maxText: string) =>
  v.pipe(
    v.union([v.number(), v.string()], expected("a size such as 64MB or a number of bytes")),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const bytes = parseSize(dataset.value);
      if (bytes === null || !Number.isSafeInteger(bytes) || bytes > max) {
        addIssue({
          message: `expected a size such as 64MB, 512k or a number of bytes from 0 to ${maxText}, got ${describeType(dataset.value)}`,
        });
        return NEVER;
      }
      return bytes;
    }),
  );

/** A duration from `min` to `max` seconds (`300s`, `5m`), as seconds. */
export const duration = (min: number, max: number, what: string) =>
  v.pipe(
    v.union([v.number(), v.string()], expected(`${what} such as 300s or 5m`)),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const seconds = parseDuration(dataset.value);
      if (seconds === null || !Number.isFinite(seconds) || seconds < min || seconds > max) {
        addIssue({
          message: `expected ${what} between ${min}s and ${max}s (e.g. 300s, 5m), got ${describeType(dataset.value)}`,
        });
        return NEVER;
      }
      return seconds;
    }),
  );
