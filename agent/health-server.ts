/**
 * @module
 * The host's HTTP listener for now: `/healthz` for whoever checks the host, and a 404 naming the
 * requested host for everything else (the place the proxy will take).
 */
import { createServer, type Server } from "node:http";

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(port: number): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const pathname = (req.url ?? "/").split("?")[0];
    if ((req.method === "GET" || req.method === "HEAD") && pathname === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": 2 });
      res.end(req.method === "HEAD" ? undefined : "ok");
      return;
    }
    const body = `no service for host ${req.headers.host ?? "(none)"}`;
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port }, () => resolve());
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
