/**
 * @module
 * Shared pieces of the agent's tests: a bootstrap document, a memory logger, config documents, a
 * replica that says who answered, and a request with an explicit Host header (fetch() cannot set it,
 * and it is the proxy's routing key).
 */
import { createServer, request } from "node:http";
import type { Logger } from "../../agent/log.ts";
import type { AgentBootstrap } from "../../schema/agent.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { DEFAULT_OBSERVABILITY } from "../../schema/observability.ts";

export const SECRET = "bootstrap-secret-0123456789abcdef0123456789";
export const GATEWAY_ID = "5f0c6a36-8d3e-4c4b-9b7a-2c1f1f6f9e11";

export const bootstrapFor = (url: string): AgentBootstrap => ({
  control_plane_url: url,
  object_id: "ab".repeat(32),
  gateway_id: GATEWAY_ID,
  gateway_name: "edge",
  project_name: "main",
  replica_num: 1,
  bootstrap_secret: SECRET,
});

export function memoryLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
}

/** A valid document routing `llama.localhost` to `replicaUrl`. */
export function configDocument(version: number, replicaUrl: string): ConfigDocument {
  return {
    version,
    gateway: { id: GATEWAY_ID, name: "edge", project: "main", domain: "localhost", router: null },
    services: [
      {
        name: "llama",
        project: "main",
        host: "llama.localhost",
        https: false,
        hsts: null,
        auth: false,
        client_max_body_size: 1_048_576,
        read_timeout_ms: 60_000,
        rate_limits: [],
        model: null,
        router: null,
        replicas: [{ id: `replica-${version}`, url: replicaUrl }],
        usage: "as_requested",
        hold: null,
      },
    ],
    entrypoint: null,
    service_tokens: [],
    acme: null,
    observability: DEFAULT_OBSERVABILITY,
    generated_at: new Date(0).toISOString(),
  };
}

export interface Replica {
  url: string;
  close(): Promise<void>;
}

/** An upstream answering `<name> <method> <path>`. */
export async function startReplica(name: string): Promise<Replica> {
  const server = createServer((req, res) => {
    const body = `${name} ${req.method} ${req.url}`;
    res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** GET `path` on 127.0.0.1:`port` with `Host: host`. */
export function get(port: number, host: string, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers: { host }, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * The agent's socket timings shrunk for tests: stats and health every 100–200 ms. Pings every 2 s:
 * two unanswered pings end the socket, and on a loaded machine (another suite beside this one) an
 * event loop can stall past two 100 ms pings; the tests of liveness set their own.
 */
export const FAST_SOCKET = {
  statsIntervalMs: 100,
  healthIntervalMs: 200,
  pingIntervalMs: 2_000,
  backoff: { initialMs: 50, maxMs: 400 },
  stableAfterMs: 60_000,
  handshakeTimeoutMs: 2_000,
  closeTimeoutMs: 500,
};
