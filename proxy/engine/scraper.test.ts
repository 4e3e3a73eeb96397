import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FakeClock } from "./fake-clock.ts";
import { doc, service } from "./fake-documents.ts";
import type { FetchOptions } from "./fetch-metrics.ts";
import type { ScrapedLoad } from "./replica-scrape.ts";
import { EngineScraper } from "./scraper.ts";

const fixture = (name: string) =>
  readFileSync(new URL(`../../test/node/fixtures/engine-metrics/${name}`, import.meta.url), "utf8");
const VLLM = fixture("vllm-v1-dp2.prom");

type Answer = { status: number; body?: string } | "hang" | Error;

/** Answers per URL (`answers[url]`), chunked in 100-byte pieces; records every request. */
function fakeFetch(answers: Record<string, Answer>) {
  const calls: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const fetch = async (url: string, { signal, onChunk, maxBytes }: FetchOptions): Promise<number> => {
    calls.push(url);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const answer = answers[url] ?? new Error("connect ECONNREFUSED");
      if (answer instanceof Error) throw answer;
      if (answer === "hang")
        return await new Promise<number>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
      const body = answer.body ?? "";
      if (body.length > maxBytes) throw new Error("too large");
      if (answer.status === 200) for (let i = 0; i < body.length; i += 100) onChunk(body.slice(i, i + 100));
      return answer.status;
    } finally {
      inFlight--;
    }
  };
  return { fetch, calls, maxInFlight: () => maxInFlight };
}

function setup(answers: Record<string, Answer>, random = () => 0.5) {
  const clock = new FakeClock();
  const net = fakeFetch(answers);
  const loads: { service: string; id: string; load: ScrapedLoad | null }[] = [];
  const scraper = new EngineScraper({
    fetch: net.fetch,
    clock,
    random,
    onLoad: (service, id, _url, load) => loads.push({ service, id, load }),
  });
  return { clock, net, loads, scraper };
}

const A = "http://10.0.0.1:8000";
const B = "http://10.0.0.2:8000/prefix/";

