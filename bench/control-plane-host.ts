/**
 * @module
 * What `bench/control-plane.ts` needs around the local stack: the one replica server every service
 * shares, requests to the gateway's proxy by Host header, the host's processes (agent and proxy,
 * with their children) for RSS, and catalog rows that make a project hold many gateways without
 * provisioning one host each.
 */
import { spawn } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { Agent, createServer, request, type Server } from "node:http";
import path from "node:path";
import { processTree, rssBytes } from "./procfs.ts";

/** What the shared replica answers, so a proxy error page is never taken for a routed request. */
export const REPLICA_BODY = "gp-bench-replica";

/** One tiny HTTP server on 127.0.0.1 answering any request: every service's replica. */
export async function replicaServer(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    res.end(REPLICA_BODY);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

/** Keep-alive connections to the proxy: the routing cost is measured without a handshake per request. */
export const keepAlive = new Agent({ keepAlive: true, maxSockets: 4 });

/** GET / on `port` with `host` as the Host header; status and body (errors as status 0). */
export function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/", headers: { host }, agent: keepAlive }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", () => resolve({ status: 0, body: "" }));
    });
    req.on("error", () => resolve({ status: 0, body: "" }));
    req.end();
  });
}

/** Every `proxy.pid` under `dir` (the proxy outlives the agent, so it is not in the agent's tree). */
async function proxyPids(dir: string): Promise<number[]> {
  const out: number[] = [];
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  for (const entry of entries) {
    if (path.basename(entry) !== "proxy.pid") continue;
    const pid = Number((await readFile(path.join(dir, entry), "utf8").catch(() => "")).trim());
    if (pid > 0) out.push(pid);
  }
  return out;
}

/** Summed RSS of the host's agent and proxy, with their children (SGLang router, serving processes). */
export async function hostRssBytes(agentPid: number, instanceDir: string): Promise<number> {
  const pids = new Set(processTree(agentPid));
  for (const pid of await proxyPids(instanceDir)) for (const p of processTree(pid)) pids.add(p);
  let sum = 0;
  for (const pid of pids) sum += rssBytes(pid);
  return sum;
}

const sqlText = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * Adds `count` gateways to the D1 catalog, copies of `template` (a gateway's catalog snapshot) under
 * new names, through `wrangler d1 execute --local` on the stack's state. They have no object and no
 * host: the list reads only the catalog, so this measures listing without provisioning 1,000 hosts.
 */
export async function seedCatalogGateways(
  root: string,
  persistTo: string,
  sqlFile: string,
  template: { name: string; id: string } & Record<string, unknown>,
  count: number,
): Promise<void> {
  const rows: string[] = [];
  const base = Date.parse("2000-01-01T00:00:00.000Z");
  for (let i = 0; i < count; i++) {
    const id = crypto.randomUUID();
    const name = `seeded-${String(i).padStart(5, "0")}`;
    const created = new Date(base + i * 1000).toISOString();
    const snapshot = JSON.stringify({ ...template, id, name, created_at: created });
    rows.push(
      `INSERT INTO gateways (id, project_id, name, object_id, backend, region, status, hostname, wildcard_domain, to_be_deleted, version, snapshot, created_at, updated_at)
       SELECT ${sqlText(id)}, project_id, ${sqlText(name)}, ${sqlText(`seeded-${id}`)}, backend, region, status, hostname, wildcard_domain, 0, 1, ${sqlText(snapshot)}, ${sqlText(created)}, ${sqlText(created)}
       FROM gateways WHERE id = ${sqlText(template.id)};`,
    );
  }
  await writeFile(sqlFile, rows.join("\n"));
  const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
  const args = ["d1", "execute", "DB", "--local", "--persist-to", persistTo, "--config", "wrangler.toml"];
  const child = spawn(wrangler, [...args, "--file", sqlFile], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`wrangler d1 execute exited with ${code}: ${output.slice(-2000)}`);
}
