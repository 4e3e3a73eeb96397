import { createHash } from "node:crypto";
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { startReplica } from "../test/fakes/replica-server.ts";
import { startEchoWebSocketServer } from "../test/fakes/websocket-echo.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { TokenSet } from "./auth.ts";
import { startProxy } from "./index.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const ID = "AbCdEfGhIjKl";
const SECRET = "0123456789abcdefghijABCDEFGHIJ01";
const tokens = new TokenSet([{ id: ID, secret_sha256: sha(SECRET) }]);

describe("TokenSet", () => {
  it.each([
    ["no header", undefined, "missing"],
    ["an empty bearer", "Bearer ", "missing"],
    ["the project's service token", `Bearer gps_${ID}_${SECRET}`, "ok"],
    ["the scheme in another case", `bearer gps_${ID}_${SECRET}`, "ok"],
    ["a wrong secret", `Bearer gps_${ID}_${SECRET.replace("0", "1")}`, "invalid"],
    ["an unknown id", `Bearer gps_ZZZZZZZZZZZZ_${SECRET}`, "invalid"],
    // Even one whose id and secret match a listed service token: API tokens never open services.
    ["an API token", `Bearer gpt_${ID}_${SECRET}`, "api_token"],
    ["not a Gateplane token", "Bearer sk-123", "invalid"],
    ["basic auth", "Basic dXNlcjpwYXNz", "invalid"],
  ] as const)("%s → %s", (_label, header, verdict) => {
    expect(tokens.check(header)).toBe(verdict);
  });

  it("refuses everything when the project has no tokens", () => {
    expect(new TokenSet([]).check(`Bearer gps_${ID}_${SECRET}`)).toBe("invalid");
  });
});

describe("service auth in the proxy", () => {
  it("answers 401 without a token, 403 with a wrong or revoked one, and forwards a service token's request", async () => {
    const replica = await startReplica("r");
    const doc = (version: number, tokens: { id: string; secret_sha256: string }[]) => ({
      ...configDocument(version, [
        {
          name: "llm",
          replicas: [replica.url],
          auth: true,
          model: { name: "m1", format: "openai" as const, prefix: "/v1" },
        },
        { name: "open", replicas: [replica.url] },
      ]),
      service_tokens: tokens,
    });
    const proxy = await startProxy({
      httpPort: 0,
      processes: 0,
      initialConfig: doc(1, [{ id: ID, secret_sha256: sha(SECRET) }]),
    });
    try {
      const host = `llm.${DOMAIN}`;
      const good = `Bearer gps_${ID}_${SECRET}`;
      const missing = await send(proxy.port, { host });
      expect(missing.status).toBe(401);
      expect(missing.headers["www-authenticate"]).toBe('Bearer realm="gateplane"');
      expect(
        (await send(proxy.port, { host, headers: { authorization: "Bearer gps_ZZZZZZZZZZZZ_" + SECRET } })).status,
      ).toBe(403);
      expect((await send(proxy.port, { host, headers: { authorization: good } })).status).toBe(200);
      expect((await send(proxy.port, { host: `open.${DOMAIN}` })).status).toBe(200);
      expect(replica.seen).toHaveLength(2);

      const chat = (authorization?: string) =>
        send(proxy.port, {
          host: `gateway.${DOMAIN}`,
          path: "/v1/chat/completions",
          method: "POST",
          headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
          body: JSON.stringify({ model: "m1", messages: [] }),
        });
      const refused = await chat();
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.body).error.type).toBe("authentication_error");
      expect((await chat(good)).status).toBe(200);

      const models = (authorization?: string) =>
        send(proxy.port, {
          host: `gateway.${DOMAIN}`,
          path: "/v1/models",
          headers: authorization ? { authorization } : {},
        });
      expect((await models()).status).toBe(401);
      expect(JSON.parse((await models(good)).body).data.map((m: { id: string }) => m.id)).toEqual(["m1"]);

      await proxy.apply(doc(2, []));
      expect((await models(good)).status).toBe(403);
      expect((await send(proxy.port, { host, headers: { authorization: good } })).status).toBe(403);
      expect((await chat(good)).status).toBe(403);
    } finally {
      await proxy.close();
      await replica.close();
    }
  });
});

