/**
 * @module
 * `npm run bench:e2e`: replica propagation through the `npm start` stack, the figure
 * test/node/e2e-dataplane.test.ts used to assert (p95 < 1 s) and now leaves to this benchmark, since
 * a wall-clock bound in a test fails on a loaded machine without any defect. One local gateway, one
 * service; per round a new replica server is registered through the API and the time until the
 * gateway's proxy first routes a request to it is measured (API call to first routed answer), then
 * the replica is removed. Prints p50, p95 and max, and the API call alone. Installs nothing.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { startStack } from "../local-host/stack.ts";
import type { Gateway } from "../schema/api.ts";
import type { Service } from "../schema/service-api.ts";
import { cli, freePort, projectApi, ROOT, until } from "../test/support/stack.ts";
import { renderTable } from "./report.ts";

const { values: args } = parseArgs({ options: { rounds: { type: "string", default: "20" } } });
const rounds = Number(args.rounds);
const HOST = "echo.localhost";

const dir = await mkdtemp(path.join(tmpdir(), "gp-bench-e2e-"));
const stack = await startStack({ dir, port: await freePort(), quiet: true });
const servers: Server[] = [];

const api = <T>(method: string, route: string, body?: unknown) => projectApi<T>(stack, method, route, body);

async function replica(id: string): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => res.end(`replica:${id}`));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, headers: { host: HOST }, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => {
        body += c;
      });
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.end();
  });
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]!;

try {
  const applied = await cli(stack, "apply", "-f", path.join(ROOT, "examples/local-gateway.dstack.yml"), "-y");
  if (applied.code !== 0) throw new Error(`gateway apply: ${applied.stderr}`);
  const gateway = await api<Gateway>("GET", "/gateways/local-gateway");
  const port = Number(gateway.replicas[0]!.hostname!.split(":")[1]);
  const file = path.join(dir, "echo.dstack.yml");
  await writeFile(file, "type: service\nname: echo\ngateway: local-gateway\nhttps: false\nauth: false\n");
  if ((await cli(stack, "apply", "-f", file, "-y")).code !== 0) throw new Error("service apply failed");
  const first = await replica("a");
  await api("PUT", "/services/echo/replicas/a", { url: first.url });
  await until("the gateway in sync", async () => {
    const s = await api<Service>("GET", "/services/echo");
    return s.gateway_replicas.length > 0 && s.gateway_replicas.every((r) => r.state === "in_sync");
  });

  const delays: number[] = [];
  const apiTimes: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const id = `n${i}`;
    const r = await replica(id);
    const started = performance.now();
    await api("PUT", `/services/echo/replicas/${id}`, { url: r.url });
    apiTimes.push(performance.now() - started);
    // Both replicas take turns: poll until the new one answers.
    await until(`${id} routable`, async () => (await get(port)) === `replica:${id}`, 10_000, 5);
    delays.push(performance.now() - started);
    await api("DELETE", `/services/echo/replicas/${id}`);
    r.server.closeAllConnections();
    r.server.close();
  }
  delays.sort((a, b) => a - b);
  apiTimes.sort((a, b) => a - b);
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  console.log(`replica propagation, ${rounds} rounds (load average ${loadavg()[0]!.toFixed(2)})`);
  console.log(
    renderTable(
      [
        ["measure", "p50", "p95", "max"],
        ["API call to first routed request", ms(pct(delays, 0.5)), ms(pct(delays, 0.95)), ms(delays.at(-1)!)],
        ["the API call alone", ms(pct(apiTimes, 0.5)), ms(pct(apiTimes, 0.95)), ms(apiTimes.at(-1)!)],
      ],
      1,
    ),
  );
} finally {
  await stack.stop();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await rm(dir, { recursive: true, force: true });
}
