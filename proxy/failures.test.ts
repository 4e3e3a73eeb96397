import { Agent as HttpAgent, request } from "node:http";
import { type AddressInfo, createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type Echo, type Handler, startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN, type ServiceSpec } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { until } from "../test/support/until.ts";
import { type ProxyHandle, startTunedProxy } from "./index.ts";
import { ProxyServer } from "./server.ts";
import { DEFAULT_SERVER_SETTINGS } from "./settings.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function replica(name: string, handler?: Handler, port?: number): Promise<TestReplica> {
  const r = await startReplica(name, handler, port);
  cleanups.push(() => r.close());
  return r;
}

async function proxy(services: ServiceSpec[], log: string[] = []): Promise<ProxyHandle> {
  const p = await startTunedProxy(
    { httpPort: 0, processes: 0, initialConfig: configDocument(1, services), log: (line) => log.push(line) },
    { settings: { drainTimeoutMs: 2_000 } },
  );
  cleanups.push(() => p.close());
  return p;
}

const HOST = `alpha.${DOMAIN}`;
const replicaOf = (body: string) => (JSON.parse(body) as Echo).replica;

describe("errors", () => {
  it("answers 502 when no replica accepts connections", async () => {
    const gone = await startReplica("gone");
    await gone.close();
    const p = await proxy([{ name: "alpha", replicas: [gone.url] }]);
    const res = await send(p.port, { host: HOST });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toEqual({ error: "the replica could not be reached" });
  });

  it("answers 504 when the replica sends no headers within read_timeout_ms", async () => {
    const silent = await replica("silent", () => {});
    const p = await proxy([{ name: "alpha", replicas: [silent.url], read_timeout_ms: 300 }]);
    const started = Date.now();
    const res = await send(p.port, { host: HOST });
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body).error).toMatch(/did not answer in time/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it("cuts the response when the replica stalls mid-body past read_timeout_ms", async () => {
    const stalling = await replica("stalling", (_req, res) => {
      res.writeHead(200, { "content-length": "100" });
      res.write("partial");
    });
    const p = await proxy([{ name: "alpha", replicas: [stalling.url], read_timeout_ms: 300 }]);
    await expect(send(p.port, { host: HOST })).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
  });

  it("answers 502 when the replica's answer is not HTTP", async () => {
    const garbage = createServer((socket) => {
      socket.on("data", () => socket.end("SSH-2.0-OpenSSH_9.6\r\n\r\n"));
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => garbage.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => garbage.close(resolve)));
    const port = (garbage.address() as AddressInfo).port;
    const p = await proxy([{ name: "alpha", replicas: [`http://127.0.0.1:${port}`] }]);
    const res = await send(p.port, { host: HOST });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toEqual({ error: "the replica sent an invalid response" });
  });

  it("relays a replica's own 5xx as it is", async () => {
    const failing = await replica("failing", (_req, res) => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end("model crashed");
    });
    const p = await proxy([{ name: "alpha", replicas: [failing.url] }]);
    const res = await send(p.port, { host: HOST });
    expect(res.status).toBe(500);
    expect(res.body).toBe("model crashed");
  });
});

