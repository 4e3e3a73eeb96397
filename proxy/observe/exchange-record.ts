/**
 * @module
 * What the proxy knows of one request once it is over: the one record every sink reads (the metrics
 * registry, the access log, the trace exporter), produced once per request, whether it reached a
 * replica or was answered by the gateway itself (404, 401, 429, a held request's 503).
 */

/** W3C trace context of the gateway's span for the request (`trace-context.ts`). */
export interface TraceIds {
  /** 32 lowercase hex characters. */
  traceId: string;
  /** The gateway's span: 16 lowercase hex characters; the replica's `traceparent` names it as parent. */
  spanId: string;
  /** The client's span, when the request came with a valid `traceparent`. */
  parentSpanId: string | null;
  sampled: boolean;
  /** The client's `tracestate`, passed on as received (empty when none). */
  traceState: string;
}

export interface ExchangeRecord {
  /** Milliseconds since the epoch when the request arrived. */
  time: number;
  /** The client's `X-Request-Id` when it sent a usable one, else one the gateway made up. */
  requestId: string;
  method: string;
  /** The Host the client asked for, lower-cased, without its port. */
  host: string;
  /** The request's path without its query (a query may carry secrets; paths are not metric labels). */
  path: string;
  clientAddress: string;
  /** The service that took the request; null when none did (unknown host, the gateway's own paths). */
  service: string | null;
  project: string | null;
  /** The service's model (`model:` of an OpenAI-compatible service), never taken from the request. */
  model: string | null;
  /** The replica (its id) that answered, or null when none did (a PD request's: its decode replica). */
  replica: string | null;
  /** PD requests (docs/pd.md): the prefill replica of the pair that answered (or the last one tried); absent otherwise. */
  prefillReplica?: string;
  /** PD requests: seconds from arrival to the end of that prefill's answer; absent when it did not succeed. */
  prefillTime?: number;
  /** Status sent to the client; 0 when the client went away before one was sent. */
  status: number;
  /** Attempts beyond the first (another replica after a failure before any byte reached the client). */
  retries: number;
  /** A rate-limit rule applied and what it decided; null when the service has no rule for the path. */
  rateLimit: "allowed" | "refused" | null;
  /** Seconds from arrival to the end of the response (or of the exchange, when it failed). */
  duration: number;
  /** Seconds from arrival to the first byte of the body, or for a stream to its first content event. */
  ttft: number | null;
  /** Streams: (duration − TTFT) / (output tokens − 1), when more than one token came. */
  tpot: number | null;
  /** Streams: the gaps between consecutive content events, seconds, in order (for the ITL histogram). */
  itl: readonly number[];
  inputTokens: number | null;
  outputTokens: number | null;
  /** `outputTokens` counts content events, not the response's `usage` (the stream carried none). */
  tokensEstimated: boolean;
  /** Request body bytes read from the client. */
  bytesIn: number;
  /** Response body bytes sent to the client. */
  bytesOut: number;
  /** The response ended early: the replica cut it, timed out, or the client left. */
  incomplete: boolean;
  trace: TraceIds | null;
}

/** A sink: called once per request, after the response ended (must not throw, must not block). */
export type ExchangeSink = (record: ExchangeRecord) => void;
