/**
 * End to end through the data plane: the `npm start` stack, a local gateway whose agent runs the
 * proxy, a service with real replica servers, and clients on loopback. Covers routing, SSE,
 * WebSockets, replica failure, propagation time, and control-plane outages. On the same stack (its
 * cron fast), the stack's cron as production fires it: a webhook retry that is due but whose
 * dispatcher was never woken (a lost poke, as after a crash) is delivered by the stack's own sweep,
 * with no hand call to the scheduled handler. These tests stop and restart the control plane, so
 * they have a stack of their own (not the shared one).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, request as httpRequest, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { WORKER_CRON } from "../../local-host/cron.ts";
import { type Stack, startStack } from "../../local-host/stack.ts";
import type { Gateway } from "../../schema/api.ts";
import type { Service } from "../../schema/service-api.ts";
import { hosts as daemonHosts, freePort, projectApi, ROOT, cli as run, until } from "../support/stack.ts";

const HOST = "echo.localhost";

let stack: Stack;
let dir: string;
let gatewayPort: number;
let receiver: Server | undefined;
let receiverUrl: string;
/** Event ids of the deliveries the webhook receiver got. */
const received: string[] = [];
let onDelivery: () => void = () => {};
const replicas = new Map<string, { server: Server; url: string; sent: number[] }>();
const cli = (...args: string[]) => run(stack, ...args);
const hosts = () => daemonHosts(stack);

const api = <T>(method: string, route: string, body?: unknown) => projectApi<T>(stack, method, route, body);

