import { afterEach, describe, expect, it } from "vitest";
import { type Echo, startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { rawExchange, send } from "../test/support/http-client.ts";
import { ConfigRejectedError, type ProxyHandle, ProxyOptionsError, startProxy } from "./index.ts";

const replicas: TestReplica[] = [];
const proxies: ProxyHandle[] = [];

async function replica(name: string, handler?: Parameters<typeof startReplica>[1]): Promise<TestReplica> {
  const r = await startReplica(name, handler);
  replicas.push(r);
  return r;
}

async function proxy(initialConfig: Parameters<typeof startProxy>[0]["initialConfig"]): Promise<ProxyHandle> {
  const p = await startProxy({ httpPort: 0, processes: 0, initialConfig });
  proxies.push(p);
  return p;
}

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(replicas.splice(0).map((r) => r.close()));
});

const echoOf = (body: string) => JSON.parse(body) as Echo;

describe("routing", () => {
  it("routes by Host, case-insensitively and ignoring the port, prepending the replica's path prefix", async () => {
    const a = await replica("a");
    const b = await replica("b");
    const p = await proxy(
      configDocument(1, [
        { name: "alpha", replicas: [a.url] },
        { name: "beta", replicas: [`${b.url}/base/`] },
      ]),
    );
    const toA = await send(p.port, { host: `Alpha.${DOMAIN.toUpperCase()}:8080`, path: "/v1/models?x=1" });
    expect(toA.status).toBe(200);
    expect(echoOf(toA.body)).toMatchObject({ replica: "a", url: "/v1/models?x=1" });
    const toB = await send(p.port, { host: `beta.${DOMAIN}`, path: "/v1/chat" });
    expect(echoOf(toB.body)).toMatchObject({ replica: "b", url: "/base/v1/chat" });
  });

  it("answers 404 with a short text for an unknown host; the entrypoint lists no models here", async () => {
    const a = await replica("a");
    const p = await proxy(configDocument(1, [{ name: "alpha", replicas: [a.url] }]));
    const unknown = await send(p.port, { host: `nobody.${DOMAIN}` });
    expect(unknown.status).toBe(404);
    expect(unknown.headers["content-type"]).toMatch(/^text\/plain/);
    expect(unknown.body).toBe(`no service for host nobody.${DOMAIN}\n`);
    const entry = await send(p.port, { host: `gateway.${DOMAIN}`, path: "/v1/models" });
    expect(entry.status).toBe(200);
    expect(JSON.parse(entry.body)).toEqual({ object: "list", data: [] });
    expect(a.seen).toHaveLength(0);
  });

  it("passes /healthz to the service like any other path", async () => {
    const a = await replica("a");
    const p = await proxy(configDocument(1, [{ name: "alpha", replicas: [a.url] }]));
    const res = await send(p.port, { host: `alpha.${DOMAIN}`, path: "/healthz" });
    expect(echoOf(res.body)).toMatchObject({ replica: "a", url: "/healthz" });
  });

  it("serves nothing but 404s before the first document", async () => {
    const p = await proxy(null);
    expect((await send(p.port, { host: `alpha.${DOMAIN}` })).status).toBe(404);
  });

  it("round-robins across replicas", async () => {
    const a = await replica("a");
    const b = await replica("b");
    const p = await proxy(configDocument(1, [{ name: "alpha", replicas: [a.url, b.url] }]));
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push(echoOf((await send(p.port, { host: `alpha.${DOMAIN}` })).body).replica);
    expect(order).toEqual(["a", "b", "a", "b", "a", "b"]);
  });

  it("answers 503 with Retry-After for a service without replicas, and reaches nobody", async () => {
    const p = await proxy(configDocument(1, [{ name: "alpha", replicas: [] }]));
    const res = await send(p.port, { host: `alpha.${DOMAIN}` });
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("5");
    expect(JSON.parse(res.body).error).toMatch(/no replicas/);
  });
});

