/**
 * One set of bounds across the Worker → agent → proxy boundary (issue 11 item 2): whatever the
 * service schema accepts, once the control plane's document builder (`configService`) turns it into a configuration
 * document, the proxy's document validation (what the agent applies) accepts too. Property-style:
 * a seeded generator mixes edge values (on, inside and beyond every documented limit, non-finite,
 * unsafe integers, size and duration strings) into random service files.
 */

import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { configService, type GatewayForDocument } from "../../durable-objects/config-service.ts";
import { documentProblems, parseDocument } from "../../proxy/routes.ts";
import { ValidationError } from "../../schema/issues.ts";
import * as L from "../../schema/limits.ts";
import { parseServiceConfiguration, ReplicaEndpoint, type ServiceConfiguration } from "../../schema/service.ts";
import { configDocument } from "../support/config-builder.ts";

/** mulberry32: deterministic, so a failure reproduces from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EDGES = [
  0,
  1,
  -1,
  0.5,
  1 / 60,
  1 / 61,
  2 ** 31 - 1,
  2 ** 31,
  Number.MAX_SAFE_INTEGER,
  JSON.parse("9007199254740993") as number,
  1e16,
  1e20,
  1e300,
  Number.POSITIVE_INFINITY,
  Number.NaN,
  "9".repeat(400),
  "1e3",
  "",
];
const numberLike = (limit: number) => [limit, limit - 1, limit + 1, limit / 2, limit * 1000, limit + 0.5];

function generate(random: () => number): Record<string, unknown> {
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
  const maybe = (p = 0.5) => random() < p;
  const num = (...limits: number[]) => pick([...EDGES, ...limits.flatMap(numberLike)]);
  const spec: Record<string, unknown> = { type: "service", name: "svc" };
  if (maybe()) {
    spec.client_max_body_size = maybe()
      ? num(L.MAX_CLIENT_MAX_BODY_SIZE)
      : pick(["64MB", "1024GB", "1025GB", "10000000000GB", "0", "512k", "1g", "9007199254740993", "9".repeat(400)]);
  }
  if (maybe()) {
    spec.read_timeout = maybe()
      ? num(L.MAX_READ_TIMEOUT_SECONDS, L.MIN_READ_TIMEOUT_SECONDS)
      : pick(["1s", "0.0004s", "1.0004s", "86400s", "1441m", "24h", "25h", `${"9".repeat(400)}s`]);
  }
  if (maybe()) spec.hsts = maybe(0.3) ? pick([true, false]) : { max_age: num(L.MAX_HSTS_MAX_AGE) };
  if (maybe()) {
    spec.rate_limits = [
      { prefix: "/", rps: num(L.MAX_RPS, L.MIN_RPS), ...(maybe() ? { burst: num(L.MAX_BURST) } : {}) },
      ...(maybe() ? [{ prefix: "/v1", rps: num(L.MAX_RPS), key: { type: "header", header: "x-key" } }] : []),
    ];
  }
  if (maybe()) {
    const max = num(L.MAX_SERVICE_REPLICAS);
    spec.replicas = `0..${typeof max === "number" && Number.isFinite(max) ? max : 4}`;
    spec.scaling = {
      metric: "rps",
      target: num(L.MAX_SCALING_TARGET),
      ...(maybe() ? { hold_timeout: num(L.MAX_HOLD_TIMEOUT_SECONDS, L.MIN_HOLD_TIMEOUT_SECONDS) } : {}),
      ...(maybe() ? { scale_up_delay: num(L.MAX_SCALING_DELAY_SECONDS) } : {}),
    };
  }
  if (maybe()) {
    spec.router = {
      type: "sglang",
      ...(maybe() ? { cache_threshold: num(1) } : {}),
      ...(maybe() ? { balance_abs_threshold: num(L.MAX_BALANCE_ABS_THRESHOLD) } : {}),
      ...(maybe() ? { balance_rel_threshold: num(L.MAX_BALANCE_REL_THRESHOLD, 1) } : {}),
      ...(maybe() ? { eviction_interval: num(L.MAX_EVICTION_INTERVAL_SECONDS) } : {}),
      ...(maybe() ? { max_tree_size: num(L.MAX_TREE_SIZE_LIMIT) } : {}),
    };
    // Gateplane's own policy and SMG's least_load: their tunables cross the same boundaries.
    const other = maybe(0.6) ? pick(["prefix_load", "least_load"]) : null;
    if (other === "prefix_load") {
      spec.router = {
        type: "sglang",
        policy: "prefix_load",
        ...(maybe() ? { prefix_load_request_cost: num(L.MAX_PREFIX_LOAD_REQUEST_COST) } : {}),
        ...(maybe() ? { prefix_load_temperature: num(L.MAX_PREFIX_LOAD_TEMPERATURE) } : {}),
        ...(maybe() ? { load: pick(["in_flight", "engine"]) } : {}),
      };
    } else if (other === "least_load") {
      spec.router = {
        type: "sglang",
        policy: "least_load",
        ...(maybe() ? { least_load_kv_pressure_weight: num(L.MAX_LEAST_LOAD_KV_PRESSURE_WEIGHT) } : {}),
        ...(maybe() ? { least_load_default_throughput: num(L.MAX_LEAST_LOAD_DEFAULT_THROUGHPUT, 1) } : {}),
        ...(maybe() ? { least_load_mean_prefill_tokens: num(L.MAX_LEAST_LOAD_MEAN_PREFILL_TOKENS, 1) } : {}),
      };
    }
  }
  // Retries and admission control (docs/resilience.md).
  if (maybe(0.15)) {
    spec.retries = {
      ...(maybe() ? { attempts: num(L.MAX_RETRY_ATTEMPTS, 1) } : {}),
      ...(maybe() ? { statuses: [num(599, 400)] } : {}),
      ...(maybe() ? { budget_percent: num(100) } : {}),
      ...(maybe() ? { budget_min_per_second: num(L.MAX_RETRY_BUDGET_MIN_PER_SECOND) } : {}),
    };
  }
  if (maybe(0.15)) {
    spec.admission = {
      max_concurrency: num(L.MAX_ADMISSION_CONCURRENCY, 1),
      ...(maybe() ? { queue_size: num(L.MAX_ADMISSION_QUEUE) } : {}),
      ...(maybe() ? { queue_timeout: num(L.MAX_ADMISSION_QUEUE_TIMEOUT_SECONDS) } : {}),
    };
  }
  return spec;
}

const GATEWAY: GatewayForDocument = {
  project_name: "main",
  configuration: { domain: "example.test", certificate: null, router: null },
};

/** The document the control plane would serve for a gateway with this one service and a replica. */
function documentFor(configuration: ServiceConfiguration, replicaUrl = "http://10.0.0.5:8000"): unknown {
  const service = configService(GATEWAY, "example.test", { name: "svc", configuration }, [
    { id: "r-1", url: replicaUrl },
  ]);
  const doc = configDocument(7, []);
  // Through JSON, as on the wire: a non-finite number would arrive as null.
  return JSON.parse(JSON.stringify({ ...doc, services: [service] }));
}

