/**
 * @module
 * nginx for the benchmark, run as the current user from its own prefix under os.tmpdir() (config,
 * pid, logs, temp paths), in the foreground (`daemon off`) so the benchmark owns its process.
 * Two roles: the tiny upstream (`return 200`), and the peer proxy configured as dstack configures
 * its gateway (an upstream block per service, `proxy_pass` with keep-alive to the upstream).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { userInfo } from "node:os";
import path from "node:path";

export function haveNginx(): boolean {
  return spawnSync("nginx", ["-v"], { stdio: "ignore" }).error === undefined;
}

export interface ProxiedService {
  host: string;
  upstream: string;
  /** `limit_req_zone <key> … rate=<rate>` + `limit_req … burst=<burst> nodelay`, as dstack writes a rate limit. */
  rateLimit?: { key: string; rate: string; burst: number };
}

function common(dir: string, workers: string): string {
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};\n` : "";
  return `${user}daemon off;
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
`;
}

function temps(dir: string): string {
  return ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((t) => `  ${t}_temp_path ${dir}/${t}_temp;`)
    .join("\n");
}

/** A fast local endpoint: `GET /` answers a 3-byte body. */
export function upstreamConfig(dir: string, port: number): string {
  return `${common(dir, "1")}http {
${temps(dir)}
  access_log off;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "ok\\n"; }
  }
}
`;
}

/**
 * The peer proxy, after dstack's `service.jinja2`: one upstream per service, `proxy_pass` with the
 * same X-Real-IP/Host headers and 300 s read timeout, the `dstack_stat` access log its stats collector
 * tails, plus upstream keep-alive (`keepalive`, HTTP/1.1, empty Connection) and the X-Forwarded-*
 * headers Gateplane also sends, so both proxies do the same work.
 */
export function proxyConfig(dir: string, port: number, services: readonly ProxiedService[]): string {
  const blocks = services
    .map(
      (s, i) => `${
        s.rateLimit ? `  limit_req_zone ${s.rateLimit.key} zone=z${i}:10m rate=${s.rateLimit.rate};\n` : ""
      }  upstream u${i} {
    server ${s.upstream};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    server_name ${s.host};
    client_max_body_size 64m;
    access_log ${dir}/dstack.access.log dstack_stat;
    limit_req_status 429;
    location / {${
      s.rateLimit
        ? `\n      limit_req zone=z${i}${s.rateLimit.burst > 0 ? ` burst=${s.rateLimit.burst} nodelay` : ""};`
        : ""
    }
      proxy_pass http://u${i};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_read_timeout 300s;
    }
  }`,
    )
    .join("\n");
  return `${common(dir, "auto")}http {
${temps(dir)}
  log_format dstack_stat '$time_iso8601 $host $status $request_time 1';
  keepalive_timeout 75s;
  keepalive_requests 100000;
${blocks}
}
`;
}

export interface Nginx {
  readonly pid: number;
  stop(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nginx did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts nginx with `config` in `dir`; resolves once it accepts on `port`. */
export async function startNginx(dir: string, config: string, port: number): Promise<Nginx> {
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, "nginx.conf");
  writeFileSync(conf, config);
  const child = spawn("nginx", ["-p", dir, "-c", conf, "-e", path.join(dir, "error.log")], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    await waitForPort(port, child, 10_000);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return {
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        // SIGTERM is nginx's fast shutdown; its workers follow the master.
        child.kill("SIGTERM");
      }),
  };
}
