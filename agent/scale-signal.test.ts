import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentMessage } from "../schema/agent-protocol.ts";
import { until as waitUntil } from "../test/support/until.ts";
import { ControlPlaneClient } from "./control-plane-client.ts";
import { ScaleSignals } from "./scale-signal.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The control plane's HTTP route as far as the agent can tell: bearer token, JSON body `{service}`. */
async function controlPlane() {
  const calls: { service: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (req.url !== "/api/v1/agent/scale-from-zero" || req.method !== "POST") {
        res.writeHead(404).end();
        return;
      }
      if (req.headers.authorization !== "Bearer agent-token") {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "unauthorized", message: "bad token" } }));
        return;
      }
      const parsed = JSON.parse(body) as { service?: unknown };
      if (typeof parsed.service !== "string") {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "invalid_field", field: "service", message: "service: expected" } }));
        return;
      }
      calls.push({ service: parsed.service });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ changed: true }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls };
}

const quietLog = () => {
  const lines: string[] = [];
  return {
    lines,
    info: (m: string) => lines.push(m),
    warn: (m: string) => lines.push(m),
    error: (m: string) => lines.push(m),
  };
};

const until = (check: () => boolean) => waitUntil("the condition", check, 20_000, 10);

describe("scale-from-zero signals", () => {
  it("go over the WebSocket when it is open, else over HTTP, at most once per interval per service", async () => {
    const cp = await controlPlane();
    const log = quietLog();
    let clock = 1_000_000;
    const signals = new ScaleSignals({
      client: new ControlPlaneClient(cp.url),
      token: () => "agent-token",
      log,
      intervalMs: 200,
      now: () => clock,
    });
    cleanups.push(() => signals.close());
    const frames: AgentMessage[] = [];
    signals.attach((m) => {
      frames.push(m);
      return true;
    });
    signals.notify("chat");
    signals.notify("chat");
    signals.notify("other");
    expect(frames).toEqual([
      { type: "scale_from_zero", service: "chat" },
      { type: "scale_from_zero", service: "other" },
    ]);
    signals.detach();
    const asked = () => log.lines.filter((l) => l.endsWith("asking for one")).length;
    clock += 199;
    signals.notify("chat");
    expect(asked()).toBe(2);
    clock += 1;
    signals.notify("chat");
    signals.notify("chat");
    await until(() => cp.calls.length === 1);
    expect(cp.calls).toEqual([{ service: "chat" }]);
    expect(frames).toHaveLength(2);
  });

  it("fall back to HTTP when the socket cannot take the frame; a refused call is logged", async () => {
    const cp = await controlPlane();
    const log = quietLog();
    let token = "wrong";
    const signals = new ScaleSignals({
      client: new ControlPlaneClient(cp.url),
      token: () => token,
      log,
      intervalMs: 0,
    });
    cleanups.push(() => signals.close());
    signals.attach(() => false);
    signals.notify("chat");
    await until(() => log.lines.some((l) => l.includes("failed")));
    expect(log.lines.find((l) => l.includes("failed"))).toContain("401");
    token = "agent-token";
    signals.notify("chat");
    await until(() => cp.calls.length === 1);
  });

  it("are dropped (and retried by the next held request) before the agent has a token", async () => {
    const cp = await controlPlane();
    const log = quietLog();
    let token: string | null = null;
    const signals = new ScaleSignals({ client: new ControlPlaneClient(cp.url), token: () => token, log });
    cleanups.push(() => signals.close());
    signals.notify("chat");
    expect(log.lines.at(-1)).toContain("not registered");
    token = "agent-token";
    signals.notify("chat");
    await until(() => cp.calls.length === 1);
  });
});
