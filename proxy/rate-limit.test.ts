/**
 * The rate limiter without sockets: nginx's limit_req algorithm on an injected clock, the bounded
 * key store, rule compilation and matching, keys, and the header values.
 */
import { describe, expect, it } from "vitest";
import type { ConfigService } from "../schema/config-document.ts";
import { configDocument } from "../test/support/config-builder.ts";
import {
  admittedHeaders,
  compileRateLimits,
  locationPath,
  matchRule,
  rateLimitProblems,
  requestKey,
  retryAfterSeconds,
} from "./rate-limit.ts";
import { answerAsk, IpcGate, type RateLimitAsk } from "./rate-limit-gate.ts";
import { type Verdict, verdictAdmitted, Zone, ZoneRegistry, type ZoneSpec } from "./rate-limit-store.ts";
import { documentZones, parseDocument } from "./routes.ts";

type Limit = ConfigService["rate_limits"][number];
const limit = (l: Partial<Limit> & { rps: number }): Limit => ({
  prefix: "/",
  key: { type: "ip_address" },
  burst: 0,
  ...l,
});
const rules = (...limits: Limit[]) =>
  compileRateLimits(configDocument(1, [{ name: "svc", replicas: [], rate_limits: limits }]).services[0]!);
const spec = (rps: number, burst: number): ZoneSpec => rules(limit({ rps, burst }))[0]!.zone;

/** A zone on a clock the test moves. */
function zoneAt(rps: number, burst: number, cap = 1000) {
  const zone = new Zone(spec(rps, burst), cap);
  let now = 1_000_000;
  return {
    zone,
    at(ms: number, key = "k"): Verdict {
      now = 1_000_000 + ms;
      return zone.take(key, now);
    },
  };
}

describe("nginx limit_req algorithm", () => {
  it("admits one request per 1/rps with burst 0 and refuses in between, at millisecond granularity", () => {
    const z = zoneAt(10, 0);
    expect(z.at(0)).toBe(0);
    expect(verdictAdmitted(z.at(1))).toBe(false);
    expect(verdictAdmitted(z.at(99))).toBe(false);
    expect(z.at(100)).toBe(0);
    // excess 1000 − 10·50 = 500 would remain: refused, and the refusal costs nothing.
    expect(z.at(150)).toBe(-500);
    expect(z.at(200)).toBe(0);
  });

  it("burst admits burst+1 at once without delay, then refills at the rate", () => {
    const z = zoneAt(2, 3);
    expect([z.at(0), z.at(0), z.at(0), z.at(0)]).toEqual([0, 1000, 2000, 3000]);
    expect(z.at(0)).toBe(-4000);
    expect(z.at(499)).toBe(-3002); // 3000 − ⌊2000·499/1000⌋ + 1000
    expect(z.at(500)).toBe(3000);
    expect(verdictAdmitted(z.at(500))).toBe(false);
  });

  it("refills by the millisecond at high rates", () => {
    const z = zoneAt(1000, 0);
    expect(z.at(0)).toBe(0);
    expect(verdictAdmitted(z.at(0))).toBe(false);
    for (let ms = 1; ms <= 50; ms++) expect(z.at(ms)).toBe(0);
  });

  it("handles rates below one per second (1/60: one a minute, 17 milli-requests/s)", () => {
    const z = zoneAt(1 / 60, 0);
    expect(z.zone.spec.rate).toBe(17);
    expect(z.at(0)).toBe(0);
    expect(verdictAdmitted(z.at(30_000))).toBe(false);
    expect(verdictAdmitted(z.at(58_823))).toBe(false);
    expect(z.at(58_824)).toBe(0);
  });

  it("3× overload over 10 s admits rps×10 + burst", () => {
    const z = zoneAt(20, 10);
    let admitted = 0;
    for (let i = 0; i < 600; i++) if (verdictAdmitted(z.at(Math.floor((i * 1000) / 60)))) admitted++;
    expect(Math.abs(admitted - (20 * 10 + 10))).toBeLessThanOrEqual(1);
  });

  it("keeps keys apart", () => {
    const z = zoneAt(1, 0);
    expect(z.at(0, "a")).toBe(0);
    expect(z.at(0, "b")).toBe(0);
    expect(verdictAdmitted(z.at(10, "a"))).toBe(false);
  });

  it("gives Retry-After as whole seconds until one request passes, and RateLimit values", () => {
    const [rule] = rules(limit({ rps: 0.5, burst: 1 }));
    const z = new Zone(rule!.zone, 10);
    expect(z.take("k", 0)).toBe(0);
    expect(admittedHeaders(rule!, 0)).toEqual([
      "ratelimit-policy",
      '"/";q=30;w=60;gateplane-burst=1',
      "ratelimit",
      '"/";r=1;t=2',
    ]);
    expect(z.take("k", 0)).toBe(1000);
    expect(admittedHeaders(rule!, 1000)[3]).toBe('"/";r=0;t=4');
    const refused = z.take("k", 100);
    expect(refused).toBe(-1950);
    expect(retryAfterSeconds(rule!, refused)).toBe(2); // 950 milli at 500/s: 1.9 s
    expect(retryAfterSeconds(rule!, z.take("k", 1999))).toBe(1);
  });
});

