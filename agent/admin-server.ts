/**
 * @module
 * The agent's own endpoint, `GET /healthz` on 127.0.0.1:<admin port>, for whoever supervises the host
 * (a load balancer's health check goes through the proxy's port instead, which services own). It says
 * whether the agent is registered, which config version the proxy serves, and whether the control
 * plane's WebSocket is up; it answers 200 whenever the agent runs, since none of these stop traffic.
 * `GET /metrics` beside it: the host's metrics in Prometheus's text format (the proxy's series summed
 * over its processes, and the agent's own), for a Prometheus on the host or one that reaches it.
 */

import { createServer, type Server, type ServerResponse } from "node:http";
import type { RouterReport, ServiceRejection } from "../schema/agent-protocol.ts";

export interface AgentStatus {
  registered: boolean;
  /** Version of the config document the proxy serves; null before the first one. */
  config_version: number | null;
  /** Services of that version the proxy does not serve as configured (kept at their last good state, or left out). */
  rejected_services: ServiceRejection[];
  control_plane_connected: boolean;
  status: "healthy" | "degraded";
  message: string | null;
  agent_version: string;
  /** How each service whose router is sglang is balanced (`sglang/routers.ts`). */
  routers: RouterReport[];
}

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

/** The exposition and its content type (`text/plain; version=0.0.4`). */
export interface MetricsEndpoint {
  render(): Promise<string>;
  contentType: string;
}

export async function startAdminServer(
  port: number,
  status: () => AgentStatus,
  metrics?: MetricsEndpoint,
): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    const pathname = (req.url ?? "/").split("?")[0];
    if (pathname === "/metrics" && metrics) {
      serveMetrics(req.method, res, metrics);
      return;
    }
    if (pathname !== "/healthz") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("not found");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" });
      res.end();
      return;
    }
    const body = JSON.stringify(status());
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // Loopback only: it describes the host to its operators, not to the internet.
    server.listen({ host: "127.0.0.1", port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function serveMetrics(method: string | undefined, res: ServerResponse, metrics: MetricsEndpoint): void {
  if (method !== "GET" && method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" });
    res.end();
    return;
  }
  metrics.render().then(
    (body) => {
      res.writeHead(200, {
        "content-type": metrics.contentType,
        "content-length": Buffer.byteLength(body),
        "cache-control": "no-store",
      });
      res.end(method === "HEAD" ? undefined : body);
    },
    (err: Error) => {
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
      res.end(`metrics unavailable: ${err.message}\n`);
    },
  );
}
