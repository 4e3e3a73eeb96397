/**
 * End to end, scale from zero: the `npm start` stack with a local gateway whose agent runs the
 * proxy; a service with `replicas: 0..2` and no replica. A request is held by the proxy, the agent
 * tells the control plane, a `service.scaling` event appears; the test plays the orchestrator that
 * reads it, starts a replica and registers it, and the held request completes.
 */
import { writeFile } from "node:fs/promises";
import { createServer, request as httpRequest, type Server } from "node:http";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import type { Service } from "../../schema/service-api.ts";
import { type SharedStack, sharedStack } from "../support/shared-stack.ts";
import { projectApi, ROOT, cli as run, until } from "../support/stack.ts";

let stack: SharedStack;
let gatewayPort: number;
let replica: Server | null = null;

const api = <T>(method: string, route: string, body?: unknown) => projectApi<T>(stack, method, route, body);

function get(pathname: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port: gatewayPort, path: pathname, headers: { host: "cold.localhost" }, agent: false },
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
    req.setTimeout(90_000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}

beforeAll(async () => {
  stack = await sharedStack("zero");
  const applied = await run(stack, "apply", "-f", path.join(ROOT, "examples/local-gateway.dstack.yml"), "-y");
  expect(applied.code).toBe(0);
  const gateway = await api<Gateway>("GET", "/gateways/local-gateway");
  gatewayPort = Number(gateway.replicas[0]!.hostname!.split(":")[1]);
  const file = path.join(stack.dir, "cold.dstack.yml");
  await writeFile(
    file,
    [
      "type: service",
      "name: cold",
      "gateway: local-gateway",
      "https: false",
      "auth: false",
      "replicas: 0..2",
      "scaling: {metric: rps, target: 1, hold_timeout: 60s}",
      "",
    ].join("\n"),
  );
  expect((await run(stack, "apply", "-f", file, "-y")).code).toBe(0);
  await until("configuration applied", async () => {
    const s = await api<Service>("GET", "/services/cold");
    return s.gateway_replicas.length > 0 && s.gateway_replicas.every((r) => r.state === "in_sync");
  });
}, 120_000);

afterAll(async () => {
  await stack?.release();
  if (replica) {
    replica.closeAllConnections();
    await new Promise((resolve) => replica!.close(resolve));
  }
}, 60_000);

it("holds a request for a service with no replica until the orchestrator registers one", async () => {
  const before = await api<Service>("GET", "/services/cold");
  expect(before.scaling).toMatchObject({ desired_replicas: 0, current_replicas: 0 });

  const started = Date.now();
  const held = get("/hello");
  let answered = false;
  void held.then(() => {
    answered = true;
  });

  // The orchestrator's side: watch for the decision.
  const event = await until(
    "service.scaling event",
    async () => {
      const { events } = await api<{ events: { type: string; data: Record<string, unknown> }[] }>(
        "GET",
        "/events?type=service.scaling",
      );
      return events.find((e) => e.data.service === "cold" && e.data.desired_replicas === 1);
    },
    30_000,
  );
  expect(event.data).toMatchObject({ previous_desired_replicas: 0, reason: "request while scaled to zero" });
  const signalledAfter = Date.now() - started;
  expect(answered).toBe(false);

  replica = createServer((_req, res) => res.writeHead(200, { "content-type": "text/plain" }).end("warm"));
  await new Promise<void>((resolve) => replica!.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(replica.address() as { port: number }).port}`;
  const registeredAt = Date.now();
  await api("PUT", "/services/cold/replicas/r1", { url });

  const res = await held;
  const servedAfter = Date.now() - registeredAt;
  expect(res).toEqual({ status: 200, body: "warm" });
  const after = await api<Service>("GET", "/services/cold");
  expect(after.scaling).toMatchObject({ desired_replicas: 1, current_replicas: 1 });
  console.log(
    `scale from zero: event ${signalledAfter} ms after the request; held request served ${servedAfter} ms after the replica was registered`,
  );
}, 120_000);