describe("passive health", () => {
  it("keeps serving from the surviving replica when one is killed, with no client-visible error", async () => {
    const a = await replica("a");
    const b = await replica("b");
    const log: string[] = [];
    const p = await proxy([{ name: "alpha", replicas: [a.url, b.url] }], log);
    const agent = new HttpAgent({ keepAlive: true });
    cleanups.push(async () => agent.destroy());
    const statuses: number[] = [];
    const servedBy: string[] = [];
    for (let i = 0; i < 30; i++) {
      if (i === 6) await b.kill();
      // POST with a body: a request that never reached the dead replica is safe to send elsewhere.
      const res = await send(p.port, { host: HOST, method: "POST", body: `n=${i}`, agent });
      statuses.push(res.status);
      if (res.status === 200) servedBy.push(replicaOf(res.body));
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(servedBy.slice(0, 6)).toEqual(["a", "b", "a", "b", "a", "b"]);
    expect(servedBy.slice(6).every((r) => r === "a")).toBe(true);
    expect(log.some((l) => l.includes("replica alpha-1 of service alpha ejected"))).toBe(true);
  });

  it("still tries a replica when every replica is ejected, and it is back in service on success", async () => {
    const a = await replica("a");
    const port = a.port;
    const log: string[] = [];
    const p = await proxy([{ name: "alpha", replicas: [a.url] }], log);
    await a.close();
    for (let i = 0; i < 4; i++) expect((await send(p.port, { host: HOST })).status).toBe(502);
    expect(log.some((l) => l.includes("ejected for 10s"))).toBe(true);
    await replica("a-again", undefined, port);
    const res = await send(p.port, { host: HOST });
    expect(res.status).toBe(200);
    expect(replicaOf(res.body)).toBe("a-again");
    expect(log.at(-1)).toContain("is back in service");
  });
});

describe("removing replicas", () => {
  it("lets requests on a removed replica finish, sends new ones elsewhere, then closes its connections", async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = await replica("slow", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("first half, ");
      void released.then(() => res.end("second half"));
    });
    const fast = await replica("fast");
    const p = await proxy([{ name: "alpha", replicas: [slow.url, fast.url] }]);
    const inFlight = send(p.port, { host: HOST });
    await until("the request on the slow replica", () => slow.seen.length > 0);
    expect(slow.seen).toHaveLength(1);

    await p.apply(configDocument(2, [{ name: "alpha", replicas: [fast.url] }]));
    for (let i = 0; i < 3; i++) expect(replicaOf((await send(p.port, { host: HOST })).body)).toBe("fast");
    expect(slow.openConnections).toBe(1);

    release();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.body).toBe("first half, second half");
    await until("the removed replica's connections closed", () => slow.openConnections === 0);
    expect(slow.openConnections).toBe(0);
  });
});

describe("in-flight accounting", () => {
  it("counts a request from dispatch to its end, exactly once whatever the outcome", async () => {
    let hold!: () => void;
    const held = new Promise<void>((resolve) => {
      hold = resolve;
    });
    const a = await replica("a", (req, res) => {
      if (req.url === "/hold") void held.then(() => res.end("released"));
      else if (req.url === "/silent") return;
      else res.end("ok");
    });
    const gone = await startReplica("gone");
    await gone.close();
    const server = new ProxyServer({ ...DEFAULT_SERVER_SETTINGS, drainTimeoutMs: 1_000 }, () => {});
    server.apply(
      configDocument(1, [
        { name: "alpha", replicas: [a.url] },
        { name: "beta", replicas: [gone.url, a.url] },
        { name: "gamma", replicas: [{ id: "impatient", url: a.url }], read_timeout_ms: 200 },
      ]),
    );
    const port = await server.listen({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => server.close());
    const inFlight = () => Object.fromEntries(server.replicas().map((r) => [`${r.service}/${r.id}`, r.inFlight]));

    const holding = send(port, { host: HOST, path: "/hold" });
    await until("the held request on the replica", () => a.seen.some((r) => r.url === "/hold"));
    expect(inFlight()).toEqual({ "alpha/alpha-0": 1, "beta/beta-0": 0, "beta/beta-1": 0, "gamma/impatient": 0 });
    // Retried from the dead replica to the live one; timed out; cut by the client.
    expect((await send(port, { host: `beta.${DOMAIN}` })).status).toBe(200);
    expect((await send(port, { host: `gamma.${DOMAIN}`, path: "/silent" })).status).toBe(504);
    await new Promise<void>((resolve) => {
      const req = request({ host: "127.0.0.1", port, path: "/silent", setHost: false, headers: { host: HOST } });
      req.on("error", () => resolve());
      req.end();
      // Cut by the client once the request is on the replica (counted), not after a guessed pause.
      const silent = a.seen.filter((r) => r.url === "/silent").length;
      void until(
        "the request to cut on the replica",
        () => a.seen.filter((r) => r.url === "/silent").length > silent,
      ).then(() => req.destroy());
    });
    hold();
    expect((await holding).body).toBe("released");
    // The count drops when the proxy sees each exchange end, which may follow the client's view.
    await until("no request in flight", () => server.replicas().every((r) => r.inFlight === 0));
    expect(inFlight()).toEqual({ "alpha/alpha-0": 0, "beta/beta-0": 0, "beta/beta-1": 0, "gamma/impatient": 0 });
  });
});