/** A replica: answers with its id, streams SSE on /sse, echoes WebSocket messages on /ws. */
async function startReplica(id: string): Promise<string> {
  const sent: number[] = [];
  const server = createHttpServer((req, res) => {
    if (req.url === "/sse") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      let n = 0;
      const timer = setInterval(() => {
        sent.push(Date.now());
        res.write(`data: chunk-${n}\n\n`);
        if (++n === 5) {
          clearInterval(timer);
          res.end();
        }
      }, 150);
      req.on("close", () => clearInterval(timer));
      return;
    }
    res.writeHead(200, { "content-type": "text/plain" }).end(`replica:${id}`);
  });
  const wss = new WebSocketServer({ server, path: "/ws" });
  wss.on("connection", (socket) => socket.on("message", (data) => socket.send(`echo:${id}:${data}`)));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}`;
  replicas.set(id, { server, url, sent });
  return url;
}

async function stopReplica(id: string): Promise<void> {
  const r = replicas.get(id);
  if (!r) return;
  replicas.delete(id);
  r.server.closeAllConnections();
  await new Promise((resolve) => r.server.close(resolve));
}

/** One request through the gateway's proxy with the service's Host header. */
function get(pathname = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port: gatewayPort, path: pathname, headers: { host: HOST }, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.setTimeout(5000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}

const inSync = async () => {
  const s = await api<Service>("GET", "/services/echo");
  return s.gateway_replicas.length > 0 && s.gateway_replicas.every((r) => r.state === "in_sync") ? s : null;
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-e2e-dp-"));
  const hooks = createHttpServer((req, res) => {
    received.push(String(req.headers["gateplane-event-id"]));
    req.resume();
    req.on("end", () => {
      res.end("ok");
      onDelivery();
    });
  });
  receiver = hooks;
  await new Promise<void>((resolve) => hooks.listen({ host: "127.0.0.1", port: 0 }, resolve));
  receiverUrl = `http://127.0.0.1:${(hooks.address() as { port: number }).port}/hook`;
  stack = await startStack({ dir, port: await freePort(), quiet: true, inspectorPort: 0, cronIntervalMs: 500 });
  const applied = await cli("apply", "-f", path.join(ROOT, "examples/local-gateway.dstack.yml"), "-y");
  expect(applied.code).toBe(0);
  const gateway = await api<Gateway>("GET", "/gateways/local-gateway");
  gatewayPort = Number(gateway.replicas[0]!.hostname!.split(":")[1]);
  const file = path.join(dir, "echo.dstack.yml");
  await writeFile(file, "type: service\nname: echo\ngateway: local-gateway\nhttps: false\nauth: false\n");
  expect((await cli("apply", "-f", file, "-y")).code).toBe(0);
  for (const id of ["a", "b"]) {
    const url = await startReplica(id);
    const added = await cli("service", "replica", "add", "echo", "--id", id, "--url", url);
    expect(added.stderr).toBe("");
  }
  await until("configuration applied", inSync);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  for (const id of [...replicas.keys()]) await stopReplica(id);
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe("data plane, end to end", () => {
  it("routes requests for the service's host to both replicas; unknown hosts get 404", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const res = await get();
      expect(res.status).toBe(200);
      seen.add(res.body);
    }
    expect([...seen].sort()).toEqual(["replica:a", "replica:b"]);
    const unknown = await new Promise<number>((resolve, reject) => {
      httpRequest({ host: "127.0.0.1", port: gatewayPort, headers: { host: "nope.localhost" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on("error", reject)
        .end();
    });
    expect(unknown).toBe(404);
  });

  it("streams SSE chunk by chunk", async () => {
    const arrivals: number[] = [];
    await new Promise<void>((resolve, reject) => {
      httpRequest({ host: "127.0.0.1", port: gatewayPort, path: "/sse", headers: { host: HOST } }, (res) => {
        res.on("data", () => arrivals.push(Date.now()));
        res.on("end", resolve);
      })
        .on("error", reject)
        .end();
    });
    expect(arrivals.length).toBeGreaterThanOrEqual(5);
    // Whichever replica served it: each chunk arrived before that replica sent the next one.
    const sent = [...replicas.values()].map((r) => r.sent).find((s) => s.length === 5)!;
    for (let i = 0; i < 4; i++) expect(arrivals[i]!).toBeLessThan(sent[i + 1]!);
  });

  it("passes WebSockets through", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${gatewayPort}/ws`, { headers: { host: HOST } });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.on("open", () => ws.send("hello"));
      ws.on("message", (data) => resolve(String(data)));
      ws.on("error", reject);
    });
    expect(reply).toMatch(/^echo:[ab]:hello$/);
    ws.close();
  });

  // How fast (p95 under 1 s on an idle machine) is `npm run bench:e2e`'s figure: a wall-clock bound
  // here would fail on a loaded machine without any defect.
  it("makes each newly registered replica routable", async () => {
    for (let i = 0; i < 8; i++) {
      const id = `n${i}`;
      const url = await startReplica(id);
      await api("PUT", `/services/echo/replicas/${id}`, { url });
      await until(`${id} routable`, async () => (await get()).body === `replica:${id}`, 5_000);
      await api("DELETE", `/services/echo/replicas/${id}`);
      await stopReplica(id);
    }
  });

  it("keeps serving on the other replica when one dies", async () => {
    await until("in sync", inSync);
    await stopReplica("b");
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await get()).status);
    // The proxy may need a few failures to eject the dead replica; after that, no errors.
    const firstOk = statuses.lastIndexOf(502) + 1;
    expect(firstOk).toBeLessThanOrEqual(3);
    expect(statuses.slice(firstOk).every((s) => s === 200)).toBe(true);
    await api("DELETE", "/services/echo/replicas/b");
  });

  it("keeps serving while the control plane is down, even across an agent restart", async () => {
    await until("in sync", inSync);
    await stack.stopControlPlane();
    for (let i = 0; i < 5; i++) expect((await get()).body).toBe("replica:a");

    const host = (await hosts()).find((h) => h.state === "running" && h.hostname.endsWith(`:${gatewayPort}`))!;
    process.kill(host.pid!, "SIGKILL");
    // The daemon restarts the agent (as systemd would); it serves its last config from disk.
    const back = await until("served after the agent restart", async () => {
      const now = (await hosts()).find((h) => h.instance_id === host.instance_id);
      if (!now?.pid || now.pid === host.pid) return null;
      return (await get()).body === "replica:a" ? now : null;
    });
    expect(back.pid).not.toBe(host.pid);

    await stack.startControlPlane();
    await until("agent reconnected and in sync", inSync, 30_000);
    expect((await get()).body).toBe("replica:a");
  }, 60_000);
});

describe("the stack's cron", () => {
  it("is wrangler.toml's cron", async () => {
    const toml = await readFile(path.join(ROOT, "wrangler.toml"), "utf8");
    expect(/^crons\s*=\s*\[(.*)\]/m.exec(toml)?.[1]).toBe(JSON.stringify(WORKER_CRON));
  });

  it("delivers a due retry whose dispatcher was never woken", async () => {
    const created = await fetch(`${stack.url}/api/v1/projects/${stack.project}/webhooks`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
      body: JSON.stringify({ url: receiverUrl, events: ["*"] }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    // Written behind the control plane's back while it is down: nothing pokes the dispatcher and
    // it has no alarm, so only the sweep (`pokeOverdue`, run by the cron) can find this delivery.
    await stack.stopControlPlane();
    const now = Date.now();
    const insert = `INSERT INTO webhook_deliveries (webhook_id, event_id, event_key, event_type, attempts, next_attempt_at, retry_until)
      VALUES ('${id}', NULL, 'ping_lostwakeup', 'ping', 1, ${now - 1_000}, ${now + 3_600_000})`;
    await promisify(execFile)(
      path.join(ROOT, "node_modules/.bin/wrangler"),
      ["d1", "execute", "DB", "--local", "--persist-to", path.join(dir, "wrangler"), "--command", insert],
      { cwd: ROOT, env: { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false" } },
    );
    const delivered = new Promise<void>((resolve) => {
      onDelivery = () => received.includes("ping_lostwakeup") && resolve();
    });
    await stack.startControlPlane();
    await delivered;
    expect(received).toEqual(["ping_lostwakeup"]);
  }, 90_000);
});