describe("service schema ⊆ configuration document validation", () => {
  it("every service the schema accepts yields a document the proxy accepts", () => {
    const random = rng(11_02);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const spec = generate(random);
      let configuration: ServiceConfiguration;
      try {
        configuration = parseServiceConfiguration(spec);
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
        // Refused at the API: it names the field.
        expect(e.field, JSON.stringify(spec)).toBeTruthy();
        refused++;
        continue;
      }
      accepted++;
      const doc = documentFor(configuration);
      let problems: string[];
      try {
        problems = documentProblems(parseDocument(doc));
      } catch (e) {
        problems = [(e as Error).message];
      }
      expect(problems, `service ${JSON.stringify(spec)} accepted by the API`).toEqual([]);
    }
    // The generator must exercise both sides of the bounds.
    expect(accepted).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(300);
  });

  it("the issue's values are refused at the API, naming the field", () => {
    for (const [field, value] of [
      ["client_max_body_size", 1e20],
      ["client_max_body_size", "10000000000GB"],
      ["client_max_body_size", JSON.parse("9007199254740993")],
      ["client_max_body_size", "9".repeat(400)],
    ] as const) {
      expect(() => parseServiceConfiguration({ type: "service", name: "svc", [field]: value })).toThrow(
        new RegExp(`^${field}: `),
      );
    }
    expect(() =>
      parseServiceConfiguration({ type: "service", name: "svc", rate_limits: [{ rps: 1, burst: 1e16 }] }),
    ).toThrow(/^rate_limits\[0\]\.burst: /);
  });

  it("every replica URL the API registers is one the proxy accepts", () => {
    const configuration = parseServiceConfiguration({ type: "service", name: "svc" });
    const urls = [
      "http://10.0.0.5:8000",
      "https://model.internal/v1",
      "http://[::1]:8000/",
      "http://:pw@10.0.0.5:8000",
      "http://user@10.0.0.5",
      "http://10.0.0.5:8000/?q=1",
      "http://10.0.0.5#f",
      "ftp://10.0.0.5",
      "http://10.0.0.5:99999",
      "http://exa mple.com",
    ];
    for (const url of urls) {
      if (!v.safeParse(ReplicaEndpoint, { id: "r-1", url }).success) continue;
      expect(documentProblems(parseDocument(documentFor(configuration, url))), url).toEqual([]);
    }
  });
});
