/**
 * @module
 * A service's `rate_limits` as the proxy enforces them, with the semantics of dstack's nginx config
 * (`limit_req_zone <key> … rate=…; limit_req zone=… burst=N nodelay;`, `limit_req_status 429`):
 * one zone per rule, the rule with the longest matching prefix applies (nginx prefix locations),
 * the key is the client's address or a request header, and a request without a key is not limited
 * (nginx does not account an empty key). The buckets themselves are in `rate-limit-store.ts`; where
 * they live (this process or the parent) is `rate-limit-gate.ts`.
 *
 * Answers carry the RateLimit header fields of draft-ietf-httpapi-ratelimit-headers-11 (May 2026):
 * `RateLimit-Policy: "<prefix>";q=<requests>;w=<seconds>;gateplane-burst=<burst>` and
 * `RateLimit: "<prefix>";r=<remaining>;t=<seconds>`; a 429 adds `Retry-After` (same point in time as `t`).
 */
import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { ConfigService } from "../schema/config-document.ts";
import { MAX_BURST, MAX_RPS, MIN_RPS } from "../schema/limits.ts";
import type { ProxyContext } from "./context.ts";
import { taggedRequestId } from "./observe/ids.ts";
import type { Verdict, ZoneSpec } from "./rate-limit-store.ts";
import { send } from "./replies.ts";

export interface RateLimitRule {
  readonly prefix: string;
  /** The request header (lower case) whose value is the key; null for the client's address. */
  readonly header: string | null;
  readonly zone: ZoneSpec;
  /** `RateLimit-Policy` value. */
  readonly policy: string;
  /** The policy's name as a structured-field string (quoted). */
  readonly name: string;
}

type ConfigRateLimit = ConfigService["rate_limits"][number];

/** dstack's minimum; the bounds are the schema's (`schema/limits.ts`), one set for the API and the proxy. */
export { MIN_RPS };

const PREFIX_PATTERN = /^\/[^\s\\{}]*$/;
const HEADER_PATTERN = /^[a-zA-Z0-9-_]+$/;
/** Keys longer than this are stored as a digest, so a zone's memory does not grow with header sizes. */
const MAX_KEY_LENGTH = 64;

/** What the schema of the configuration document does not check about a service's rate limits. */
export function rateLimitProblems(limits: readonly ConfigRateLimit[], at: string): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  limits.forEach((limit, i) => {
    const here = `${at}.rate_limits[${i}]`;
    if (!PREFIX_PATTERN.test(limit.prefix) || limit.prefix.length > 4094) {
      problems.push(`${here}.prefix: expected a path starting with / without spaces, backslashes or braces`);
    }
    const same = seen.get(limit.prefix);
    if (same !== undefined)
      problems.push(`${here}.prefix: ${limit.prefix} is already the prefix of rate_limits[${same}]`);
    else seen.set(limit.prefix, i);
    if (!Number.isFinite(limit.rps) || limit.rps < MIN_RPS || limit.rps > MAX_RPS) {
      problems.push(`${here}.rps: expected requests per second ≥ 1/60 and ≤ ${MAX_RPS}`);
    }
    if (!Number.isSafeInteger(limit.burst) || limit.burst < 0 || limit.burst > MAX_BURST) {
      problems.push(`${here}.burst: expected a whole number of requests ≥ 0 and ≤ ${MAX_BURST}`);
    }
    if (limit.key.type === "header" && (!HEADER_PATTERN.test(limit.key.header) || limit.key.header.length > 500)) {
      problems.push(`${here}.key.header: expected a header name of letters, digits, '-' or '_'`);
    }
  });
  return problems;
}

