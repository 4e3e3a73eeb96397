/**
 * @module
 * Configuration documents and deltas made up for tests and the delta benchmark: a gateway of N
 * services (a mix of routers, models, rate limits), and random changes of it from a seeded PRNG,
 * as the control plane would send them (whole services in name order, removed names, a head when
 * the envelope changed). Everything is parsed by the schema, so defaults are filled as on the wire.
 */
import * as v from "valibot";
import type { ConfigDelta } from "../../schema/config-delta.ts";
import { ConfigDocument, ConfigService } from "../../schema/config-document.ts";

/** mulberry32: small, fast, and the same sequence for a seed on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ROUTERS = [
  null,
  { type: "sglang", policy: "cache_aware" },
  { type: "sglang", policy: "round_robin" },
  { type: "sglang", policy: "power_of_two" },
  { type: "sglang", policy: "prefix_load" },
] as const;

export interface ServiceShape {
  replicas?: number;
  /** Index into the routers (null, cache_aware, round_robin, power_of_two, prefix_load). */
  router?: number;
  model?: string | null;
  rateLimit?: number | null;
  host?: string;
  auth?: boolean;
}

/** One service as the control plane sends it. */
export function fakeService(name: string, shape: ServiceShape = {}): ConfigService {
  const replicas = shape.replicas ?? 2;
  // A loopback address per service, so replicas have origins of their own as on a real gateway.
  let h = 0;
  for (const c of name) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
  return v.parse(ConfigService, {
    name,
    project: "main",
    host: shape.host ?? `${name}.gw.example.com`,
    https: false,
    auth: shape.auth ?? false,
    client_max_body_size: 0,
    read_timeout_ms: 60_000,
    rate_limits:
      shape.rateLimit == null ? [] : [{ prefix: "/", key: { type: "ip_address" }, rps: shape.rateLimit, burst: 5 }],
    model: shape.model ? { name: shape.model, format: "openai", prefix: "/v1" } : null,
    router: ROUTERS[shape.router ?? 0] ?? null,
    engine: "none",
    replicas: Array.from({ length: replicas }, (_, i) => ({
      id: `${name}-r${i}`,
      // Loopback, and never scraped (`engine: none`): nothing of these made-up replicas leaves the host.
      url: `http://127.${(h >>> 16) & 255}.${(h >>> 8) & 255}.${(h & 255) | 1}:${10_000 + i}`,
    })),
  });
}

/** A document of `count` services `s00000…`, in name order; `shape(i)` varies them. */
export function fakeDocument(
  count: number,
  version = 1,
  shape: (i: number) => ServiceShape = (i) => ({ router: i % ROUTERS.length, model: i % 3 === 0 ? `m${i}` : null }),
): ConfigDocument {
  return v.parse(ConfigDocument, {
    version,
    gateway: { id: "gw", name: "gw", project: "main", domain: "gw.example.com", router: null },
    services: Array.from({ length: count }, (_, i) => fakeService(serviceName(i), shape(i))),
    entrypoint: { host: "gateway.gw.example.com" },
    service_tokens: [{ id: "t1", secret_sha256: "a".repeat(64) }],
    generated_at: "2026-12-03T12:00:00.000Z",
  });
}

export const serviceName = (i: number) => `s${String(i).padStart(5, "0")}`;

/**
 * A random delta on top of `doc`: 1–3 changes among adding a service, changing one (router, model,
 * rate limit, auth), removing one, adding or removing a replica, and changing the head (tokens).
 * Models are drawn from a few names, so two services often declare the same one.
 */
export function randomDelta(doc: ConfigDocument, rng: () => number, nextName: () => string): ConfigDelta {
  const changed = new Map<string, ConfigService>();
  const removed = new Set<string>();
  let head: ConfigDelta["head"];
  const live = () => doc.services.filter((s) => !removed.has(s.name));
  const pick = () => {
    const list = live();
    return list.length === 0 ? null : list[Math.floor(rng() * list.length)]!;
  };
  const current = (s: ConfigService) => changed.get(s.name) ?? s;
  const steps = 1 + Math.floor(rng() * 3);
  for (let step = 0; step < steps; step++) {
    const roll = rng();
    const target = pick();
    if (roll < 0.2 || target === null) {
      const name = nextName();
      changed.set(
        name,
        fakeService(name, { router: Math.floor(rng() * 5), model: rng() < 0.5 ? `m${Math.floor(rng() * 4)}` : null }),
      );
    } else if (roll < 0.35) {
      removed.add(target.name);
      changed.delete(target.name);
    } else if (roll < 0.55) {
      const s = current(target);
      const id = `${s.name}-x${Math.floor(rng() * 1e6)}`;
      changed.set(s.name, {
        ...s,
        replicas: [...s.replicas, { id, url: `http://127.0.9.${1 + Math.floor(rng() * 250)}:9` }],
      });
    } else if (roll < 0.7) {
      const s = current(target);
      changed.set(s.name, { ...s, replicas: s.replicas.slice(1) });
    } else if (roll < 0.9) {
      const s = current(target);
      changed.set(
        s.name,
        fakeService(s.name, {
          replicas: s.replicas.length,
          router: Math.floor(rng() * 5),
          model: rng() < 0.5 ? `m${Math.floor(rng() * 4)}` : null,
          rateLimit: rng() < 0.5 ? 1 + Math.floor(rng() * 10) : null,
          auth: rng() < 0.3,
        }),
      );
    } else {
      const { version: _v, services: _s, ...envelope } = doc;
      head = { ...envelope, service_tokens: [{ id: `t${Math.floor(rng() * 1e6)}`, secret_sha256: "b".repeat(64) }] };
    }
  }
  const services = [...changed.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  return {
    base_version: doc.version,
    version: doc.version + 1,
    services,
    removed: [...removed].sort(),
    ...(head ? { head } : {}),
  };
}

/**
 * The delta from `from` to `to`, as the control plane computes it: services whose JSON differs
 * (whole, in name order), names gone, and the head when anything outside the services differs.
 */
export function diffDocuments(from: ConfigDocument, to: ConfigDocument): ConfigDelta {
  const before = new Map(from.services.map((s) => [s.name, JSON.stringify(s)]));
  const names = new Set(to.services.map((s) => s.name));
  const services = to.services
    .filter((s) => before.get(s.name) !== JSON.stringify(s))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const removed = from.services
    .map((s) => s.name)
    .filter((name) => !names.has(name))
    .sort();
  const { version: _fv, services: _fs, ...fromHead } = from;
  const { version: _tv, services: _ts, ...toHead } = to;
  const head = JSON.stringify(fromHead) === JSON.stringify(toHead) ? {} : { head: toHead };
  return { base_version: from.version, version: to.version, services, removed, ...head };
}
