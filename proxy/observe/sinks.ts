/**
 * @module
 * What one proxy process does with its requests' records, from the document's `observability`:
 * the access log (a `LineWriter` to `<state dir>/access.log` or standard output) and the span
 * exporter (`SpanExporter`), and how trace context is treated (`TracePolicy`). `apply` runs with
 * every document: a part whose settings did not change is kept as it is (its file stays open, its
 * queue keeps its spans); a changed or removed one is closed (its queue written or sent first)
 * and replaced. Its sinks are entries of the process's shared list (`ProxyContext.sinks`), which
 * other readers of the records (the metrics registry) share: only its own entries change.
 *
 * Every process writes and exports on its own: lines go to the shared file with `O_APPEND`, and
 * each process has its own connection to the collector. Rotation is one process's job: the parent
 * of the proxy processes (asked over IPC, `askRotation`), or this process when it is the only one.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { DEFAULT_OBSERVABILITY, type ObservabilityDocument } from "../../schema/observability.ts";
import { accessLogLine } from "./access-log.ts";
import type { ExchangeRecord, ExchangeSink } from "./exchange-record.ts";
import { LineWriter } from "./line-writer.ts";
import { ACCESS_LOG_FILE, LogRotator, type RotationTarget } from "./log-rotation.ts";
import { SpanExporter } from "./otlp-exporter.ts";
import { type KeyValue, str } from "./otlp-spans.ts";
import { FORWARD_ONLY, type TracePolicy } from "./trace-context.ts";

export interface ObserveLimits {
  /** Characters of access log lines a process queues while the disk or pipe is behind (beyond: dropped). */
  accessLogBufferBytes: number;
  /** A line waits at most this long to be written with others. */
  accessLogFlushMs: number;
  /** Spans a process queues for export (beyond: dropped). */
  spanQueue: number;
  /** Spans per OTLP request. */
  spanBatch: number;
  /** The first span of a batch waits at most this long for others. */
  spanDelayMs: number;
  /** One OTLP request's bound. */
  exportTimeoutMs: number;
}

/** OpenTelemetry's batch span processor sizes (2048 queued, 512 per request); 1 s instead of its 5 s delay. */
export const DEFAULT_OBSERVE_LIMITS: ObserveLimits = {
  accessLogBufferBytes: 4 * 1024 * 1024,
  accessLogFlushMs: 100,
  spanQueue: 2048,
  spanBatch: 512,
  spanDelayMs: 1_000,
  exportTimeoutMs: 10_000,
};

/** The document's `observability` (the defaults without a document, or for one built without it). */
export function observabilityOf(doc: ConfigDocument | null): ObservabilityDocument {
  return doc?.observability ?? DEFAULT_OBSERVABILITY;
}

/** Where the access log file is, or null when it cannot be a file (no state directory). */
export function accessLogPath(stateDir: string | null): string | null {
  return stateDir === null ? null : join(stateDir, ACCESS_LOG_FILE);
}

export interface ObserveOptions {
  /** The process's list of sinks (`ProxyContext.sinks`), where this keeps its own entries. */
  sinks: ExchangeSink[];
  /** The agent's state directory, home of `access.log`; null: the access log can only go to stdout. */
  stateDir: string | null;
  limits: ObserveLimits;
  log: (line: string) => void;
  /** A child process: the parent rotates the file and then calls `reopenAccessLog` everywhere. Absent: rotate here. */
  askRotation?: () => void;
}

type AccessLogSettings = NonNullable<ObservabilityDocument["access_log"]>;

export class Observability {
  readonly #options: ObserveOptions;
  readonly #rotator: LogRotator;
  #tracing: TracePolicy = FORWARD_ONLY;
  /** Entries of `options.sinks` that are this one's. */
  #sinks: ExchangeSink[] = [];
  #accessLog: { settings: AccessLogSettings; writer: LineWriter | null; sink: ExchangeSink | null } | null = null;
  #exporter: { exporter: SpanExporter; sink: ExchangeSink } | null = null;
  #resourceKey = "";
  #closed = false;

  constructor(options: ObserveOptions) {
    this.#options = options;
    this.#rotator = new LogRotator(options.log);
  }

  /** How this process treats requests' trace context now. */
  get tracing(): TracePolicy {
    return this.#tracing;
  }