describe("engine scraper", () => {
  it("scrapes every replica at a jittered point of the interval and hands out fresh loads", async () => {
    let r = 0;
    const randoms = [0.1, 0.7];
    const { clock, net, loads, scraper } = setup(
      {
        [`${A}/metrics`]: { status: 200, body: VLLM },
        "http://10.0.0.2:8000/prefix/metrics": { status: 200, body: VLLM },
      },
      () => randoms[r++ % 2]!,
    );
    scraper.retain(
      doc(
        service("llm", [
          ["a", A],
          ["b", B],
        ]),
      ),
    );
    await clock.advance(199);
    expect(net.calls).toEqual([]);
    await clock.advance(1);
    expect(net.calls).toEqual([`${A}/metrics`]);
    await clock.advance(1200);
    expect(net.calls).toEqual([`${A}/metrics`, "http://10.0.0.2:8000/prefix/metrics"]);
    expect(loads[0]).toEqual({
      service: "llm",
      id: "a",
      load: { running: 12, waiting: 4, kvUsage: 0.375, at: clock.t - 1200 },
    });
    const [a] = scraper.signals("llm")!;
    expect(a).toMatchObject({ replica: "a", engine: "vllm", state: "fresh", running: 12, waiting: 4, error: null });
    expect(a!.age_seconds).toBeCloseTo(1.2);
    scraper.close();
  });

  it("keeps a good read through one failed scrape, then goes failed after three intervals and hands out null", async () => {
    const answers: Record<string, Answer> = { [`${A}/metrics`]: { status: 200, body: VLLM } };
    const { clock, loads, scraper } = setup(answers, () => 0.5);
    scraper.retain(doc(service("llm", [["a", A]])));
    await clock.advance(1000);
    expect(loads.at(-1)?.load).not.toBeNull();
    answers[`${A}/metrics`] = { status: 503 };
    await clock.advance(2000);
    expect(scraper.signals("llm")![0]).toMatchObject({
      state: "fresh",
      running: 12,
      error: expect.stringMatching(/503/),
    });
    expect(loads).toHaveLength(1);
    // The last good read was at 1 s; the bound is 6 s past it.
    await clock.advance(4000);
    expect(scraper.signals("llm")![0]!.state).toBe("fresh");
    await clock.advance(1000);
    expect(scraper.signals("llm")![0]).toMatchObject({
      state: "failed",
      running: null,
      error: expect.stringMatching(/503/),
    });
    expect(loads.at(-1)).toEqual({ service: "llm", id: "a", load: null });
    expect(loads).toHaveLength(2);
    answers[`${A}/metrics`] = { status: 200, body: VLLM };
    await clock.advance(2000);
    expect(scraper.signals("llm")![0]).toMatchObject({ state: "fresh", error: null });
    expect(loads.at(-1)?.load).toMatchObject({ running: 12 });
    scraper.close();
  });

  it("times out a silent replica after timeoutMs, one request in flight at a time", async () => {
    const { clock, net, scraper } = setup({ [`${A}/metrics`]: "hang" });
    scraper.retain(doc(service("llm", [["a", A]])));
    await clock.advance(1000);
    expect(net.calls).toHaveLength(1);
    await clock.advance(999);
    expect(scraper.signals("llm")![0]!.error).toBeNull();
    await clock.advance(1);
    expect(scraper.signals("llm")![0]).toMatchObject({ state: "failed", error: "no answer within 1s" });
    await clock.advance(20_000);
    expect(net.maxInFlight()).toBe(1);
    expect(scraper.replicas()[0]!.results.timeout).toBe(net.calls.length);
    scraper.close();
  });

  it("marks an exposition without engine series, or a 404, unsupported and asks again only every 60 s", async () => {
    const answers: Record<string, Answer> = {
      [`${A}/metrics`]: { status: 200, body: "# TYPE up gauge\nup 1\n" },
      "http://10.0.0.2:8000/prefix/metrics": { status: 404 },
    };
    const { clock, net, scraper } = setup(answers);
    scraper.retain(
      doc(
        service("llm", [
          ["a", A],
          ["b", B],
        ]),
      ),
    );
    await clock.advance(2000);
    expect(scraper.signals("llm")!.map((s) => [s.state, s.error])).toEqual([
      ["unsupported", "the exposition has no vllm: or sglang: series"],
      ["unsupported", "GET http://10.0.0.2:8000/prefix/metrics answered 404"],
    ]);
    await clock.advance(50_000);
    expect(net.calls).toHaveLength(2);
    answers[`${A}/metrics`] = { status: 200, body: fixture("sglang-underscore.prom") };
    await clock.advance(9_000);
    expect(net.calls).toHaveLength(4);
    expect(scraper.signals("llm")![0]).toMatchObject({ state: "fresh", engine: "sglang", running: 10, waiting: 2 });
    scraper.close();
  });

  it("takes a 200 that is not Prometheus text (an app's JSON) as unsupported, not as a broken engine", async () => {
    const { clock, net, scraper } = setup({ [`${A}/metrics`]: { status: 200, body: '{"replica":"a"}' } });
    scraper.retain(doc(service("llm", [["a", A]])));
    await clock.advance(30_000);
    expect(scraper.signals("llm")![0]).toMatchObject({
      state: "unsupported",
      error: expect.stringMatching(/^the answer is not a Prometheus exposition \(\/metrics line 1/),
    });
    expect(net.calls).toHaveLength(1);
    scraper.close();
  });

  it("with engine: vllm set, an SGLang exposition is unsupported (naming the engine)", async () => {
    const { clock, scraper } = setup({ [`${A}/metrics`]: { status: 200, body: fixture("sglang-dp2.prom") } });
    scraper.retain(doc(service("llm", [["a", A]], { engine: "vllm" })));
    await clock.advance(2000);
    expect(scraper.signals("llm")![0]).toMatchObject({
      state: "unsupported",
      error: "the exposition has no vllm: series (engine: vllm)",
    });
    scraper.close();
  });

  it("refuses a malformed exposition and one that lacks the load gauges (invalid)", async () => {
    const answers: Record<string, Answer> = {
      [`${A}/metrics`]: { status: 200, body: 'vllm:num_requests_running{a="1 2\n' },
    };
    const { clock, scraper } = setup(answers);
    scraper.retain(doc(service("llm", [["a", A]])));
    await clock.advance(2000);
    expect(scraper.signals("llm")![0]).toMatchObject({ state: "failed", error: expect.stringMatching(/line 1/) });
    answers[`${A}/metrics`] = { status: 200, body: "vllm:num_requests_running 1\n" };
    await clock.advance(2000);
    expect(scraper.signals("llm")![0]).toMatchObject({
      state: "failed",
      error: "the exposition has no vllm:num_requests_waiting",
    });
    expect(scraper.replicas()[0]!.results.invalid).toBe(2);
    scraper.close();
  });

  it("keeps a replica's state across documents while its id and URL stay; stops the others", async () => {
    const { clock, net, loads, scraper } = setup({ [`${A}/metrics`]: { status: 200, body: VLLM } });
    scraper.retain(doc(service("llm", [["a", A]])));
    await clock.advance(1000);
    const before = scraper.replicas()[0];
    loads.length = 0;
    scraper.retain(
      doc(
        service("llm", [
          ["a", A],
          ["c", "http://10.0.0.3:8000"],
        ]),
      ),
    );
    expect(scraper.replicas()[0]).toBe(before);
    // The fresh load is handed out again, for a routing state that made new entries.
    expect(loads).toEqual([{ service: "llm", id: "a", load: expect.objectContaining({ running: 12 }) }]);
    scraper.retain(doc(service("llm", [["a", "http://10.0.0.9:8000"]])));
    expect(loads.at(-1)).toEqual({ service: "llm", id: "a", load: null });
    expect(scraper.replicas()[0]).not.toBe(before);
    const calls = net.calls.length;
    scraper.close();
    await clock.advance(60_000);
    expect(net.calls.length).toBe(calls);
  });

  it("follows a delta's services alone: kept replicas keep their scrape, gone and removed ones stop", async () => {
    const { clock, net, loads, scraper } = setup({ [`${A}/metrics`]: { status: 200, body: VLLM } });
    const other = service("other", [["o", "http://10.0.0.2:8000"]]);
    scraper.retain(doc(service("llm", [["a", A]]), other));
    await clock.advance(2_000);
    const [a, o] = scraper.replicas();
    loads.length = 0;
    scraper.retainChanged(
      [
        service("llm", [
          ["a", A],
          ["c", "http://10.0.0.3:8000"],
        ]),
      ],
      [],
    );
    expect(scraper.replicas().map((r) => r.id)).toEqual(["a", "c", "o"]);
    expect(scraper.replicas()[0]).toBe(a);
    expect(scraper.replicas()[2]).toBe(o);
    // Only the changed service's fresh loads are handed out again.
    expect(loads).toEqual([{ service: "llm", id: "a", load: expect.objectContaining({ running: 12 }) }]);
    expect(scraper.signals("llm")).toHaveLength(2);
    // No longer scraped (engine: none), and removed: every scrape stops.
    scraper.retainChanged([service("llm", [["a", A]], { engine: "none" })], ["other"]);
    expect(scraper.replicas()).toEqual([]);
    expect(scraper.signals("llm")).toBeNull();
    expect(loads.at(-1)).toEqual({ service: "llm", id: "a", load: null });
    const calls = net.calls.length;
    await clock.advance(60_000);
    expect(net.calls.length).toBe(calls);
  });

  it("samples each service's mean waiting over its fresh replicas once per interval", async () => {
    const other = VLLM.replace(
      /num_requests_waiting\{engine="(\d)"([^}]*)\} [\d.]+/g,
      'num_requests_waiting{engine="$1"$2} 0.0',
    );
    const { clock, scraper } = setup({
      [`${A}/metrics`]: { status: 200, body: VLLM },
      "http://10.0.0.2:8000/prefix/metrics": { status: 200, body: other },
    });
    scraper.retain(
      doc(
        service("llm", [
          ["a", A],
          ["b", B],
        ]),
      ),
    );
    await clock.advance(10_000);
    const w = scraper.queue("llm")["30"]!;
    // Ticks at 2, 4, 6, 8, 10 s, all after both first scrapes (1 s): a mean of (4 + 0) / 2 each.
    expect(w.samples).toBe(5);
    expect(w.waiting).toBe(5 * 2);
    scraper.close();
  });

  it("computes the prefix-cache hit rate between scrapes", async () => {
    const answers: Record<string, Answer> = { [`${A}/metrics`]: { status: 200, body: VLLM } };
    const { clock, scraper } = setup(answers);
    scraper.retain(doc(service("llm", [["a", A]])));
    await clock.advance(1000);
    expect(scraper.signals("llm")![0]!.prefix_cache_hit_rate).toBeNull();
    answers[`${A}/metrics`] = {
      status: 200,
      body: VLLM.replace('prefix_cache_hits_total{engine="0",', 'prefix_cache_hits_total{engine="0",x="1",')
        .replace(/(prefix_cache_hits_total\{engine="0"[^}]*\}) 400.0/, "$1 700.0")
        .replace(/(prefix_cache_queries_total\{engine="0"[^}]*\}) 1000.0/, "$1 1400.0"),
    };
    await clock.advance(2000);
    expect(scraper.signals("llm")![0]!.prefix_cache_hit_rate).toBe(0.75);
    scraper.close();
  });
});
