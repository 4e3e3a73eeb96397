/**
 * @module
 * Header rewriting between clients and replicas. Hop-by-hop headers describe one connection
 * (RFC 9110 §7.6.1) and are never forwarded; the X-Forwarded-* family and X-Real-IP tell the replica
 * who the client is; `X-Request-Id` and W3C trace context (`traceparent`, `tracestate`) are read
 * once and sent as the gateway decides (`observe/ids.ts`, `observe/trace-context.ts`). Works on
 * Node's and undici's flat raw header lists so no header object is built per request on the hot path.
 */
import type { TraceIds } from "./observe/exchange-record.ts";
import { type RequestIdentity, requestIdFrom } from "./observe/ids.ts";
import { FORWARD_ONLY, formatTraceparent, REPEATED, type TracePolicy, traceFor } from "./observe/trace-context.ts";

/**
 * A Host header (or a document's host) as routing keys are written: lower case, no port, no
 * trailing dot. Bracketed IPv6 literals keep their brackets.
 */
export function normalizeHost(value: string): string {
  let host = value;
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end !== -1) host = host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(":");
    if (colon !== -1) host = host.slice(0, colon);
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  return host.toLowerCase();
}

/** What the proxy needs from a client's request head, plus the headers to send upstream. */
export interface RequestHead {
  /** The Host header as sent (port included), or undefined. */
  host: string | undefined;
  /** Declared body length, -1 when there is no Content-Length. */
  contentLength: number;
  /** The body uses chunked transfer coding. */
  chunked: boolean;
  /** Why the request's framing is ambiguous (a smuggling vector), or null when it is sound. */
  framingError: string | null;
  /** The client asked for a protocol upgrade (`Upgrade` header value), or undefined. */
  upgrade: string | undefined;
  /** The client's usable `X-Request-Id`, else a generated one: sent to the replica and back to the client. */
  requestId: string;
  /** The request's trace context as propagated to the replica; null when it carries none. */
  trace: TraceIds | null;
  /**
   * Upstream headers as a flat name/value list. Slot 0/1 is reserved for `host` (the replica decides
   * its value), then the client's end-to-end headers, then `x-request-id`, trace context, and the
   * four forwarding headers last.
   */
  forward: string[];
}

const HOST_SLOT = 1;
/** `x-forwarded-host`'s value, counted from the end: the list ends with the four forwarding headers. */
const FORWARDED_HOST_FROM_END = 3;

/** Request headers the proxy consumes or replaces rather than copying upstream. */
const DROPPED_REQUEST = new Set([
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "proxy-connection",
  // Node answers `Expect: 100-continue` itself, and undici refuses to send it.
  "expect",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-real-ip",
]);

/**
 * Response headers that belong to the replica's connection, not to the client's; and the replica's
 * own `x-request-id` (the client gets the gateway's, the one the replica was sent and the log has).
 */
const DROPPED_RESPONSE = new Set([
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "x-request-id",
]);

/** Connection options that name no header (or one we drop anyway). */
const CONNECTION_KEYWORDS = new Set(["close", "keep-alive", "upgrade"]);

const isProxyHeader = (lower: string) => lower.startsWith("proxy-");

/** Headers named in `Connection` (other than the keywords): they are hop-by-hop too. */
function connectionNamed(value: string, into: string[] | null): string[] | null {
  // The usual values name no header: skip the split.
  if (value.length <= 10 && CONNECTION_KEYWORDS.has(value.toLowerCase())) return into;
  let named = into;
  for (const part of value.split(",")) {
    const token = part.trim().toLowerCase();
    if (!token || CONNECTION_KEYWORDS.has(token)) continue;
    if (named) named.push(token);
    else named = [token];
  }
  return named;
}

function withoutNamed(list: string[], named: readonly string[], from: number): string[] {
  const kept = list.slice(0, from);
  for (let i = from; i < list.length; i += 2) {
    if (!named.includes(list[i]!.toLowerCase())) kept.push(list[i]!, list[i + 1]!);
  }
  return kept;
}

/**
 * Reads a client's raw headers once: framing facts for the proxy's own checks, and the end-to-end
 * headers to forward. `clientIp` and `proto` become X-Forwarded-For/-Proto and X-Real-IP; the original
 * Host travels as X-Forwarded-Host. With `keepUpgrade` (WebSocket and other upgrades) the
 * `Connection: upgrade` / `Upgrade` pair is forwarded, since the replica must see it to switch.
 * The request gets its id (the client's first `X-Request-Id` when usable) and its trace context
 * under `tracing` (`observe/trace-context.ts`); both replace whatever the client sent.
 */
