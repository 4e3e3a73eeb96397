/**
 * @module
 * The benchmark's table: one row per measured run, latency added over the direct run of the same
 * load and round, and Gateplane's throughput as a share of nginx's in the same round.
 */
import type { WrkResult } from "./wrk.ts";

export interface Row {
  load: string;
  round: number;
  target: string;
  result: WrkResult;
  rssBytes: number | null;
  cpuSeconds: number | null;
}

const HEADER = [
  "load",
  "target",
  "req/s",
  "p50 ms",
  "p99 ms",
  "+p50 ms",
  "+p99 ms",
  "errors",
  "peak RSS",
  "CPU s",
  "CPU µs/req",
  "Gateplane/nginx",
];

const ms = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toFixed(3));

export function formatTable(rows: readonly Row[]): string {
  const lines: string[][] = [HEADER];
  for (const row of rows) {
    const peer = (target: string) =>
      rows.find((r) => r.load === row.load && r.round === row.round && r.target === target);
    const direct = peer("direct");
    const nginx = peer("nginx");
    const added = (a: number, b: number | undefined) => (row.target === "direct" || b === undefined ? "" : ms(a - b));
    const cpuPerRequest = (r: Row | undefined) =>
      r?.cpuSeconds == null ? null : (r.cpuSeconds / r.result.requests) * 1e6;
    let ratio = "";
    if (row.target.startsWith("gateplane") && nginx) {
      const nginxCpu = cpuPerRequest(nginx);
      const ownCpu = cpuPerRequest(row);
      ratio = `${((row.result.rps / nginx.result.rps) * 100).toFixed(0)}% req/s`;
      if (nginxCpu && ownCpu) ratio += `, ${(ownCpu / nginxCpu).toFixed(1)}× CPU`;
    }
    lines.push([
      row.load,
      row.target,
      row.result.rps.toFixed(0),
      ms(row.result.p50Ms),
      ms(row.result.p99Ms),
      added(row.result.p50Ms, direct?.result.p50Ms),
      added(row.result.p99Ms, direct?.result.p99Ms),
      String(row.result.errors),
      row.rssBytes === null ? "" : `${(row.rssBytes / 1024 / 1024).toFixed(0)} MiB`,
      row.cpuSeconds === null ? "" : row.cpuSeconds.toFixed(1),
      cpuPerRequest(row)?.toFixed(0) ?? "",
      ratio,
    ]);
  }
  return renderTable(lines);
}

/**
 * Gateplane with metrics (`gateplane`) against without (`gateplane-off`), per load and round: req/s
 * and CPU per request, and the differences; null when the run had not both.
 */
export function formatMetricsCost(rows: readonly Row[]): string | null {
  const lines: string[][] = [
    ["load", "round", "req/s on", "req/s off", "Δ req/s", "CPU µs/req on", "CPU µs/req off", "Δ CPU/req"],
  ];
  const perRequest = (r: Row) => (r.cpuSeconds === null ? null : (r.cpuSeconds / r.result.requests) * 1e6);
  const pct = (a: number, b: number) => `${a >= b ? "+" : ""}${(((a - b) / b) * 100).toFixed(1)}%`;
  for (const on of rows.filter((r) => r.target === "gateplane")) {
    const off = rows.find((r) => r.target === "gateplane-off" && r.load === on.load && r.round === on.round);
    if (!off) continue;
    const cpuOn = perRequest(on);
    const cpuOff = perRequest(off);
    lines.push([
      on.load,
      String(on.round),
      on.result.rps.toFixed(0),
      off.result.rps.toFixed(0),
      pct(on.result.rps, off.result.rps),
      cpuOn?.toFixed(1) ?? "",
      cpuOff?.toFixed(1) ?? "",
      cpuOn !== null && cpuOff !== null ? pct(cpuOn, cpuOff) : "",
    ]);
  }
  return lines.length > 1 ? renderTable(lines) : null;
}

/** A Markdown table: the first line is the header; the first `left` columns align left, the rest (numbers) right. */
export function renderTable(lines: readonly (readonly string[])[], left = 2): string {
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const out: string[] = [];
  for (const [n, line] of lines.entries()) {
    out.push(
      `| ${line.map((cell, i) => (i < left ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(" | ")} |`,
    );
    if (n === 0)
      out.push(`|${widths.map((w, i) => (i < left ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`);
  }
  return out.join("\n");
}