describe("bounded key store", () => {
  it("a flood of distinct keys stays at the cap, and a legitimate key keeps its state", () => {
    const zone = new Zone(spec(1, 0), 100);
    expect(zone.take("legit", 0)).toBe(0);
    for (let i = 0; i < 10_000; i++) {
      zone.take(`10.0.${i >> 8}.${i & 255}`, i % 1000);
      if (i % 50 === 0) expect(verdictAdmitted(zone.take("legit", i % 1000))).toBe(false);
      expect(zone.size).toBeLessThanOrEqual(100);
    }
    expect(zone.size).toBe(100);
    // Limited still, a second later admitted again.
    expect(verdictAdmitted(zone.take("legit", 999))).toBe(false);
    expect(zone.take("legit", 2000)).toBe(0);
  });

  it("drops keys that drained to nothing, and only those, before evicting", () => {
    const zone = new Zone(spec(10, 0), 1000);
    zone.take("a", 0);
    zone.take("b", 0);
    zone.take("c", 50);
    expect(zone.size).toBe(3);
    // At 99 ms "a" still differs from a new key (excess 0 + 1000 not yet drained): kept.
    zone.take("d", 99);
    expect(zone.size).toBe(4);
    // At 100 ms "a" and "b" are indistinguishable from new keys: dropped (two per new key, as nginx).
    zone.take("e", 100);
    expect(zone.size).toBe(3);
  });

  it("registry keeps a zone's buckets when the document keeps the rule, starts afresh when it changes", () => {
    const registry = new ZoneRegistry(100, () => 0);
    const v1 = documentZones(
      parseDocument(configDocument(1, [{ name: "svc", replicas: [], rate_limits: [limit({ rps: 1 })] }])),
    );
    registry.retain(v1);
    expect(registry.take(v1[0]!.id, "k")).toBe(0);
    expect(registry.take(v1[0]!.id, "k")! < 0).toBe(true);
    const same = documentZones(
      parseDocument(
        configDocument(2, [
          { name: "svc", replicas: [], rate_limits: [limit({ rps: 1 })] },
          { name: "other", replicas: [] },
        ]),
      ),
    );
    registry.retain(same);
    expect(registry.take(same[0]!.id, "k")! < 0).toBe(true);
    const changed = documentZones(
      parseDocument(configDocument(3, [{ name: "svc", replicas: [], rate_limits: [limit({ rps: 2 })] }])),
    );
    registry.retain(changed);
    expect(registry.take(v1[0]!.id, "k")).toBeNull();
    expect(registry.take(changed[0]!.id, "k")).toBe(0);
  });
});

describe("registry and deltas", () => {
  it("follows a delta's zones alone: a kept rule keeps its buckets, a changed or removed one goes, others stay", () => {
    const registry = new ZoneRegistry(100, () => 0);
    const zones = (rps: number, name = "svc") =>
      documentZones(parseDocument(configDocument(1, [{ name, replicas: [], rate_limits: [limit({ rps })] }])));
    const [a1] = zones(1);
    const [b1] = zones(1, "other");
    registry.retain([a1!, b1!]);
    registry.take(a1!.id, "k");
    registry.take(b1!.id, "k");
    // svc unchanged in a delta that names it: its bucket stays.
    registry.retainChanged([a1!], [a1!.id]);
    expect(registry.take(a1!.id, "k")! < 0).toBe(true);
    // svc's rule changed: the old zone goes, the new starts empty; other's is not touched.
    const [a2] = zones(2);
    registry.retainChanged([a2!], [a1!.id]);
    expect(registry.take(a1!.id, "k")).toBeNull();
    expect(registry.take(a2!.id, "k")).toBe(0);
    expect(registry.take(b1!.id, "k")! < 0).toBe(true);
    // other removed.
    registry.retainChanged([], [b1!.id]);
    expect(registry.ids()).toEqual([a2!.id]);
  });
});

