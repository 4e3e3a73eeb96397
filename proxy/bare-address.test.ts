/**
 * The gateway's bare address (`127.0.0.1:PORT`, `localhost:PORT`), for clients that cannot resolve
 * `*.localhost`: `/v1/…` is the OpenAI entrypoint and `/proxy/services/<project>/<service>/…` is
 * that service, each exactly as on its own host (auth, rate limits), prefix stripped.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type Echo, startReplica } from "../test/fakes/replica-server.ts";
import { selfSignedCertificate } from "../test/fakes/tls/self-signed.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { startProxy } from "./index.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const ID = "AbCdEfGhIjKl";
const SECRET = "0123456789abcdefghijABCDEFGHIJ01";
const TOKEN = `Bearer gps_${ID}_${SECRET}`;

describe("the gateway's bare address", () => {
  it("serves services under /proxy/services/ and the entrypoint under /v1 with their auth and limits", async () => {
    const replica = await startReplica("r");
    const proxy = await startProxy({
      httpPort: 0,
      processes: 0,
      initialConfig: {
        ...configDocument(1, [
          {
            name: "llm",
            replicas: [replica.url],
            auth: true,
            model: { name: "m1", format: "openai" as const, prefix: "/v1" },
          },
          {
            name: "open",
            replicas: [replica.url],
            rate_limits: [{ prefix: "/limited", key: { type: "ip_address" }, rps: 1 / 60, burst: 0 }],
          },
        ]),
        service_tokens: [{ id: ID, secret_sha256: sha(SECRET) }],
      },
    });
    try {
      const bare = `127.0.0.1:${proxy.port}`;
      const opened = await send(proxy.port, { host: bare, path: "/proxy/services/main/open/a/b?c=1" });
      expect(opened.status).toBe(200);
      expect((JSON.parse(opened.body) as Echo).url).toBe("/a/b?c=1");
      expect(
        (await send(proxy.port, { host: `localhost:${proxy.port}`, path: "/proxy/services/main/open" })).status,
      ).toBe(200);
      expect(replica.seen.map((r) => r.url)).toEqual(["/a/b?c=1", "/"]);

      // Rate limits apply to the path the service receives, as on its own host.
      expect((await send(proxy.port, { host: bare, path: "/proxy/services/main/open/limited" })).status).toBe(200);
      expect((await send(proxy.port, { host: bare, path: "/proxy/services/main/open/limited" })).status).toBe(429);

      // Auth as on the service's host.
      const llm = (authorization?: string) =>
        send(proxy.port, {
          host: bare,
          path: "/proxy/services/main/llm/v1/models",
          headers: authorization ? { authorization } : {},
        });
      expect((await llm()).status).toBe(401);
      expect((await llm("Bearer gps_ZZZZZZZZZZZZ_" + SECRET)).status).toBe(403);
      expect((await llm(TOKEN)).status).toBe(200);

      // The entrypoint, as on gateway.<domain>.
      const models = (authorization?: string) =>
        send(proxy.port, { host: bare, path: "/v1/models", headers: authorization ? { authorization } : {} });
      expect((await models()).status).toBe(401);
      expect(JSON.parse((await models(TOKEN)).body).data.map((m: { id: string }) => m.id)).toEqual(["m1"]);
      const chat = await send(proxy.port, {
        host: bare,
        path: "/v1/chat/completions",
        method: "POST",
        headers: { "content-type": "application/json", authorization: TOKEN },
        body: JSON.stringify({ model: "m1", messages: [] }),
      });
      expect(chat.status).toBe(200);
      expect((JSON.parse(chat.body) as Echo).url).toBe("/v1/chat/completions");

      // Anything else on the bare address is still unrouted.
      for (const path of ["/", "/proxy/services/main/nope/", "/proxy/services/other/open/", "/healthz"]) {
        expect((await send(proxy.port, { host: bare, path })).status, path).toBe(404);
      }
    } finally {
      await proxy.close();
      await replica.close();
    }
  });
});

describe("the bare address over plain HTTP, for hosts with a certificate", () => {
  it("redirects to the service's or the entrypoint's own HTTPS host, prefix stripped", async () => {
    const replica = await startReplica("r");
    const proxy = await startProxy({
      httpPort: 0,
      httpsPort: 0,
      processes: 0,
      initialConfig: configDocument(1, [
        { name: "llm", replicas: [replica.url], model: { name: "m1", format: "openai" as const, prefix: "/v1" } },
        { name: "plain", replicas: [replica.url] },
      ]),
    });
    try {
      const certificates = [`llm.${DOMAIN}`, `gateway.${DOMAIN}`].map((host) => ({
        host,
        ...selfSignedCertificate({ commonName: host, subjectAltName: `DNS:${host}`, key: "ec-p256" }),
      }));
      await proxy.setCertificates(certificates);
      const bare = `127.0.0.1:${proxy.port}`;
      const service = await send(proxy.port, { host: bare, path: "/proxy/services/main/llm/v1/models?x=1" });
      expect(service.status).toBe(301);
      expect(service.headers.location).toBe(`https://llm.${DOMAIN}:${proxy.httpsPort}/v1/models?x=1`);
      const entrypoint = await send(proxy.port, { host: bare, path: "/v1/models" });
      expect(entrypoint.status).toBe(301);
      expect(entrypoint.headers.location).toBe(`https://gateway.${DOMAIN}:${proxy.httpsPort}/v1/models`);
      // A service without a certificate is served over plain HTTP, as on its own host.
      expect((await send(proxy.port, { host: bare, path: "/proxy/services/main/plain/" })).status).toBe(200);
      expect(replica.seen).toHaveLength(1);
    } finally {
      await proxy.close();
      await replica.close();
    }
  });
});
