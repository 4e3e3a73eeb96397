/**
 * A real webhook receiver for the Workers-pool tests: a Node HTTP server on the port the config
 * chose (the Worker reaches it as WEBHOOK_RECEIVER_URL). Each test uses its own path. A receiver
 * path verifies signatures with the README's snippet (`docs/verify-webhook.mjs`), deduplicates on
 * `Gateplane-Event-Id` as the README advises, and can be told to fail or stall its next deliveries.
 * `POST /__control/<path>` programs it; `GET /__control/<path>` returns what it saw.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
// @ts-expect-error: a plain .mjs snippet without types, executed as users would copy it.
import { verifyWebhook } from "../../docs/verify-webhook.mjs";

interface Program {
  /** Verify signatures with this secret (every delivery is recorded either way). */
  secret?: string;
  /** Answer the next N deliveries with `fail_status` (default 500). */
  fail_next: number;
  fail_status: number;
  /** When failing, process the event first (the "did the work, then crashed before answering" case). */
  process_then_fail: boolean;
  /** Wait this long before answering the next N deliveries. */
  delay_ms: number;
  delay_next: number;
}

interface Seen {
  headers: IncomingHttpHeaders;
  body: string;
  verified: boolean | null;
  status: number;
  at: number;
}

interface Endpoint {
  program: Program;
  seen: Seen[];
  /** Event ids the receiver processed, once each. */
  processed: string[];
}

const verify = verifyWebhook as (body: string, header: string | undefined, secret: string) => boolean;

export default async function setup() {
  const shared = (globalThis as { gpWebhooks?: { port: number } }).gpWebhooks;
  if (!shared) throw new Error("test/worker/vitest.config.ts did not choose the receiver's port");
  const endpoints = new Map<string, Endpoint>();
  const endpoint = (path: string): Endpoint => {
    let e = endpoints.get(path);
    if (!e) {
      e = {
        program: { fail_next: 0, fail_status: 500, process_then_fail: false, delay_ms: 0, delay_next: 0 },
        seen: [],
        processed: [],
      };
      endpoints.set(path, e);
    }
    return e;
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const url = new URL(req.url ?? "/", "http://receiver");
      if (url.pathname.startsWith("/__control/")) {
        const e = endpoint(url.pathname.slice("/__control".length));
        if (req.method === "POST") Object.assign(e.program, JSON.parse(body || "{}"));
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(e));
        return;
      }
      const e = endpoint(url.pathname);
      const p = e.program;
      const verified = p.secret
        ? verify(body, req.headers["gateplane-signature"] as string | undefined, p.secret)
        : null;
      const process = () => {
        const id = String(req.headers["gateplane-event-id"]);
        if (verified !== false && !e.processed.includes(id)) e.processed.push(id);
      };
      if (p.delay_next > 0) {
        p.delay_next--;
        await new Promise((r) => setTimeout(r, p.delay_ms));
      }
      let status = 200;
      if (p.fail_next > 0) {
        p.fail_next--;
        status = p.fail_status;
        if (p.process_then_fail) process();
      } else if (verified === false) {
        status = 400;
      } else {
        process();
      }
      e.seen.push({ headers: req.headers, body, verified, status, at: Date.now() });
      if (!res.destroyed)
        res.writeHead(status, { "content-type": "text/plain" }).end(status < 300 ? "ok" : `nope ${status}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(shared.port, "127.0.0.1", resolve));
  return async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}