/** A structured-field string (RFC 9651 §3.3.3) naming the policy: the prefix where it is plain ASCII. */
function policyName(prefix: string, index: number): string {
  const text = /^[\x20-\x7e]*$/.test(prefix) ? prefix : `rule-${index}`;
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A digest of the rule's content: short, since child processes send it with every check. */
function zoneId(...rule: (string | number | null)[]): string {
  return createHash("sha256").update(JSON.stringify(rule)).digest("base64url").slice(0, 22);
}

/**
 * A service's rules, longest prefix first. The zone id is the rule's whole content, so a document
 * that keeps a rule keeps its zone and buckets; a changed rule starts with empty buckets.
 */
export function compileRateLimits(service: ConfigService): RateLimitRule[] {
  return service.rate_limits
    .map((limit, i) => {
      // nginx tracks rates in milli-requests per second; dstack rounds to requests per minute first,
      // we keep the finer value (1/60 r/s is 17 here, 16 in nginx's `1r/m`).
      const rate = Math.max(1, Math.round(limit.rps * 1000));
      const burst = limit.burst * 1000;
      // nginx's `$http_<name>`: case-insensitive, `_` in the configured name stands for `-`.
      const header = limit.key.type === "header" ? limit.key.header.toLowerCase().replace(/_/g, "-") : null;
      const name = policyName(limit.prefix, i);
      const window = limit.rps >= 1 && Number.isInteger(limit.rps) ? 1 : 60;
      const quota = Math.max(1, Math.round(limit.rps * window));
      return {
        prefix: limit.prefix,
        header,
        zone: { id: zoneId(service.name, limit.prefix, header, rate, burst), rate, burst },
        policy: `${name};q=${quota};w=${window};gateplane-burst=${limit.burst}`,
        name,
      };
    })
    .sort((a, b) => b.prefix.length - a.prefix.length);
}

/**
 * The path nginx matches locations against: no query, percent-decoded, `//` merged, `.` and `..`
 * resolved — so `/v1//chat` or `/v1/%63hat` cannot slip past a `/v1/chat` limit.
 */
export function locationPath(target: string): string {
  const q = target.indexOf("?");
  let path = q === -1 ? target : target.slice(0, q);
  if (path.includes("%")) {
    try {
      path = decodeURIComponent(path);
    } catch {}
  }
  if (path.includes("//")) path = path.replace(/\/{2,}/g, "/");
  if (path.includes("/.")) {
    const out: string[] = [];
    for (const segment of path.split("/")) {
      if (segment === "..") {
        if (out.length > 1) out.pop();
      } else if (segment !== ".") out.push(segment);
    }
    path = out.join("/") || "/";
  }
  return path;
}

/** The rule with the longest prefix of `target`'s path, or null. */
export function matchRule(rules: readonly RateLimitRule[], target: string): RateLimitRule | null {
  if (rules.length === 0) return null;
  const path = locationPath(target);
  for (const rule of rules) if (path.startsWith(rule.prefix)) return rule;
  return null;
}

/** The request's key under `rule`, or null (no such header, or empty: not limited, as nginx). */
export function requestKey(rule: RateLimitRule, rawHeaders: readonly string[], address: string): string | null {
  let key: string | null = null;
  if (rule.header === null) key = address;
  else {
    for (let i = 0; i < rawHeaders.length; i += 2) {
      // nginx ignores header names with underscores (`underscores_in_headers off`): they never match.
      if (rawHeaders[i]!.length === rule.header.length && rawHeaders[i]!.toLowerCase() === rule.header) {
        key = rawHeaders[i + 1]!;
        break;
      }
    }
  }
  if (!key) return null;
  return key.length > MAX_KEY_LENGTH ? `#${createHash("sha256").update(key).digest("base64url")}` : key;
}

const ceilSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** Seconds until `rule`'s zone admits one more request after a refusal with `verdict`. */
export function retryAfterSeconds(rule: RateLimitRule, verdict: Verdict): number {
  return ceilSeconds(((-verdict - rule.zone.burst) * 1000) / rule.zone.rate);
}

/** `RateLimit-Policy` and `RateLimit` for an admitted request (flat name/value list). */
export function admittedHeaders(rule: RateLimitRule, verdict: Verdict): string[] {
  const remaining = Math.floor((rule.zone.burst - verdict) / 1000);
  // Until the bucket is whole again: the excess plus the request just admitted have leaked away.
  const reset = Math.ceil((verdict + 1000) / rule.zone.rate);
  return ["ratelimit-policy", rule.policy, "ratelimit", `${rule.name};r=${remaining};t=${reset}`];
}

function refusedHeaders(rule: RateLimitRule, retryAfter: number): string[] {
  return ["ratelimit-policy", rule.policy, "ratelimit", `${rule.name};r=0;t=${retryAfter}`];
}

export interface LimitCheck {
  /** The service's rules. */
  rules: readonly RateLimitRule[];
  /** The path the service receives (query included; only the path counts). */
  path: string;
  rawHeaders: readonly string[];
  /** The client's address (the socket's peer: the proxy is the edge). */
  address: string;
  /** The client went away while the verdict was on its way. */
  gone(): boolean;
  /** Go on, adding these response headers (null: the request is not limited). */
  admit(headers: readonly string[] | null): void;
  refuse(rule: RateLimitRule, verdict: Verdict): void;
}

/**
 * Runs `admit` or `refuse` for a request, at once when no rule applies or the store is in this
 * process, else once the host's store answered. Counted as an exchange meanwhile, so a closing
 * server waits for it.
 */
export function checkRateLimit(ctx: ProxyContext, check: LimitCheck): void {
  const rule = matchRule(check.rules, check.path);
  const key = rule && requestKey(rule, check.rawHeaders, check.address);
  if (!rule || key === null) {
    check.admit(null);
    return;
  }
  ctx.begin();
  ctx.rateLimits.take(rule.zone, key, (verdict) => {
    try {
      if (check.gone()) return;
      if (verdict === null) check.admit(null);
      else if (verdict >= 0) check.admit(admittedHeaders(rule, verdict));
      else check.refuse(rule, verdict);
    } finally {
      ctx.end();
    }
  });
}

/** Sets a flat name/value list on a response not yet written (the replica's own fields of those names win). */
export function setHeaders(res: ServerResponse, headers: readonly string[] | null): void {
  if (headers) for (let i = 0; i < headers.length; i += 2) res.setHeader(headers[i]!, headers[i + 1]!);
}

export interface RefusalOptions {
  /** OpenAI's error shape (model services, the entrypoint) instead of a line of text. */
  openai: boolean;
  cors: boolean;
  close: boolean;
}

/** The 429. */
export function replyRateLimited(
  res: ServerResponse,
  rule: RateLimitRule,
  verdict: Verdict,
  options: RefusalOptions,
): void {
  const retryAfter = retryAfterSeconds(rule, verdict);
  const message = `rate limit exceeded; retry in ${retryAfter}s`;
  if (!res.headersSent) setHeaders(res, refusedHeaders(rule, retryAfter));
  const common = { close: options.close, cors: options.cors, retryAfterSeconds: retryAfter };
  if (options.openai) {
    const body = { error: { message, type: "requests", param: null, code: "rate_limit_exceeded" } };
    send(res, 429, "application/json", `${JSON.stringify(body)}\n`, common);
  } else {
    send(res, 429, "text/plain; charset=utf-8", `${message}\n`, common);
  }
}

/** The 429 on the bare socket of an upgrade request, which is then closed. */
export function replyRateLimitedRaw(socket: Duplex, rule: RateLimitRule, verdict: Verdict): void {
  if (socket.destroyed) return;
  const retryAfter = retryAfterSeconds(rule, verdict);
  const body = `rate limit exceeded; retry in ${retryAfter}s\n`;
  const fields = refusedHeaders(rule, retryAfter);
  let head = `HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: ${retryAfter}\r\n`;
  for (let i = 0; i < fields.length; i += 2) head += `${fields[i]}: ${fields[i + 1]}\r\n`;
  const requestId = taggedRequestId(socket);
  if (requestId !== undefined) head += `x-request-id: ${requestId}\r\n`;
  socket.end(`${head}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