  /** Puts `doc`'s observability in force; what it no longer asks for is closed in the background. */
  apply(doc: ConfigDocument): void {
    if (this.#closed) return;
    const wanted = observabilityOf(doc);
    this.#applyAccessLog(wanted.access_log);
    this.#applyTracing(wanted.tracing, doc.gateway);
    this.#setSinks();
  }

  /** Replaces this one's entries in the shared list with the sinks of the writer and exporter in force. */
  #setSinks(): void {
    const sinks: ExchangeSink[] = [];
    if (this.#accessLog?.sink) sinks.push(this.#accessLog.sink);
    if (this.#exporter) sinks.push(this.#exporter.sink);
    if (sinks.length === this.#sinks.length && sinks.every((s, i) => s === this.#sinks[i])) return;
    const shared = this.#options.sinks;
    for (const old of this.#sinks) {
      const at = shared.indexOf(old);
      if (at !== -1) shared.splice(at, 1);
    }
    shared.push(...sinks);
    this.#sinks = sinks;
  }

  /** The access log file was rotated: the next line opens a new one. */
  reopenAccessLog(): void {
    this.#accessLog?.writer?.reopen();
  }

  /** Writes the queued lines and sends the queued spans (bounded), then closes both. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#tracing = FORWARD_ONLY;
    const closing = [this.#accessLog?.writer?.close(), this.#exporter?.exporter.close()];
    this.#accessLog = null;
    this.#exporter = null;
    this.#setSinks();
    await Promise.all(closing);
  }

  #applyAccessLog(settings: AccessLogSettings | null): void {
    const current = this.#accessLog;
    if (current && settings && sameAccessLog(current.settings, settings)) return;
    void current?.writer?.close();
    this.#accessLog = null;
    if (!settings) return;
    const { stateDir, log, limits } = this.#options;
    const path = settings.destination === "file" ? accessLogPath(stateDir) : null;
    if (settings.destination === "file" && path === null) {
      log("access log: destination file needs the agent's state directory; not writing one");
      this.#accessLog = { settings, writer: null, sink: null };
      return;
    }
    const target = path === null ? null : { path, maxSize: settings.max_size, maxFiles: settings.max_files };
    const writer: LineWriter = new LineWriter({
      path,
      bufferBytes: limits.accessLogBufferBytes,
      flushMs: limits.accessLogFlushMs,
      ...(target ? { maxSize: target.maxSize, onFull: () => this.#full(target, writer) } : {}),
      log,
    });
    const sink = (record: ExchangeRecord) => writer.write(accessLogLine(record));
    this.#accessLog = { settings, writer, sink };
  }

  /** The file passed `max_size`: the parent rotates it for every process, or this process does. */
  #full(target: RotationTarget, writer: LineWriter): void {
    if (this.#options.askRotation) this.#options.askRotation();
    else void this.#rotator.rotate(target, () => writer.reopen());
  }

  #applyTracing(settings: ObservabilityDocument["tracing"], gateway: ConfigDocument["gateway"]): void {
    this.#tracing = settings ? { participate: true, sampleRatio: settings.sample_ratio } : FORWARD_ONLY;
    const resource = resourceOf(gateway);
    const resourceKey = JSON.stringify(resource);
    const current = this.#exporter;
    if (current && settings && current.exporter.endpoint === settings.endpoint && resourceKey === this.#resourceKey) {
      return;
    }
    void current?.exporter.close();
    this.#exporter = null;
    if (!settings) return;
    const { limits, log } = this.#options;
    this.#resourceKey = resourceKey;
    const exporter = new SpanExporter({
      endpoint: settings.endpoint,
      resource,
      log,
      queue: limits.spanQueue,
      batch: limits.spanBatch,
      delayMs: limits.spanDelayMs,
      timeoutMs: limits.exportTimeoutMs,
    });
    const sink = (record: ExchangeRecord) => {
      if (record.trace?.sampled) exporter.add(record);
    };
    this.#exporter = { exporter, sink };
  }
}

function sameAccessLog(a: AccessLogSettings, b: AccessLogSettings): boolean {
  return a.destination === b.destination && a.max_size === b.max_size && a.max_files === b.max_files;
}

/** The OTLP resource: which gateway, host and process the spans come from. */
export function resourceOf(gateway: ConfigDocument["gateway"]): KeyValue[] {
  return [
    str("service.name", "gateplane"),
    str("gateplane.gateway", `${gateway.project}/${gateway.name}`),
    str("gateplane.gateway.id", gateway.id),
    str("host.name", hostname()),
    { key: "process.pid", value: { intValue: String(process.pid) } },
  ];
}
