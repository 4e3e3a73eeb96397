/**
 * @module
 * OTLP/HTTP export of sampled requests' spans (JSON encoding, `otlp-spans.ts`), from each proxy
 * process to the configured endpoint, off the request path: `add` encodes the span into the
 * batch being filled (`span-batches.ts`; a few µs, so that a batch costs no long pause of the
 * event loop later) and returns.
 *
 * - Batches: up to `batch` spans per `POST`, sent when that many wait or `delayMs` after the first
 *   of a batch arrived; one request in flight at a time.
 * - Bounded: at most `queue` spans wait; more are dropped and counted (a log line at most every
 *   10 s), never blocking a request nor growing memory while the collector is slow or down.
 * - Retries, as the OTLP specification says: 429, 502, 503 and 504 and network errors are retried
 *   after the `Retry-After` the collector sent (seconds or a date, up to a minute), else after an
 *   exponential back-off from 1 s to 30 s with jitter, 5 attempts in all; other answers drop the batch.
 *   Each request has `timeoutMs` to complete.
 * - On close: what is queued is sent once more, within a bound, without retries.
 */
import { Agent, request } from "undici";
import { DropCount } from "./drop-count.ts";
import type { ExchangeRecord } from "./exchange-record.ts";
import { BODY_SUFFIX, bodyPrefix, encodeSpan, type KeyValue } from "./otlp-spans.ts";
import { type Batch, SpanBatches } from "./span-batches.ts";

export interface ExportLimits {
  /** Spans waiting for export at most (beyond: dropped). */
  queue: number;
  /** Spans per request at most. */
  batch: number;
  /** The first span of a batch waits at most this long for others. */
  delayMs: number;
  /** One request's bound, connection included. */
  timeoutMs: number;
}

export interface SpanExporterOptions extends ExportLimits {
  endpoint: string;
  resource: KeyValue[];
  log: (line: string) => void;
  /** Attempts per batch, the first included (default 5). */
  maxAttempts?: number;
  /** The first back-off (default 1 s); it doubles up to 30 s. */
  backoffMs?: number;
}

const MAX_BACKOFF_MS = 30_000;
const MAX_RETRY_AFTER_MS = 60_000;
const RETRYABLE = new Set([429, 502, 503, 504]);

type Outcome =
  | { kind: "ok" }
  | { kind: "retry"; afterMs: number | null; reason: string }
  | { kind: "fail"; reason: string };

/** `Retry-After` in milliseconds: delay-seconds or an HTTP date (null: absent or unreadable). */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === "") return null;
  const ms = /^\s*\d+\s*$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS) : null;
}

export class SpanExporter {
  readonly #options: SpanExporterOptions;
  readonly #agent = new Agent({ keepAliveTimeout: 30_000, connections: 2 });
  readonly #dropped: DropCount;
  /** Encoded spans waiting for export. */
  readonly #batches: SpanBatches;
  readonly #prefix: Buffer;
  #busy = false;
  #timer: NodeJS.Timeout | null = null;
  #closing = false;
  #exported = 0;
  #sleeping: { timer: NodeJS.Timeout; wake: () => void } | null = null;
  #idle: (() => void)[] = [];

  constructor(options: SpanExporterOptions) {
    this.#options = options;
    this.#dropped = new DropCount("tracing: spans", options.log);
    this.#batches = new SpanBatches(options.batch);
    this.#prefix = bodyPrefix(options.resource);
  }

  get endpoint(): string {
    return this.#options.endpoint;
  }

  /** Spans the collector accepted, and spans dropped (queue full, or a batch given up). */
  get counts(): { exported: number; dropped: number } {
    return { exported: this.#exported, dropped: this.#dropped.total };
  }

  /** Queues a sampled request's span; never blocks, never throws. */
  add(record: ExchangeRecord): void {
    if (this.#closing || this.#batches.spans >= this.#options.queue) {
      this.#dropped.add(1, this.#closing ? "closed" : "queue full");
      return;
    }
    try {
      this.#batches.add(encodeSpan(record));
    } catch (err) {
      this.#dropped.add(1, `cannot encode: ${(err as Error).message}`);
      return;
    }
    if (this.#busy) return;
    if (this.#batches.full) this.#start(false);
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#start(false), this.#options.delayMs);
      this.#timer.unref();
    }
  }

  /** Sends what is queued once more (no retries, within `timeoutMs`), then lets go of the connection. */
  async close(timeoutMs = 2_000): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#sleeping) this.#sleeping.wake();
    if (this.#busy || this.#batches.spans > 0) {
      const idle = new Promise<void>((resolve) => this.#idle.push(resolve));
      this.#start(true);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([idle, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
    }
    this.#dropped.add(this.#batches.clear(), "closed");
    this.#dropped.flush();
    await this.#agent.destroy().catch(() => {});
  }

  #start(all: boolean): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#busy) return;
    this.#busy = true;
    void this.#run(all);
  }

  async #run(all: boolean): Promise<void> {
    const batches = this.#batches;
    do {
      const batch = batches.take();
      if (batch) await this.#send(batch);
    } while (batches.full || ((all || this.#closing) && batches.spans > 0));
    this.#busy = false;
    if (batches.spans > 0 && !this.#closing) {
      this.#timer = setTimeout(() => this.#start(false), this.#options.delayMs);
      this.#timer.unref();
    } else if (batches.spans === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #send(batch: Batch): Promise<void> {
    const spans = batch.spans;
    const body = this.#batches.body(batch, this.#prefix, BODY_SUFFIX);
    const attempts = this.#options.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#post(body);
      if (outcome.kind === "ok") {
        this.#exported += spans;
        return;
      }
      if (outcome.kind === "fail" || attempt >= attempts || this.#closing) {
        this.#dropped.add(spans, `export failed: ${outcome.reason}`);
        return;
      }
      const backoff = Math.min(MAX_BACKOFF_MS, (this.#options.backoffMs ?? 1_000) * 2 ** (attempt - 1));
      await this.#sleep(outcome.afterMs ?? backoff * (0.5 + Math.random() / 2));
      if (this.#closing) {
        this.#dropped.add(spans, `export failed: ${outcome.reason}`);
        return;
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleeping = null;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleeping = { timer, wake };
    });
  }

  async #post(body: Buffer): Promise<Outcome> {
    const { endpoint, timeoutMs } = this.#options;
    try {
      const res = await request(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.body.text();
      if (res.statusCode >= 200 && res.statusCode < 300) {
        this.#partialSuccess(text);
        return { kind: "ok" };
      }
      const reason = `HTTP ${res.statusCode}`;
      if (RETRYABLE.has(res.statusCode))
        return { kind: "retry", afterMs: retryAfterMs(res.headers["retry-after"]), reason };
      return { kind: "fail", reason };
    } catch (err) {
      const e = err as Error & { code?: string };
      return { kind: "retry", afterMs: null, reason: e.name === "TimeoutError" ? "timed out" : (e.code ?? e.message) };
    }
  }

  /** A 2xx may still say some spans were refused (`partialSuccess`): logged, counted as exported. */
  #partialSuccess(text: string): void {
    if (!text.includes("partialSuccess")) return;
    try {
      const partial = (
        JSON.parse(text) as { partialSuccess?: { rejectedSpans?: string | number; errorMessage?: string } }
      ).partialSuccess;
      const rejected = Number(partial?.rejectedSpans ?? 0);
      if (rejected > 0)
        this.#options.log(`tracing: the collector rejected ${rejected} spans: ${partial?.errorMessage ?? ""}`);
    } catch {
      // Not JSON: nothing to learn from it.
    }
  }
}