export function readRequestHead(
  raw: readonly string[],
  clientIp: string,
  proto: "http" | "https",
  keepUpgrade = false,
  tracing: TracePolicy = FORWARD_ONLY,
): RequestHead {
  const forward: string[] = ["host", ""];
  let host: string | undefined;
  let contentLength = -1;
  let chunked = false;
  let framingError: string | null = null;
  let upgrade: string | undefined;
  let forwardedFor: string | undefined;
  let named: string[] | null = null;
  let clientRequestId: string | undefined;
  let traceparent: string | undefined;
  let tracestate: string | undefined;

  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    switch (lower) {
      case "host":
        if (host !== undefined) framingError = "more than one Host header";
        host = value;
        continue;
      case "content-length": {
        const length = /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
        if (Number.isNaN(length)) framingError = "invalid Content-Length";
        else if (contentLength !== -1 && contentLength !== length) framingError = "conflicting Content-Length values";
        else if (contentLength === -1) forward.push("content-length", value);
        contentLength = Number.isNaN(length) ? contentLength : length;
        continue;
      }
      case "transfer-encoding":
        chunked = true;
        continue;
      case "connection":
        named = connectionNamed(value, named);
        continue;
      case "upgrade":
        upgrade = value;
        continue;
      case "x-forwarded-for":
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      case "x-request-id":
        clientRequestId ??= value;
        continue;
      case "traceparent":
        traceparent = traceparent === undefined ? value : REPEATED;
        continue;
      case "tracestate":
        // Several fields make one list (RFC 9110 §5.3).
        tracestate = tracestate === undefined ? value : `${tracestate},${value}`;
        continue;
      default:
        if (DROPPED_REQUEST.has(lower) || isProxyHeader(lower)) continue;
        forward.push(name, value);
    }
  }
  if (chunked && contentLength !== -1) framingError = "both Content-Length and Transfer-Encoding";

  const out = named ? withoutNamed(forward, named, 2) : forward;
  if (keepUpgrade && upgrade !== undefined) out.push("connection", "upgrade", "upgrade", upgrade);
  const requestId = requestIdFrom(clientRequestId);
  out.push("x-request-id", requestId);
  const trace = traceFor(traceparent, tracestate, tracing);
  if (trace) {
    // Forwarding only, the client's own field passes unchanged (a higher version included).
    out.push("traceparent", tracing.participate ? formatTraceparent(trace) : traceparent!);
    if (trace.traceState !== "") out.push("tracestate", trace.traceState);
  }
  out.push(
    "x-forwarded-for",
    forwardedFor === undefined ? clientIp : `${forwardedFor}, ${clientIp}`,
    "x-forwarded-proto",
    proto,
    "x-forwarded-host",
    host ?? "",
    "x-real-ip",
    clientIp,
  );
  out[HOST_SLOT] = host ?? "";
  return { host, contentLength, chunked, framingError, upgrade, requestId, trace, forward: out };
}

/**
 * The request-target is in absolute form: its authority is the request's host and the Host header
 * is ignored (RFC 9112 §3.2.2), so the replica's Host and X-Forwarded-Host name what was routed.
 */
export function useTargetAuthority(head: RequestHead, authority: string): void {
  head.host = authority;
  head.forward[HOST_SLOT] = authority;
  head.forward[head.forward.length - FORWARDED_HOST_FROM_END] = authority;
}

/**
 * A request read again (held for a scaled-to-zero service, then routed anew) keeps the id and the
 * gateway span it got the first time: the client, the log and the replica see one of each.
 */
export function keepIdentity(head: RequestHead, first: RequestIdentity, tracing: TracePolicy): void {
  const keepTrace = first.trace !== null && head.trace !== null && tracing.participate;
  const list = head.forward;
  for (let i = 2; i < list.length; i += 2) {
    if (list[i] === "x-request-id") list[i + 1] = first.requestId;
    else if (keepTrace && list[i] === "traceparent") list[i + 1] = formatTraceparent(first.trace!);
  }
  head.requestId = first.requestId;
  if (keepTrace) head.trace = first.trace;
}

/** Sets the Host the replica receives (the client's, or the replica's own authority for HTTPS). */
export function setUpstreamHost(head: RequestHead, host: string): void {
  head.forward[HOST_SLOT] = host;
}

/** Removes every `name` (lower-case) header from what the replica receives. */
export function dropForwardedHeader(head: RequestHead, name: string): void {
  const list = head.forward;
  let kept = 2;
  for (let i = 2; i < list.length; i += 2) {
    if (list[i]!.toLowerCase() === name) continue;
    list[kept] = list[i]!;
    list[kept + 1] = list[i + 1]!;
    kept += 2;
  }
  list.length = kept;
}

/** Sets the value of the `name` (lower-case) header the replica receives, if the client sent one. */
export function replaceForwardedHeader(head: RequestHead, name: string, value: string): void {
  const list = head.forward;
  for (let i = 2; i < list.length; i += 2) if (list[i]!.toLowerCase() === name) list[i + 1] = value;
}

/** The address a socket's peer connected from, without the IPv4-mapped IPv6 prefix. */
export function clientAddress(remote: string | undefined): string {
  if (!remote) return "";
  return remote.startsWith("::ffff:") ? remote.slice(7) : remote;
}

/** A replica's response headers, minus hop-by-hop ones, ready for `res.writeHead`. */
export interface ResponseHead {
  headers: string[];
  /** `text/event-stream`: flush headers at once and every event as it comes. */
  eventStream: boolean;
  /** A JSON body (`application/json`, `…+json`): its token counts are read as it passes (`observe/json-usage.ts`). */
  json: boolean;
  /** A `Content-Encoding` other than identity: the bytes are compressed, nothing in them can be read. */
  encoded: boolean;
}

/** `requestId`: the request's id, sent back as `x-request-id` (the replica's own is dropped). */
export function readResponseHead(raw: readonly (Buffer | string)[], requestId?: string): ResponseHead {
  const headers: string[] = [];
  let eventStream = false;
  let json = false;
  let encoded = false;
  let named: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString("latin1");
    const value = raw[i + 1]!.toString("latin1");
    const lower = name.toLowerCase();
    if (lower === "connection") {
      named = connectionNamed(value, named);
      continue;
    }
    if (DROPPED_RESPONSE.has(lower) || isProxyHeader(lower)) continue;
    if (lower === "content-type") {
      const type = value.toLowerCase();
      if (type.startsWith("text/event-stream")) eventStream = true;
      else if (type.includes("json")) json = true;
    } else if (lower === "content-encoding" && value.toLowerCase() !== "identity") encoded = true;
    headers.push(name, value);
  }
  const out = named ? withoutNamed(headers, named, 0) : headers;
  if (requestId !== undefined) out.push("x-request-id", requestId);
  return { headers: out, eventStream, json, encoded };
}