describe("rules", () => {
  it("the longest matching prefix wins, on the normalized path without query", () => {
    const compiled = rules(limit({ rps: 1 }), limit({ prefix: "/v1/chat", rps: 2 }), limit({ prefix: "/v1", rps: 3 }));
    const prefix = (path: string) => matchRule(compiled, path)?.prefix;
    expect(prefix("/v1/chat/completions")).toBe("/v1/chat");
    expect(prefix("/v1/models?x=/v1/chat")).toBe("/v1");
    expect(prefix("/v1x")).toBe("/v1"); // nginx prefix locations are plain string prefixes
    expect(prefix("/health")).toBe("/");
    expect(prefix("/v1//chat")).toBe("/v1/chat");
    expect(prefix("/v1/%63hat")).toBe("/v1/chat");
    expect(prefix("/x/../v1/./chat")).toBe("/v1/chat");
    expect(matchRule(rules(limit({ prefix: "/v1", rps: 1 })), "/v2")).toBeNull();
    expect(locationPath("/../../a")).toBe("/a");
    expect(locationPath("/%zz")).toBe("/%zz");
  });

  it("keys: the client's address, or the first header of that name; none when absent or empty", () => {
    const [ip] = rules(limit({ rps: 1 }));
    const [header] = rules(limit({ rps: 1, key: { type: "header", header: "X_Api-Key" } }));
    expect(requestKey(ip!, [], "10.1.2.3")).toBe("10.1.2.3");
    expect(requestKey(ip!, [], "")).toBeNull();
    expect(requestKey(header!, ["Host", "h", "X-API-KEY", "one", "x-api-key", "two"], "1.1.1.1")).toBe("one");
    expect(requestKey(header!, ["x_api_key", "sneaky"], "1.1.1.1")).toBeNull();
    expect(requestKey(header!, ["x-api-key", ""], "1.1.1.1")).toBeNull();
    expect(requestKey(header!, ["Host", "h"], "1.1.1.1")).toBeNull();
    const long = requestKey(header!, ["x-api-key", "k".repeat(5000)], "1.1.1.1")!;
    expect(long.length).toBeLessThanOrEqual(64);
    expect(long).not.toBe(requestKey(header!, ["x-api-key", `${"k".repeat(4999)}j`], "1.1.1.1"));
  });

  it("documents with bad rate limits are refused, naming the field", () => {
    const problems = rateLimitProblems(
      [
        limit({ prefix: "v1", rps: 1 }),
        limit({ prefix: "/a", rps: 0.001 }),
        limit({ prefix: "/a", rps: 1, burst: 1.5 }),
        limit({ prefix: "/b", rps: 1, key: { type: "header", header: "x y" } }),
        limit({ prefix: "/c", rps: Number.NaN }),
      ],
      "services[0]",
    );
    expect(problems).toEqual([
      "services[0].rate_limits[0].prefix: expected a path starting with / without spaces, backslashes or braces",
      "services[0].rate_limits[1].rps: expected requests per second ≥ 1/60 and ≤ 1000000",
      "services[0].rate_limits[2].prefix: /a is already the prefix of rate_limits[1]",
      "services[0].rate_limits[2].burst: expected a whole number of requests ≥ 0 and ≤ 1000000",
      "services[0].rate_limits[3].key.header: expected a header name of letters, digits, '-' or '_'",
      "services[0].rate_limits[4].rps: expected requests per second ≥ 1/60 and ≤ 1000000",
    ]);
    expect(() =>
      parseDocument(configDocument(1, [{ name: "svc", replicas: [], rate_limits: [limit({ rps: 0 })] }])),
    ).toThrow("services[0].rate_limits[0].rps: expected requests per second ≥ 1/60");
  });
});

describe("IPC gate", () => {
  it("sends one message per event-loop turn and hands each verdict back in order", async () => {
    const registry = new ZoneRegistry(10, () => 0);
    const zone = spec(1, 1);
    registry.retain([zone]);
    const sent: RateLimitAsk[] = [];
    const gate = new IpcGate(
      (m) => {
        sent.push(m);
        return true;
      },
      1000,
      () => {},
      () => 5,
    );
    const verdicts: (Verdict | null)[] = [];
    for (const key of ["a", "a", "a", "b"]) gate.take(zone, key, (v) => verdicts.push(v));
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(1);
    expect(sent[0]!.keys).toEqual(["a", "a", "a", "b"]);
    expect(sent[0]!.times).toEqual([5, 5, 5, 5]);
    gate.receive(answerAsk(registry, sent[0]!));
    expect(verdicts).toEqual([0, 1000, -2000, 0]);
  });

  it("judges each request at the time it reached the worker, not when the parent got to it", () => {
    const registry = new ZoneRegistry(10, () => 1_000_000);
    const zone = spec(1, 0);
    registry.retain([zone]);
    const ask = (times: number[]): RateLimitAsk => ({
      type: "rate-limit",
      id: 1,
      zones: times.map(() => zone.id),
      keys: times.map(() => "k"),
      times,
    });
    // One a second, answered late in one batch: all admitted, as they would have been on time.
    expect(answerAsk(registry, ask([0, 1000, 2000])).verdicts).toEqual([0, 0, 0]);
    // A worker whose clock lags: no leak is credited for going back in time.
    expect(answerAsk(registry, ask([1500])).verdicts).toEqual([-1000]);
  });

  it("admits what waits when the parent is unreachable or silent", async () => {
    const log: string[] = [];
    const zone = spec(1, 0);
    const closed = new IpcGate(
      () => false,
      1000,
      (l) => log.push(l),
    );
    const got: (Verdict | null)[] = [];
    closed.take(zone, "a", (v) => got.push(v));
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual([null]);
    const silent = new IpcGate(
      () => true,
      50,
      (l) => log.push(l),
    );
    silent.take(zone, "a", (v) => got.push(v));
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual([null, null]);
    expect(log[0]).toContain("admitting requests unchecked");
  });
});
