import { describe, expect, it } from "vitest";
import { configDocument } from "../../test/support/config-builder.ts";
import { renderExposition } from "./exposition.ts";
import { MetricsRegistry } from "./registry.ts";
import { ServiceMeter } from "./service-meter.ts";

const doc = configDocument(1, [
  { name: "busy", replicas: ["http://127.0.0.1:1"] },
  { name: "idle", replicas: ["http://127.0.0.1:2"] },
]);
const busyRecord = {
  time: 1_700_000_000_000,
  requestId: "",
  method: "GET",
  host: "busy.example.test",
  path: "/",
  clientAddress: "127.0.0.1",
  service: "busy",
  project: "main",
  model: null,
  replica: "busy-0",
  status: 200,
  retries: 0,
  rateLimit: null,
  duration: 0.01,
  ttft: null,
  tpot: null,
  itl: [],
  inputTokens: null,
  outputTokens: null,
  tokensEstimated: false,
  bytesIn: 0,
  bytesOut: 2,
  incomplete: false,
  trace: null,
} as const;

describe("service meter: series made on first use", () => {
  it("a meter without traffic holds no replica series, queue histogram, refusals or ring", () => {
    const meter = new ServiceMeter("idle", "");
    expect(meter.replicas.size).toBe(0);
    expect(meter.pd.size).toBe(0);
    expect(meter.hasReplicaSeries).toBe(false);
    expect(meter.queueWaited).toBe(false);
    expect(meter.ring).toBeNull();
    expect([...meter.retriesRefused, ...meter.admissionRefusals].every((n) => n === 0)).toBe(true);
  });

  it("a first request makes its replica's series; refusals count on their own meter only", () => {
    const a = new ServiceMeter("a", "");
    const b = new ServiceMeter("b", "");
    a.record({ ...busyRecord, service: "a" });
    a.retryRefused("budget");
    a.admissionRefused("timeout");
    a.queueWait.observe(0.5);
    expect([...a.replicas.keys()]).toEqual(["busy-0"]);
    expect(a.hasReplicaSeries).toBe(true);
    expect(a.queueWaited).toBe(true);
    expect([...a.retriesRefused]).toEqual([1, 0, 0, 0]);
    expect([...a.admissionRefusals]).toEqual([0, 1]);
    // The shared "nothing yet" arrays were not written to.
    expect([...b.retriesRefused, ...b.admissionRefusals].every((n) => n === 0)).toBe(true);
    a.pdReplica("prefill", "p-0").failures++;
    a.retainReplicas(new Set(["busy-0"]));
    expect([...a.pd.keys()]).toEqual([]);
  });

  it("the exposition is what it was: every service has its gauges, the busy one its series", async () => {
    const registry = new MetricsRegistry();
    registry.retain(doc);
    expect(registry.service("idle")!.hasReplicaSeries).toBe(false);
    registry.sink(busyRecord);
    const text = renderExposition(registry.families(() => 0));
    expect(text).toContain('gateplane_requests_in_flight{service="busy"} 0');
    expect(text).toContain('gateplane_requests_in_flight{service="idle"} 0');
    expect(text).toContain('gateplane_held_requests{service="idle"} 0');
    expect(text).toContain('gateplane_requests_total{service="busy",replica="busy-0",code="2xx"} 1');
    expect(text).not.toMatch(/gateplane_requests_total\{service="idle"/);
    expect(text).not.toMatch(/gen_ai_server_request_duration_seconds_count\{service="idle"/);
    // Following a document again makes nothing for the idle service.
    registry.retain({ ...doc, version: 2 });
    expect(registry.service("idle")!.hasReplicaSeries).toBe(false);
  });
});
