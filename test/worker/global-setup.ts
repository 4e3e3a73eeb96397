/**
 * Starts, for the Workers-pool tests, the real local host daemon behind a fault-injecting proxy on
 * the port the config chose (the DO reaches it as LOCAL_HOST_DAEMON_URL). Hosts run a placeholder
 * process: agents cannot reach the in-process Worker, so tests register them through the API.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { startHostDaemon } from "../../local-host/daemon.ts";

export default async function setup() {
  const shared = (globalThis as { gpPool?: { port: number; token: string } }).gpPool;
  if (!shared) throw new Error("test/worker/vitest.config.ts did not choose the daemon's port");
  const { port, token } = shared;
  const stateDir = await mkdtemp(path.join(tmpdir(), "gp-pool-hosts-"));
  const daemon = await startHostDaemon({
    stateDir,
    port: 0,
    token,
    // `sleep`, not a Node process: dozens of hosts are created per run, and each Node start costs
    // a tenth of a second of CPU that the serial Workers pool waits on.
    agentCommand: () => ({
      command: "sleep",
      args: ["2147483647"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    }),
    stopGraceMs: 1000,
    log: () => {},
  });
  const faults = { fail_creates: 0, drop_creates: 0, fail_deletes: 0, creates_seen: 0 };
  const proxy = createServer((req, res) => {
    if (req.url === "/__faults") {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        if (req.method === "POST") Object.assign(faults, JSON.parse(body || "{}"));
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(faults));
      });
      return;
    }
    const isCreate = req.method === "POST" && req.url?.startsWith("/v1/instances");
    if (isCreate) faults.creates_seen++;
    if (isCreate && faults.fail_creates > 0) {
      faults.fail_creates--;
      req.resume();
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "Unavailable", message: "injected: host capacity exhausted" } }));
      return;
    }
    if (req.method === "DELETE" && faults.fail_deletes > 0) {
      faults.fail_deletes--;
      req.resume();
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "Unavailable", message: "injected: terminate failed" } }));
      return;
    }
    const drop = isCreate && faults.drop_creates > 0;
    if (drop) faults.drop_creates--;
    const upstream = request(`${daemon.url}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
      if (drop) {
        // The instance was created, but its answer is lost: the caller must find it again by token.
        up.resume();
        up.on("end", () => req.socket.destroy());
        return;
      }
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(port, "127.0.0.1", resolve));
  return async () => {
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
    await daemon.stop();
    await rm(stateDir, { recursive: true, force: true });
  };
}
