/**
 * @module
 * An OTLP/HTTP trace receiver for tests (what an OpenTelemetry Collector's `otlphttp` receiver
 * does on :4318): `POST /v1/traces` with `content-type: application/json`, decoded as an
 * `ExportTraceServiceRequest` in OTLP's JSON encoding. It keeps every span with its resource, can
 * be told to answer the next requests with an error (and headers such as `Retry-After`) or not at
 * all, and resolves waits when spans arrive.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
interface WireKeyValue {
  key: string;
  value: AnyValue;
}

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  flags?: number;
  attributes: WireKeyValue[];
  events?: { timeUnixNano: string; name: string; attributes?: WireKeyValue[] }[];
  status?: { code?: number; message?: string };
  /** The resource's attributes (added by the receiver). */
  resource: Record<string, string | number | boolean>;
  /** The scope's name (added by the receiver). */
  scope: string;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  spans: number;
}

export type Answer = { status: number; headers?: Record<string, string> } | "hang";

export interface OtlpReceiver {
  /** `http://127.0.0.1:<port>/v1/traces` */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Every request, answered or not, in order. */
  readonly requests: ReceivedRequest[];
  /** The next requests get these answers, in order, before the default 200. */
  answerNext(...answers: Answer[]): void;
  /** Resolves once at least `n` spans arrived (in total). */
  waitForSpans(n: number): Promise<ReceivedSpan[]>;
  /** Resolves once at least `n` requests arrived. */
  waitForRequests(n: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

/** A span's attributes as a plain object (intValue as a number). */
export function attributes(list: readonly WireKeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    if (value.stringValue !== undefined) out[key] = value.stringValue;
    else if (value.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value.doubleValue !== undefined) out[key] = value.doubleValue;
    else if (value.boolValue !== undefined) out[key] = value.boolValue;
  }
  return out;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: ReceivedRequest[] = [];
  const answers: Answer[] = [];
  const waiters = new Set<() => void>();
  const hanging = new Set<ServerResponse>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const answer = answers.shift() ?? { status: 200 };
      const record: ReceivedRequest = {
        method: req.method ?? "",
        path: req.url ?? "",
        contentType: req.headers["content-type"],
        spans: 0,
      };
      requests.push(record);
      if (answer === "hang") {
        hanging.add(res);
        notify();
        return;
      }
      if (answer.status === 200 && req.method === "POST" && req.url === "/v1/traces") {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as {
          resourceSpans: {
            resource: { attributes: WireKeyValue[] };
            scopeSpans: { scope: { name: string }; spans: Omit<ReceivedSpan, "resource" | "scope">[] }[];
          }[];
        };
        for (const rs of body.resourceSpans) {
          const resource = attributes(rs.resource.attributes);
          for (const ss of rs.scopeSpans) {
            for (const span of ss.spans) spans.push({ ...span, resource, scope: ss.scope.name });
            record.spans += ss.spans.length;
          }
        }
      }
      res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
      res.end(answer.status === 200 ? "{}" : JSON.stringify({ code: answer.status, message: "not now" }));
      notify();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  const waitFor = <T>(ready: () => T | null): Promise<T> =>
    new Promise((resolve) => {
      const check = () => {
        const value = ready();
        if (value === null) return;
        waiters.delete(check);
        resolve(value);
      };
      waiters.add(check);
      check();
    });

  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    requests,
    answerNext: (...more) => answers.push(...more),
    waitForSpans: (n) => waitFor(() => (spans.length >= n ? spans : null)),
    waitForRequests: (n) => waitFor(() => (requests.length >= n ? requests : null)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
