/**
 * @module
 * Runs wrk and reads its report: requests per second, latency percentiles and errors.
 */
import { spawn, spawnSync } from "node:child_process";

export interface WrkResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Socket errors plus non-2xx/3xx responses. */
  errors: number;
  /** Responses with a status outside 2xx/3xx (the rate-limit benchmark's refusals). */
  non2xx: number;
}

export interface WrkRun {
  url: string;
  host: string;
  connections: number;
  threads: number;
  seconds: number;
  timeoutSeconds?: number;
  /** A Lua script (`-s`), e.g. to vary a header per request. */
  script?: string;
}

export function haveWrk(): boolean {
  return spawnSync("wrk", ["--version"], { stdio: "ignore" }).error === undefined;
}

const UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function duration(text: string | undefined): number {
  const m = text?.match(/^([\d.]+)(us|ms|s|m)$/);
  return m ? Number(m[1]) * UNITS[m[2]!]! : Number.NaN;
}

export function parseWrk(output: string): WrkResult {
  const pct = (p: string) => duration(output.match(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m"))?.[1]);
  const socket = output.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const non2xx = Number(output.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  return {
    requests: Number(output.match(/(\d+) requests in/)?.[1] ?? Number.NaN),
    rps: Number(output.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? Number.NaN),
    p50Ms: pct("50"),
    p99Ms: pct("99"),
    errors: socketErrors + non2xx,
    non2xx,
  };
}

export function runWrk(run: WrkRun): Promise<WrkResult> {
  const args = [
    `-t${run.threads}`,
    `-c${run.connections}`,
    `-d${run.seconds}s`,
    `--timeout`,
    `${run.timeoutSeconds ?? 10}s`,
    "--latency",
    "-H",
    `Host: ${run.host}`,
    ...(run.script ? ["-s", run.script] : []),
    run.url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d;
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code === 0) resolve(parseWrk(out));
      else reject(new Error(`wrk exited with ${code}: ${out}`));
    });
  });
}
