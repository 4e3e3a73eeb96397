/**
 * `npm start` fires the Worker's cron as production does: a webhook retry that is due but whose
 * dispatcher was never woken (a lost poke, as after a crash) is delivered by the stack's own sweep,
 * with no hand call to the scheduled handler.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WORKER_CRON } from "../../local-host/cron.ts";
import { type Stack, startStack } from "../../local-host/stack.ts";
import { freePort, ROOT } from "../support/stack.ts";

let stack: Stack;
let dir: string;
let receiver: Server;
let receiverUrl: string;
/** Event ids of the deliveries the receiver got. */
const received: string[] = [];
let onDelivery: () => void = () => {};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-cron-"));
  receiver = createServer((req, res) => {
    received.push(String(req.headers["gateplane-event-id"]));
    req.resume();
    req.on("end", () => {
      res.end("ok");
      onDelivery();
    });
  });
  await new Promise<void>((resolve) => receiver.listen({ host: "127.0.0.1", port: 0 }, resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
  stack = await startStack({ dir, port: await freePort(), quiet: true, inspectorPort: 0, cronIntervalMs: 500 });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
}, 60_000);

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
