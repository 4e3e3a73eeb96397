import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { TokenSet } from "../../proxy/auth.ts";
import { startProxy } from "../../proxy/index.ts";
import { configDocument, DOMAIN } from "../../proxy/testing/config-builder.ts";
import { send } from "../../proxy/testing/http-client.ts";
import { startReplica } from "../../proxy/testing/replica-server.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const ID = "AbCdEfGhIjKl";
const SECRET = "0123456789abcdefghijABCDEFGHIJ01";
const tokens = new TokenSet([{ id: ID, secret_sha256: sha(SECRET) }]);

describe("TokenSet", () => {
  it.each([
    ["no header", undefined, "missing"],
    ["an empty bearer", "Bearer ", "missing"],
    ["the member's token", `Bearer gpt_${ID}_${SECRET}`, "ok"],
    ["the scheme in another case", `bearer gpt_${ID}_${SECRET}`, "ok"],
    ["a wrong secret", `Bearer gpt_${ID}_${SECRET.replace("0", "1")}`, "invalid"],
    ["an unknown id", `Bearer gpt_ZZZZZZZZZZZZ_${SECRET}`, "invalid"],
    ["not a Gateplane token", "Bearer sk-123", "invalid"],
    ["basic auth", "Basic dXNlcjpwYXNz", "invalid"],
  ] as const)("%s → %s", (_label, header, verdict) => {
    expect(tokens.check(header)).toBe(verdict);
  });

  it("refuses everything when the project has no tokens", () => {
    expect(new TokenSet([]).check(`Bearer gpt_${ID}_${SECRET}`)).toBe("invalid");
  });
});

describe("service auth in the proxy", () => {
  it("answers 401 without a token, 403 with a wrong or revoked one, and forwards a member's", async () => {
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
      auth_tokens: tokens,
    });
    const proxy = await startProxy({
      httpPort: 0,
      workers: 0,
      initialConfig: doc(1, [{ id: ID, secret_sha256: sha(SECRET) }]),
    });
    try {
      const host = `llm.${DOMAIN}`;
      const good = `Bearer gpt_${ID}_${SECRET}`;
      const missing = await send(proxy.port, { host });
      expect(missing.status).toBe(401);
      expect(missing.headers["www-authenticate"]).toBe('Bearer realm="gateplane"');
      expect(
        (await send(proxy.port, { host, headers: { authorization: "Bearer gpt_ZZZZZZZZZZZZ_" + SECRET } })).status,
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
