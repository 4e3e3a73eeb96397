/**
 * Hostile request bodies (issue 11, items 6 and 7): none is a 500, each is refused before it is
 * read whole or walked recursively, and keys that JavaScript treats specially are unknown keys.
 */
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { app } from "../../worker/app.ts";
import { ADMIN, api, localConfig, newProject, unique } from "./helpers.ts";

const BASE = "http://gateplane.test";

async function post(path: string, body: BodyInit, headers: Record<string, string> = {}, token: string | null = ADMIN) {
  const res = await SELF.fetch(`${BASE}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** `depth` nested mappings: `{"a":{"a":…{}}}`. */
const nested = (depth: number) => `${'{"a":'.repeat(depth)}{}${"}".repeat(depth)}`;

describe("agent registration with a foreign object id", () => {
  it("is a 400 naming object_id, not a 500", async () => {
    // A valid id of another namespace: 64 hex characters the GATEWAYS namespace did not mint.
    const foreign = env.GATEWAYS.newUniqueId()
      .toString()
      .replace(/^./, (c) => (c === "0" ? "1" : "0"));
    const res = await api(
      "POST",
      "/api/v1/agent/register",
      {
        object_id: foreign,
        gateway_id: crypto.randomUUID(),
        replica_num: 0,
        bootstrap_secret: "x".repeat(43),
      },
      null,
    );
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe("object_id");
  });
});

describe("deeply nested JSON", () => {
  it("is a 400 naming the field, not a stack overflow", async () => {
    const project = await newProject();
    const configuration = JSON.stringify(localConfig("gw-deep"));
    const body = `{"plan":{"spec":{"configuration":${configuration}},"current_resource":{"id":"x","configuration":${nested(3000)}}}}`;
    const res = await post(`/api/v1/projects/${project}/gateways/apply`, body);
    expect(res.status).toBe(400);
    expect(res.body.error.field).toMatch(/^plan\.current_resource\.configuration(\.a)+$/);
    expect(res.body.error.message).toMatch(/nested deeper than 64/);
  });

  it("accepts 64 levels", async () => {
    const res = await post("/api/v1/agent/register", `{"x":${nested(62)}}`, {}, null);
    // Depth is fine: the schema then refuses the unknown key.
    expect(res.status).toBe(400);
    expect(res.body.error.field).not.toMatch(/\.a\.a/);
  });
});

describe("bodies over the limit", () => {
  // In-process (`app.fetch`, the Worker's own handler): through SELF the runtime pumps the request
  // stream over a connection, so how much of it the Worker pulled cannot be observed there.
  async function postStream(stream: ReadableStream<Uint8Array>, headers: Record<string, string>) {
    const req = new Request(`${BASE}/api/v1/agent/register`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: stream,
    });
    const ctx = createExecutionContext();
    const res = await app.fetch(req, env, ctx);
    await waitOnExecutionContext(ctx);
    return { status: res.status, body: (await res.json()) as { error: { code: string } } };
  }

  it("are refused by Content-Length before they are read", async () => {
    let pulled = 0;
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += chunk.byteLength;
        if (pulled > 4 << 20) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await postStream(stream, { "content-length": String(4 << 20) });
    expect(res.status).toBe(413);
    expect(pulled).toBeLessThan(2 << 20);
  });

  it("stop being read at the limit when the length is unknown", async () => {
    let pulled = 0;
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += chunk.byteLength;
        if (pulled > 8 << 20) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await postStream(stream, {});
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("body_too_large");
    expect(pulled).toBeLessThan(3 << 20);
  });

  it("still accept a body just under the limit", async () => {
    const res = await post(
      "/api/v1/agent/register",
      `{"version":"${" ".repeat(1000)}"}${" ".repeat((1 << 20) - 1100)}`,
      {},
      null,
    );
    expect(res.status).toBe(400);
    expect(res.body.error.code).not.toBe("body_too_large");
  });
});

describe("__proto__, constructor and prototype keys", () => {
  for (const key of ["__proto__", "constructor", "prototype"]) {
    it(`${key} is an unknown field at the top level and inside records`, async () => {
      const project = await newProject();
      const top = await post("/api/v1/projects", `{"name":"${unique("p")}","${key}":{"x":1}}`);
      expect(top.status).toBe(400);
      expect(top.body.error.field).toBe(key);
      expect(top.body.error.message).toMatch(/unknown field/);

      const inTags = `{"spec":{"configuration":{"type":"gateway","name":"gw-k","backend":"local","domain":"localhost","tags":{"${key}":"v"}}}}`;
      const res = await post(`/api/v1/projects/${project}/gateways/plan`, inTags);
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe(`spec.configuration.tags.${key}`);
    });
  }
});