describe("credentials the gateway consumed", () => {
  const good = `Bearer gps_${ID}_${SECRET}`;
  const withAuth = (url: string, auth = true) => ({
    ...configDocument(1, [
      { name: "llm", replicas: [url], auth, model: { name: "m1", format: "openai" as const, prefix: "/v1" } },
    ]),
    service_tokens: [{ id: ID, secret_sha256: sha(SECRET) }],
  });

  it("are not forwarded to the replica: service host and OpenAI entrypoint, repeated headers too", async () => {
    const replica = await startReplica("r");
    const proxy = await startProxy({ httpPort: 0, processes: 0, initialConfig: withAuth(replica.url) });
    try {
      const direct = await send(proxy.port, { host: `llm.${DOMAIN}`, headers: { authorization: good } });
      expect(direct.status).toBe(200);
      const chat = await send(proxy.port, {
        host: `gateway.${DOMAIN}`,
        path: "/v1/chat/completions",
        method: "POST",
        headers: { "content-type": "application/json", authorization: good },
        body: JSON.stringify({ model: "m1", messages: [] }),
      });
      expect(chat.status).toBe(200);
      // Node keeps the first of repeated Authorization headers; the second must not slip through.
      const twice = await send(proxy.port, {
        host: `llm.${DOMAIN}`,
        headers: { authorization: [good, "Bearer gpt_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"] },
      });
      expect(twice.status).toBe(200);
      expect(replica.seen).toHaveLength(3);
      for (const seen of replica.seen) {
        expect(seen.rawHeaders.map((h) => h.toLowerCase())).not.toContain("authorization");
        expect(seen.rawHeaders.join("\n")).not.toContain("gps_");
        expect(seen.rawHeaders.join("\n")).not.toContain("gpt_");
      }
    } finally {
      await proxy.close();
      await replica.close();
    }
  });

  it("are not forwarded on WebSocket upgrades", async () => {
    const echo = await startEchoWebSocketServer();
    const proxy = await startProxy({ httpPort: 0, processes: 0, initialConfig: withAuth(echo.url) });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({
          port: proxy.port,
          host: "127.0.0.1",
          headers: {
            host: `llm.${DOMAIN}`,
            connection: "upgrade",
            upgrade: "websocket",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
            "sec-websocket-version": "13",
            authorization: good,
          },
        });
        req.on("upgrade", (res, socket) => {
          socket.destroy();
          resolve(res.statusCode ?? 0);
        });
        req.on("response", (res) => resolve(res.statusCode ?? 0));
        req.on("error", reject);
        req.end();
      });
      expect(status).toBe(101);
      expect(echo.upgrades).toHaveLength(1);
      expect(echo.upgrades[0]!.headers.authorization).toBeUndefined();
    } finally {
      await proxy.close();
      await echo.close();
    }
  });

  it("stay with the request when the service has no auth: the replica's own scheme", async () => {
    const replica = await startReplica("r");
    const proxy = await startProxy({ httpPort: 0, processes: 0, initialConfig: withAuth(replica.url, false) });
    try {
      await send(proxy.port, { host: `llm.${DOMAIN}`, headers: { authorization: "Bearer sk-replica-own" } });
      expect(replica.seen[0]!.headers.authorization).toBe("Bearer sk-replica-own");
    } finally {
      await proxy.close();
      await replica.close();
    }
  });

  it("an API token is refused with a message saying what opens services", async () => {
    const replica = await startReplica("r");
    const proxy = await startProxy({ httpPort: 0, processes: 0, initialConfig: withAuth(replica.url) });
    try {
      const res = await send(proxy.port, {
        host: `llm.${DOMAIN}`,
        headers: { authorization: `Bearer gpt_${ID}_${SECRET}` },
      });
      expect(res.status).toBe(403);
      expect(JSON.parse(res.body).error).toMatch(/an API token \(gpt_…\) does not open services/);
      expect(replica.seen).toHaveLength(0);
    } finally {
      await proxy.close();
      await replica.close();
    }
  });
});
