/**
 * @module
 * A real Prometheus server for tests (Debian's `prometheus`, `.ci/run` installs it): on 127.0.0.1 at a
 * free port, its data in a temporary directory, scraping the given targets every second. `close`
 * stops it (SIGTERM, then SIGKILL after a bound) and removes the directory; it only ever stops the
 * process it started.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./ports.ts";
import { until } from "./until.ts";

export interface PrometheusServer {
  readonly url: string;
  /** An instant query's vector: each result's labels and value (a number; NaN as Prometheus says it). */
  query(expr: string): Promise<{ metric: Record<string, string>; value: number }[]>;
  /** What the server wrote on stderr (its log), for failure messages. */
  log(): string;
  close(): Promise<void>;
}

export async function startPrometheus(targets: string[]): Promise<PrometheusServer> {
  const dir = await mkdtemp(path.join(tmpdir(), "gp-prometheus-"));
  const port = await freePort();
  const config = [
    "global:",
    "  scrape_interval: 1s",
    "  evaluation_interval: 1s",
    "scrape_configs:",
    "  - job_name: gateplane",
    "    scrape_interval: 1s",
    "    scrape_timeout: 1s",
    "    static_configs:",
    `      - targets: [${targets.map((t) => JSON.stringify(t)).join(", ")}]`,
    "",
  ].join("\n");
  await writeFile(path.join(dir, "prometheus.yml"), config);
  let output = "";
  const child: ChildProcess = spawn(
    "prometheus",
    [
      `--config.file=${path.join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  child.stderr?.on("data", (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until(
      "prometheus to be ready",
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited: ${output}`);
        return (await fetch(`${url}/-/ready`)).ok;
      },
      30_000,
      100,
    );
  } catch (err) {
    await close();
    throw err;
  }
  return {
    url,
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await res.json()) as {
        status: string;
        error?: string;
        data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      if (body.status !== "success" || body.data?.resultType !== "vector") {
        throw new Error(`query ${expr}: ${body.error ?? JSON.stringify(body)}`);
      }
      return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    log: () => output,
    close,
  };
}
