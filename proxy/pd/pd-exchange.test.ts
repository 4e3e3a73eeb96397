import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PdEngine, startPdEngines } from "../../test/fakes/pd-engines.ts";
import { configDocument, DOMAIN } from "../../test/support/config-builder.ts";
import { send } from "../../test/support/http-client.ts";
import { until } from "../../test/support/until.ts";
import { accessLogLine } from "../observe/access-log.ts";
import type { ExchangeRecord } from "../observe/exchange-record.ts";
import { renderExposition } from "../observe/exposition.ts";
import { ProxyServer } from "../server.ts";
import { DEFAULT_SERVER_SETTINGS } from "../settings.ts";

// A PD request goes through the co-located exchange's steps: admission, `usage: include`, the meters
// on decode's stream, the record naming both replicas, the stats counting it once. The proxy runs in
// this process (a ProxyServer) so the test reads each record from a sink of its own; the workers are
// the protocol-faithful fake pair (test/fakes/pd-engines.ts) over real sockets.
const HOST = `pd.${DOMAIN}`;
let server: ProxyServer;
let port: number;
let engines: Awaited<ReturnType<typeof startPdEngines>>;
const records: ExchangeRecord[] = [];

beforeAll(async () => {
  engines = await startPdEngines({ prefill: 1, decode: 1 }, { transferTimeoutMs: 5_000, itlMs: 2 });
  const replica = (e: PdEngine) => ({
    id: e.id,
    url: e.url,
    role: e.role,
    ...(e.bootstrapPort !== null ? { bootstrap_port: e.bootstrapPort } : {}),
  });
  const doc = configDocument(1, [
    {
      name: "pd",
      router: {
        type: "sglang",
        policy: "cache_aware",
        pd_disaggregation: true,
        prefill_policy: "cache_aware",
        decode_policy: "power_of_two",
      },
      replicas: [...engines.prefill, ...engines.decode].map(replica),
      usage: "include",
      admission: { max_concurrency: 1, queue_size: 1, queue_timeout_ms: 10_000, priority_header: null },
    },
  ]);
  server = new ProxyServer(DEFAULT_SERVER_SETTINGS, () => {});
  server.sinks.push((r) => records.push(r));
  server.apply(doc);
  port = await server.listen({ host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await server?.close();
  await engines?.close();
});

/** The value of one series of the server's exposition (0 when absent). */
async function series(name: string, labels: string): Promise<number> {
  const line = renderExposition(server.metrics())
    .split("\n")
    .find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

const post = (body: unknown) =>
  send(port, {
    host: HOST,
    method: "POST",
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

describe("a PD request through the exchange's steps", () => {
  it("asks a stream's usage of both sides, withholds it, and meters decode's stream; the record names both replicas", async () => {
    const client = new OpenAI({ apiKey: "none", baseURL: `http://127.0.0.1:${port}/proxy/services/main/pd/v1` });
    const stream = await client.chat.completions.create({
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    let text = "";
    let usageSeen = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usageSeen = true;
    }
    expect(text).toBe("Disaggregated hello!");
    // The client did not ask for the usage chunk: the gateway asked for it and kept it.
    expect(usageSeen).toBe(false);
    for (const e of [...engines.prefill, ...engines.decode])
      expect(JSON.parse(e.requests.at(-1)!.body).stream_options).toEqual({ include_usage: true });
    await until("the record", () => records.length === 1);
    const r = records[0]!;
    expect(r).toMatchObject({
      service: "pd",
      replica: "d1",
      prefillReplica: "p1",
      status: 200,
      retries: 0,
      inputTokens: 3,
      outputTokens: 4,
      tokensEstimated: false,
      incomplete: false,
    });
    // TTFT is measured on decode's first content event, after prefill's answer ended; ITL between its tokens.
    expect(r.prefillTime).toBeGreaterThan(0);
    expect(r.ttft).toBeGreaterThanOrEqual(r.prefillTime!);
    expect(r.itl).toHaveLength(3);
    expect(r.tpot).not.toBeNull();
    expect(accessLogLine(r)).toMatch(/"replica":"d1","prefill_replica":"p1","prefill_time":[\d.]+,"retries":0,/);
    const model = 'replica="d1",gen_ai_operation_name="chat"';
    expect(await series("gen_ai_server_time_to_first_token_seconds_count", model)).toBe(1);
    expect(await series("gateplane_inter_token_latency_seconds_count", model)).toBe(3);
    expect(await series("gateplane_tokens_total", 'replica="d1",gen_ai_token_type="output",source="usage"')).toBe(4);
    expect(await series("gateplane_pd_prefill_duration_seconds_count", 'replica="p1"')).toBe(1);
    // Counted once for the service (its stats drive autoscaling) and on decode's replica.
    expect(server.stats().find((s) => s.service === "pd")!.windows["30"].requests).toBe(1);
    expect(await series("gateplane_requests_total", 'replica="d1",code="2xx"')).toBe(1);
    expect(await series("gateplane_requests_total", 'replica="p1"')).toBe(0);
  });

  it("holds PD requests to the service's admission limit: one runs, one waits, the next is refused", async () => {
    const release = engines.decode[0]!.hold();
    const running = post({ model: "m", messages: [{ role: "user", content: "one" }] });
    await until("the first at the decode worker", () => engines.decode[0]!.open === 1);
    // Prefill answered (its load went back); decode holds the request.
    await until(
      "prefill's load back",
      async () => (await series("gateplane_pd_in_flight", 'replica="p1",role="prefill"')) === 0,
    );
    expect(await series("gateplane_pd_in_flight", 'replica="d1",role="decode"')).toBe(1);
    const queued = post({ model: "m", messages: [{ role: "user", content: "two" }] });
    await until(
      "the second in the queue",
      async () => (await series("gateplane_admission_queue_depth", 'service="pd"')) === 1,
    );
    const refused = await post({ model: "m", messages: [{ role: "user", content: "three" }] });
    expect(refused.status).toBe(429);
    // Nothing of a waiting or refused request reached a worker.
    expect(engines.decode[0]!.requests).toHaveLength(2);
    release();
    expect((await running).status).toBe(200);
    expect((await queued).status).toBe(200);
    expect(await series("gateplane_admission_refused_total", 'reason="full"')).toBe(1);
    await until(
      "the loads back",
      async () => (await series("gateplane_pd_in_flight", 'replica="d1",role="decode"')) === 0,
    );
    expect(await series("gateplane_requests_in_flight", 'service="pd"')).toBe(0);
  });
});
