import { Agent as HttpAgent } from "node:http";
import { afterAll, expect, it } from "vitest";
import { type Handler, startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { type ProxyHandle, startProxy } from "./index.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Answers after a few milliseconds; `/stream` trickles ten parts over ~100 ms. */
const slowish =
  (name: string): Handler =>
  (req, res) => {
    req.resume();
    if (req.url?.endsWith("/stream")) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      let n = 0;
      const timer = setInterval(() => {
        res.write(`data: ${name} ${n}\n\n`);
        if (++n === 10) {
          clearInterval(timer);
          res.end();
        }
      }, 10);
      return;
    }
    setTimeout(() => res.end(name), Math.random() * 5);
  };

it("drops no request, new or in flight, across repeated applies under load", async () => {
  const replicas: TestReplica[] = [];
  for (const name of ["a", "b", "c", "d"]) {
    const r = await startReplica(name, slowish(name));
    replicas.push(r);
    cleanups.push(() => r.close());
  }
  const urls = replicas.map((r) => r.url);
  const documentFor = (version: number) => {
    // Rotate which two of a, b, c serve alpha, so every apply adds one replica and removes another
    // (closing its connection pool while requests may still run on it).
    const serving = [urls[version % 3]!, urls[(version + 1) % 3]!];
    return configDocument(version, [
      { name: "alpha", replicas: serving },
      { name: "beta", replicas: [urls[3]!], read_timeout_ms: 10_000 + version },
    ]);
  };
  const proxy: ProxyHandle = await startProxy({ httpPort: 0, processes: 0, initialConfig: documentFor(1) });
  cleanups.push(() => proxy.close());
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 32 });
  cleanups.push(async () => agent.destroy());

  let running = true;
  const failures: string[] = [];
  let completed = 0;
  // Applies are paced by completed requests, not by the clock: under load the machine still sees
  // traffic between every two applies.
  let waiter: { target: number; resolve: () => void } | null = null;
  const completedAtLeast = (target: number) =>
    new Promise<void>((resolve) => {
      if (completed >= target) resolve();
      else waiter = { target, resolve };
    });
  const client = async (i: number) => {
    while (running) {
      const streaming = i % 4 === 0;
      const host = `${i % 3 === 0 ? "beta" : "alpha"}.${DOMAIN}`;
      try {
        const res = await send(proxy.port, {
          host,
          agent,
          method: i % 2 ? "POST" : "GET",
          path: streaming ? "/stream" : "/",
          ...(i % 2 ? { body: `client ${i}` } : {}),
        });
        const intact = streaming ? (res.body.match(/^data: /gm) ?? []).length === 10 : /^[abcd]$/.test(res.body);
        if (res.status !== 200 || !intact) failures.push(`${res.status} ${res.body.slice(0, 80)}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      completed++;
      if (waiter && completed >= waiter.target) {
        waiter.resolve();
        waiter = null;
      }
    }
  };
  const clients = Array.from({ length: 16 }, (_, i) => client(i));
  for (let version = 2; version <= 40; version++) {
    await completedAtLeast(completed + 8);
    await proxy.apply(documentFor(version));
  }
  running = false;
  await Promise.all(clients);

  expect(failures).toEqual([]);
  expect(completed).toBeGreaterThan(300);
  // Every replica took traffic at some point.
  for (const r of replicas) expect(r.seen.length).toBeGreaterThan(0);
});