describe("applying documents", () => {
  it("routes to a replica added by apply at once, and to a new service", async () => {
    const a = await replica("a");
    const b = await replica("b");
    const p = await proxy(configDocument(1, [{ name: "alpha", replicas: [a.url] }]));
    await p.apply(
      configDocument(2, [
        { name: "alpha", replicas: [a.url, b.url] },
        { name: "gamma", replicas: [b.url] },
      ]),
    );
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(echoOf((await send(p.port, { host: `alpha.${DOMAIN}` })).body).replica);
    expect(seen).toEqual(new Set(["a", "b"]));
    expect(echoOf((await send(p.port, { host: `gamma.${DOMAIN}` })).body).replica).toBe("b");
  });

  it("rejects an invalid document with every reason and keeps serving the previous one", async () => {
    const a = await replica("a");
    const p = await proxy(configDocument(1, [{ name: "alpha", replicas: [a.url] }]));
    const bad = configDocument(2, [
      { name: "alpha", replicas: ["ftp://127.0.0.1:21"] },
      { name: "beta", host: `alpha.${DOMAIN}`, replicas: [] },
    ]);
    const err = await p.apply(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigRejectedError);
    expect((err as ConfigRejectedError).version).toBe(2);
    expect((err as Error).message).toContain("services[0].replicas[0].url: expected an http or https URL");
    expect((err as Error).message).toContain(`services[1].host: alpha.${DOMAIN} is already the host of services[0]`);
    const schemaErr = await p.apply({ version: 0 } as never).catch((e: unknown) => e);
    expect(schemaErr).toBeInstanceOf(ConfigRejectedError);
    expect((schemaErr as Error).message).toMatch(/^configuration version 0 rejected: version: /);
    expect(echoOf((await send(p.port, { host: `alpha.${DOMAIN}` })).body).replica).toBe("a");
  });

  it("validates options eagerly", async () => {
    await expect(startProxy({ httpPort: -1, processes: 0 })).rejects.toBeInstanceOf(ProxyOptionsError);
    await expect(startProxy({ httpPort: 0, processes: 1.5 })).rejects.toThrow(/processes/);
    await expect(startProxy({ httpPort: 0, processes: 0, initialConfig: { version: 1 } as never })).rejects.toThrow(
      /^initialConfig: configuration version 1 rejected/,
    );
    // A caller that validates what it applies still has its document from disk checked here.
    await expect(
      startProxy({ httpPort: 0, processes: 0, validatedDocuments: true, initialConfig: { version: 1 } as never }),
    ).rejects.toThrow(/^initialConfig: configuration version 1 rejected/);
    await expect(startProxy({ httpPort: 0, processes: 0, validatedDocuments: "yes" as never })).rejects.toThrow(
      /^validatedDocuments: expected true or false/,
    );
  });
});

describe("headers", () => {
  it("adds X-Forwarded-* and X-Real-IP, appending to an existing X-Forwarded-For", async () => {
    const a = await replica("a");
    const p = await proxy(configDocument(1, [{ name: "alpha", replicas: [a.url] }]));
    const res = await send(p.port, {
      host: `alpha.${DOMAIN}:4000`,
      headers: { "x-forwarded-for": "203.0.113.7", "x-real-ip": "6.6.6.6", "x-forwarded-proto": "https" },
    });
    const seen = echoOf(res.body).headers;
    expect(seen["x-forwarded-for"]).toBe("203.0.113.7, 127.0.0.1");
    expect(seen["x-real-ip"]).toBe("127.0.0.1");
    expect(seen["x-forwarded-proto"]).toBe("http");
    expect(seen["x-forwarded-host"]).toBe(`alpha.${DOMAIN}:4000`);
    expect(seen.host).toBe(`alpha.${DOMAIN}:4000`);
  });

  it("strips hop-by-hop headers on the way in", async () => {
    const a = await replica("a");
    const p = await proxy(configDocument(1, [{ name: "alpha", replicas: [a.url] }]));
    const reply = await rawExchange(
      p.port,
      `GET / HTTP/1.1\r\nHost: alpha.${DOMAIN}\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n` +
        "TE: trailers\r\nTrailer: X-T\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\n" +
        "X-Kept: yes\r\nConnection: close\r\n\r\n",
    );
    const body = echoOf(reply.slice(reply.indexOf("\r\n\r\n") + 4));
    const names = body.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const hop of [
      "x-secret",
      "keep-alive",
      "te",
      "trailer",
      "proxy-authorization",
      "proxy-connection",
      "upgrade",
    ]) {
      expect(names).not.toContain(hop);
    }
    expect(body.headers["x-kept"]).toBe("yes");
    // undici's own connection management, not the client's.
    expect(body.headers.connection).toBe("keep-alive");
  });

  it("strips hop-by-hop headers on the way out", async () => {
    const a = await replica("a", (_req, res) => {
      res.writeHead(200, {
        connection: "x-internal",
        "x-internal": "1",
        "keep-alive": "timeout=1",
        "proxy-authenticate": "Basic",
        trailer: "x-t",
        upgrade: "h2c",
        "x-kept": "yes",
      });
      res.end("ok");
    });
    const p = await proxy(configDocument(1, [{ name: "alpha", replicas: [a.url] }]));
    const res = await send(p.port, { host: `alpha.${DOMAIN}` });
    expect(res.body).toBe("ok");
    const names = res.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const hop of ["x-internal", "proxy-authenticate", "trailer", "upgrade"]) expect(names).not.toContain(hop);
    expect(res.headers["x-kept"]).toBe("yes");
    // The replica's keep-alive parameters describe its connection to the proxy, not the client's.
    expect(res.rawHeaders).not.toContain("timeout=1");
  });
});
