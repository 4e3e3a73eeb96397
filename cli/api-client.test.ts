import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ControlPlane } from "./api-client.ts";
import { ControlPlaneError, NetworkError } from "./errors.ts";

let server: Server | null = null;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = null;
});

/** A server answering every request with `handler`'s status and body, recording what it received. */
async function serve(handler: (body: string) => [number, string] | null) {
  const seen: { method: string; url: string; auth: string | undefined; body: string }[] = [];
  server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    seen.push({ method: req.method ?? "", url: req.url ?? "", auth: req.headers.authorization, body });
    const answer = handler(body);
    if (!answer) return; // never answer
    res.writeHead(answer[0], { "content-type": "application/json" });
    res.end(answer[1]);
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen };
}

describe("ControlPlane", () => {
  it("sends the token and JSON bodies under /api/v1, escaping names", async () => {
    const { url, seen } = await serve(() => [202, '{"name":"a b"}']);
    const api = new ControlPlane({ url, token: "tok" });
    await api.delete("my project", "a b");
    await api.apply("p", { spec: { configuration: {}, configuration_path: null }, current_resource: null }, true);
    expect(seen[0]).toMatchObject({
      method: "DELETE",
      url: "/api/v1/projects/my%20project/gateways/a%20b",
      auth: "Bearer tok",
    });
    expect(seen[1]?.url).toBe("/api/v1/projects/p/gateways/apply");
    expect(JSON.parse(seen[1]!.body)).toEqual({
      plan: { spec: { configuration: {}, configuration_path: null }, current_resource: null },
      force: true,
    });
  });

  it("turns error bodies into ControlPlaneError with code, message and field", async () => {
    const { url } = await serve(() => [
      400,
      '{"error":{"code":"invalid","message":"region: required","field":"region"}}',
    ]);
    const error = await new ControlPlane({ url, token: "t" }).get("p", "g").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ControlPlaneError);
    expect(error).toMatchObject({ status: 400, code: "invalid", message: "region: required", field: "region" });
  });

  it("describes a response that is not our error shape by its status", async () => {
    const { url } = await serve(() => [502, "<html>bad gateway</html>"]);
    await expect(new ControlPlane({ url, token: "t" }).list("p")).rejects.toThrow(
      `GET ${url}/api/v1/projects/p/gateways?limit=100 failed: HTTP 502 Bad Gateway`,
    );
  });

  it("reports a server that does not answer in time as unreachable", async () => {
    const { url } = await serve(() => null);
    const error = await new ControlPlane({ url, token: "t" }, 50).list("p").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as Error).message).toBe(`cannot reach the control plane at ${url}: no answer within 0.05 s`);
  });

  it("lets the caller's abort through as an abort, not a network error", async () => {
    const { url } = await serve(() => null);
    const abort = new AbortController();
    const pending = new ControlPlane({ url, token: "t" }).get("p", "g", abort.signal);
    setTimeout(() => abort.abort(), 20);
    const error = await pending.catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(NetworkError);
    expect((error as Error).name).toBe("AbortError");
  });
});
