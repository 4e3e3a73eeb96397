/**
 * @module
 * `npm run bench:metrics`: what measuring costs, in CPU, on the code alone (no sockets, no other
 * process), so the figure holds on a busy host where `bench:proxy`'s runs swing by ±15 %: a tiny
 * request's observation, record and registry update; a 200-event stream's; the SSE meter per event
 * (a vLLM chat chunk), with and without withholding; the JSON usage reader per KiB; and the engine
 * scraper's parse of one replica's `/metrics` (vLLM v1 with 2 engines, the test fixture), pushed in
 * 16-KiB pieces as the socket delivers it, then padded with more vLLM histograms (series the
 * collector skips, as a real exposition's many histograms) to show how the cost grows with size.
 * Each figure is the median of 7 runs of CPU time (user + system) over many iterations.
 */
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ReadingCollector } from "../proxy/engine/engine-reading.ts";
import { ExpositionParser } from "../proxy/engine/exposition-parser.ts";
import { JsonUsage } from "../proxy/observe/json-usage.ts";
import { Observation } from "../proxy/observe/observation.ts";
import { MetricsRegistry } from "../proxy/observe/registry.ts";
import { SseMeter } from "../proxy/observe/sse-meter.ts";
import { configDocument } from "../test/support/config-builder.ts";
import { renderTable } from "./report.ts";
import { chatChunk } from "./sse-upstream.ts";

/** CPU nanoseconds per call of `f`, the median of 7 runs of `n` calls. */
function cpu(n: number, f: (i: number) => void): number {
  const runs: number[] = [];
  for (let run = 0; run < 7; run++) {
    const before = process.cpuUsage();
    for (let i = 0; i < n; i++) f(i);
    const spent = process.cpuUsage(before);
    runs.push(((spent.user + spent.system) * 1000) / n);
  }
  return runs.sort((a, b) => a - b)[3]!;
}

const registry = new MetricsRegistry();
registry.retain(
  configDocument(1, [
    { name: "tiny", replicas: ["http://127.0.0.1:1"] },
    { name: "chat", replicas: ["http://127.0.0.1:2"], model: { name: "llama", format: "openai", prefix: "/v1" } },
  ]),
);
const sinks = [registry.sink];
const req = { method: "POST", url: "/v1/chat/completions" } as IncomingMessage;
const res = { headersSent: true, statusCode: 200, writableFinished: true } as ServerResponse;
const tinyRoute = { name: "tiny", project: "main", model: null };
const chatRoute = { name: "chat", project: "main", model: { name: "llama" } };
const event = Buffer.from(chatChunk(1, " lorem"));
const usage = Buffer.from(
  `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: 9, completion_tokens: 200, total_tokens: 209 } })}\n\n`,
);
const body = Buffer.from(
  JSON.stringify({
    id: "c",
    object: "chat.completion",
    choices: [{ index: 0, message: { role: "assistant", content: "x".repeat(4000) }, finish_reason: "stop" }],
    usage: { prompt_tokens: 9, completion_tokens: 1000, total_tokens: 1009 },
  }),
);

const tiny = cpu(200_000, (i) => {
  const o = new Observation(req, "tiny.example.test", "127.0.0.1", i, sinks);
  o.route = tinyRoute;
  o.replica = "tiny-0";
  o.firstByteAt = i + 0.1;
  o.bytesOut = 3;
  o.finish(res, i + 0.2);
});
const stream = cpu(5_000, (i) => {
  const o = new Observation(req, "chat.example.test", "127.0.0.1", i, sinks);
  o.route = chatRoute;
  o.replica = "chat-0";
  const meter = new SseMeter();
  o.sse = meter;
  for (let e = 0; e < 200; e++) meter.feed(event, i + e);
  meter.feed(usage, i + 200);
  o.finish(res, i + 201);
});
let meter = new SseMeter();
const perEvent = cpu(1_000_000, (i) => {
  if (i % 200 === 0) meter = new SseMeter();
  meter.feed(event, i);
});
let withholding = new SseMeter(true);
const perEventWithheld = cpu(1_000_000, (i) => {
  if (i % 200 === 0) withholding = new SseMeter(true);
  withholding.feed(event, i);
});
const perKiB =
  (cpu(50_000, () => {
    const u = new JsonUsage();
    u.feed(body);
    u.end();
  }) *
    1024) /
  body.length;

// One scrape: parse as it arrives, then the reading (`proxy/engine/scraper.ts` does the same).
const VLLM = readFileSync(new URL("../test/node/fixtures/engine-metrics/vllm-v1-dp2.prom", import.meta.url), "utf8");
/** The fixture's TTFT histogram (both engines), renamed: a family the collector skips unread. */
const TTFT = VLLM.split("\n")
  .filter((l) => l.includes("vllm:time_to_first_token_seconds"))
  .join("\n");
const padded = (families: number) =>
  VLLM +
  Array.from({ length: families }, (_, k) =>
    TTFT.replaceAll("vllm:time_to_first_token_seconds", `vllm:bench_pad_${k}_seconds`),
  ).join("\n") +
  "\n";
const pieces = (text: string) =>
  Array.from({ length: Math.ceil(text.length / 16384) }, (_, i) => text.slice(i * 16384, (i + 1) * 16384));
const scrapeCost = (text: string) => {
  const chunks = pieces(text);
  const ns = cpu(Math.max(200, Math.round(20_000_000 / text.length)), () => {
    const collector = new ReadingCollector(null);
    const parser = new ExpositionParser(collector);
    for (const c of chunks) parser.push(c);
    parser.end();
    if (!collector.reading()) throw new Error("the fixture has no reading");
  });
  return { kib: text.length / 1024, ns };
};
const scrapes = [0, 10, 40, 160].map((n) => scrapeCost(padded(n)));

const row = (what: string, ns: number, per: string) => [
  what,
  ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`,
  per,
];
console.log(
  renderTable(
    [
      ["what", "CPU", "per"],
      row("a tiny request: observation, record, registry", tiny, "request"),
      row("a 200-event stream with usage: meter, record, registry", stream, "stream"),
      row("the SSE meter", perEvent, "event"),
      row("the SSE meter, withholding (usage: include)", perEventWithheld, "event"),
      row("the JSON usage reader", perKiB, "KiB of body"),
      ...scrapes.map(({ kib, ns }, i) =>
        row(
          i === 0
            ? `an engine scrape's parse: vLLM v1, 2 engines (${kib.toFixed(0)} KiB)`
            : `  the same, padded to ${kib.toFixed(0)} KiB (${((ns * 1024) / (kib * 1024)).toFixed(0)} ns per KiB)`,
          ns,
          "scrape",
        ),
      ),
    ],
    1,
  ),
);
console.log(
  `\nA scrape every 2 s per replica: the ${scrapes[0]!.kib.toFixed(0)}-KiB exposition costs ${((scrapes[0]!.ns / 2e9) * 100).toPrecision(2)} % of a core per replica.`,
);
console.log(
  "\nAgainst bench:proxy's CPU per request of the proxy processes (tiny ≈ 42 µs, an SSE event ≈ 24 µs on an idle host).",
);
