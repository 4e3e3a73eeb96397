/**
 * @module
 * "5 sec ago"-style timestamps for tables: what a person scanning a list wants to know is how fresh
 * something is; past a month the calendar date says more.
 */

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export function formatAge(iso: string, now: number): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return iso;
  // Clamp small clock skew between us and the control plane instead of printing "-3 sec ago".
  const seconds = Math.max(0, Math.floor((now - then) / 1000));
  if (seconds < MINUTE) return `${seconds} sec ago`;
  if (seconds < HOUR) return `${Math.floor(seconds / MINUTE)} min ago`;
  if (seconds < DAY) return plural(Math.floor(seconds / HOUR), "hour");
  if (seconds < 30 * DAY) return plural(Math.floor(seconds / DAY), "day");
  return new Date(then).toISOString().slice(0, 10);
}

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"} ago`;
