/**
 * @module
 * The access log's line: one JSON object per request, from its `ExchangeRecord`, ended by a
 * newline. It names what came and what became of it, never a credential: the path without its
 * query, no header but the request id, which the client chose (bounded, visible ASCII, `ids.ts`).
 *
 * Lines stay under 4096 bytes (PIPE_BUF), so a line written to a pipe (standard output under
 * systemd or a container runtime) arrives whole even when several processes write to it:
 * host and names are cut at 256 characters, the path at 1024, and a line still too long is made
 * again with tighter cuts.
 *
 * ```json
 * {"time":"2026-12-03T09:43:43.123Z","request_id":"5f0c6a2e9b1d4c7a8e3f2b1a0c9d8e7f","client":"203.0.113.9",
 *  "method":"POST","host":"llama.example.com","path":"/v1/chat/completions","status":200,"project":"main",
 *  "service":"llama","model":"llama-3","replica":"r1","retries":0,"rate_limit":null,"duration":1.284,
 *  "ttft":0.112,"tpot":0.0213,"input_tokens":42,"output_tokens":56,"tokens_estimated":false,"bytes_in":312,
 *  "bytes_out":9126,"incomplete":false,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}
 * ```
 */
import type { ExchangeRecord } from "./exchange-record.ts";

/** A line (with its newline) never reaches this many bytes: one `write` of it to a pipe is atomic. */
export const PIPE_BUF = 4096;

const cut = (s: string | null, max: number): string | null => (s === null || s.length <= max ? s : s.slice(0, max));
/** Seconds to the microsecond. */
const seconds = (s: number | null): number | null => (s === null ? null : Math.round(s * 1e6) / 1e6);

function line(r: ExchangeRecord, path: number, name: number): string {
  return `${JSON.stringify({
    time: new Date(r.time).toISOString(),
    request_id: r.requestId,
    client: r.clientAddress,
    method: cut(r.method, 32),
    host: cut(r.host, name),
    path: cut(r.path, path),
    status: r.status,
    project: cut(r.project, name),
    service: cut(r.service, name),
    model: cut(r.model, name),
    replica: cut(r.replica, name),
    retries: r.retries,
    rate_limit: r.rateLimit,
    duration: seconds(r.duration),
    ttft: seconds(r.ttft),
    tpot: seconds(r.tpot),
    input_tokens: r.inputTokens,
    output_tokens: r.outputTokens,
    tokens_estimated: r.tokensEstimated,
    bytes_in: r.bytesIn,
    bytes_out: r.bytesOut,
    incomplete: r.incomplete,
    trace_id: r.trace?.traceId ?? null,
  })}\n`;
}

/** The access log line of one request, newline included, under `PIPE_BUF` bytes. */
export function accessLogLine(r: ExchangeRecord): string {
  const text = line(r, 1024, 256);
  // Characters are at most 3 bytes each in UTF-8: only a long line needs counting.
  if (text.length * 3 < PIPE_BUF || Buffer.byteLength(text) < PIPE_BUF) return text;
  const tighter = line(r, 256, 64);
  return Buffer.byteLength(tighter) < PIPE_BUF ? tighter : line({ ...r, requestId: r.requestId.slice(0, 64) }, 64, 32);
}
