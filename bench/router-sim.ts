/**
 * @module
 * A simulated fleet for routing quality: N workers, each with a prefix cache of fixed capacity (LRU
 * over blocks of 16 tokens, keyed by the whole prefix up to the block) and a cost model — prefill
 * time ∝ uncached prompt tokens (one prefill at a time per worker), decode time ∝ output tokens, at
 * most `concurrency` requests running per worker (the rest queue at the worker). The policies are
 * the proxy's own (`proxy/policies/`), fed the routing text and the in-flight counts they would see
 * in the proxy, and engine loads that arrive late: every `scrapeSeconds` each worker's running and
 * waiting requests and KV use are copied into the policy's view as the host's scraper would
 * (`EngineLoad`, with the view's in-flight count at that moment), and stay as they were until the
 * next scrape — no policy sees the present of an engine, let alone its future. One token is one
 * character of routing text (a code point outside ASCII). Workloads: `router-workloads.ts`.
 */

import { AGREEMENT_TOLERANCE, Mesh } from "../proxy/mesh/mesh.ts";
import { CacheAware } from "../proxy/policies/cache-aware.ts";
import { LeastLoad } from "../proxy/policies/least-load.ts";
import {
  type Agreement,
  combinedLoad,
  type EngineLoad,
  fleetCombinedLoad,
  fleetInFlightLoad,
  type Policy,
} from "../proxy/policies/policy.ts";
import { PowerOfTwo } from "../proxy/policies/power-of-two.ts";
import { PrefixLoad } from "../proxy/policies/prefix-load.ts";
import { RandomPolicy } from "../proxy/policies/random.ts";
import { RoundRobin } from "../proxy/policies/round-robin.ts";
import { CACHE_AWARE_DEFAULTS, LEAST_LOAD_DEFAULTS, prefixLoadOptions } from "../schema/router.ts";
import { seeded } from "./router-workloads.ts";

export const BLOCK = 16;

export interface SimRequest {
  arrival: number;
  prompt: readonly number[];
  output: readonly number[];
  /** Conversation this request continues (multi-turn): the next turn arrives after it completes. */
  next?: { think: number; request: SimRequest };
}

export interface CostModel {
  /** Seconds of prefill per uncached prompt token. */
  prefillPerToken: number;
  /** Fixed seconds per prefill (scheduling, first step). */
  prefillBase: number;
  /** Seconds per output token (one decode step). */
  decodePerToken: number;
  /** Requests running at once per worker. */
  concurrency: number;
  /** Prefix cache capacity per worker, in tokens. */
  cacheTokens: number;
  /** Seconds between scrapes of the engines' load (the policies' `engine`); 0: never scraped. */
  scrapeSeconds: number;
}

export const DEFAULT_COST: CostModel = {
  prefillPerToken: 0.00005,
  prefillBase: 0.005,
  decodePerToken: 0.01,
  concurrency: 64,
  cacheTokens: 32_768,
  scrapeSeconds: 2,
};

/**
 * Interned keys of block prefixes: key(block j) = f(key(block j−1), tokens of block j). One table
 * for the process, so a request's keys and text are computed once for every policy that runs it.
 */
class BlockKeys {
  readonly #ids = new Map<string, number>();
  keys(tokens: readonly number[]): number[] {
    const out: number[] = [];
    let prev = -1;
    for (let b = 0; b + BLOCK <= tokens.length; b += BLOCK) {
      const k = `${prev}:${tokens.slice(b, b + BLOCK).join(",")}`;
      let id = this.#ids.get(k);
      if (id === undefined) {
        id = this.#ids.size;
        this.#ids.set(k, id);
      }
      out.push(id);
      prev = id;
    }
    return out;
  }
}

const BLOCK_KEYS = new BlockKeys();
export interface Prepared {
  text: string;
  keys: number[];
  /** Keys of prompt + output: what the worker holds after answering. */
  doneKeys: number[];
}
const PREPARED = new WeakMap<SimRequest, Prepared>();
/** A request's routing text and block keys, computed once for every simulation that runs it. */
export function prepared(r: SimRequest): Prepared {
  let p = PREPARED.get(r);
  if (!p) {
    p = {
      text: textOf(r.prompt),
      keys: BLOCK_KEYS.keys(r.prompt),
      doneKeys: BLOCK_KEYS.keys([...r.prompt, ...r.output]),
    };
    PREPARED.set(r, p);
  }
  return p;
}

export class LruCache {
  readonly #blocks = new Map<number, true>();
  #capacity: number;
  constructor(capacityTokens: number) {
    this.#capacity = Math.max(1, Math.floor(capacityTokens / BLOCK));
  }
  /** A new capacity (the KV memory running requests leave free), evicting the least recent blocks beyond it. */
  resize(capacityTokens: number): void {
    this.#capacity = Math.max(1, Math.floor(capacityTokens / BLOCK));
    while (this.#blocks.size > this.#capacity) this.#blocks.delete(this.#blocks.keys().next().value!);
  }
  /** Blocks of `keys` cached from the start (and marks them used). */
  match(keys: readonly number[]): number {
    let n = 0;
    while (n < keys.length && this.#blocks.has(keys[n]!)) {
      this.#blocks.delete(keys[n]!);
      this.#blocks.set(keys[n]!, true);
      n++;
    }
    return n;
  }
  insert(keys: readonly number[]): void {
    for (const k of keys) {
      this.#blocks.delete(k);
      this.#blocks.set(k, true);
    }
    while (this.#blocks.size > this.#capacity) this.#blocks.delete(this.#blocks.keys().next().value!);
  }
}

class SimWorker {
  inFlight = 0;
  served = 0;
  running = 0;
  /** Of `running`, those whose prefill has not finished (an engine counts them as waiting). */
  prefilling = 0;
  /** Tokens (prompt + output) of the running requests: the KV in use. */
  kvTokens = 0;
  prefillFreeAt = 0;
  readonly queue: Job[] = [];
  readonly cache: LruCache;
  constructor(
    readonly index: number,
    cacheTokens: number,
  ) {
    this.cache = new LruCache(cacheTokens);
  }
}

interface Job {
  request: SimRequest;
  worker: SimWorker;
  /** The in-flight view of the routing process that dispatched it. */
  view: { inFlight: number };
  keys: number[];
}

/** A min-heap of timed events. */
export class Events {
  readonly #items: { at: number; seq: number; run: () => void }[] = [];
  #seq = 0;
  push(at: number, run: () => void): void {
    const items = this.#items;
    items.push({ at, seq: this.#seq++, run });
    let i = items.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      const a = items[up]!;
      const b = items[i]!;
      if (a.at < b.at || (a.at === b.at && a.seq < b.seq)) break;
      items[up] = b;
      items[i] = a;
      i = up;
    }
  }
  pop(): { at: number; run: () => void } | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        const less = (x: number, y: number) =>
          items[x]!.at < items[y]!.at || (items[x]!.at === items[y]!.at && items[x]!.seq < items[y]!.seq);
        if (l < items.length && less(l, m)) m = l;
        if (r < items.length && less(r, m)) m = r;
        if (m === i) break;
        [items[m], items[i]] = [items[i]!, items[m]!];
        i = m;
      }
    }
    return top;
  }
}

export interface SimResult {
  hitRate: number;
  throughput: number;
  ttftP50: number;
  ttftP90: number;
  ttftP99: number;
  maxServed: number;
  /** Requests per worker, in worker order. */
  served: number[];
  minServed: number;
  requests: number;
  /** Requests sent to a worker with a full batch (so they queued) while another worker had a free slot. */
  queuedBesideRoom: number;
}

const textOf = (tokens: readonly number[]) => String.fromCodePoint(...tokens.map((t) => 0x4e00 + (t % 20_000)));

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** What a policy sees of a simulated worker: the routing process's in-flight count and the last scrape. */
export interface SimView {
  /** The worker's id (what a mesh digest names). */
  id: string;
  inFlight: number;
  /** The other gateways' in-flight requests on it, as their last digests told (mesh with loads). */
  peerInFlight: number;
  engine: EngineLoad | null;
}

/** A policy for one run, drawing from the run's seeded `random` (every run of a seed is the same). */
export type PolicyFactory = (random: () => number) => Policy<SimView>;

const int = (random: () => number) => (n: number) => Math.floor(random() * n);

/**
 * The rows of the quality tables: each policy as built (its default `load`), and with the other
 * `load` (with one gateway as the only client both give the same rows: `combinedLoad` is then the
 * in-flight count).
 */
export const SIM_POLICIES: Record<string, PolicyFactory> = {
  cache_aware: (r) => new CacheAware({ ...CACHE_AWARE_DEFAULTS }, [], 0, int(r)),
  "cache_aware, load: engine": (r) => new CacheAware({ ...CACHE_AWARE_DEFAULTS }, [], 0, int(r), combinedLoad),
  power_of_two: (r) => new PowerOfTwo(int(r)),
  "power_of_two, load: engine": (r) => new PowerOfTwo(int(r), combinedLoad),
  least_load: () => new LeastLoad({ ...LEAST_LOAD_DEFAULTS }),
  prefix_load: (r) => new PrefixLoad(prefixLoadOptions(null), [], 0, r, fleetCombinedLoad),
  "prefix_load, load: in_flight": (r) => new PrefixLoad(prefixLoadOptions(null), [], 0, r, fleetInFlightLoad),
  random: (r) => new RandomPolicy(int(r)),
  round_robin: () => new RoundRobin(),
};

/**
 * Runs `requests` (each conversation's first turn; later turns hang off `next`) through `workers`
 * workers. Each request reaches one of `processes` proxy processes at random, as connections reach
 * the proxy's workers. With `state: "host"` (what the proxy does) they all route through one
 * policy and one set of loads, so the number of processes changes nothing; with "per-process"
 * each process has its own policy copy and counts only its own in-flight requests (the first pass,
 * kept to show what it cost).
 */
/**
 * Gateway replicas in front of the fleet: each has its own routing state (policy, tree, in-flight
 * counts; engine scrapes see every gateway's load, as real scrapes do) and requests reach them in
 * turn, as clients behind round-robin DNS (each request resolved anew: the worst case; clients that
 * keep a connection per conversation split less). `share`: the mesh (`proxy/mesh/`) — every
 * `interval` seconds (each gateway at its own phase) a gateway's digest reaches the others `delay`
 * seconds later, through the same code the proxy runs; null: independent state. `loads: false`:
 * digests without the gateways' in-flight counts (each sees only its own plus engine scrapes).
 */
export interface GatewayReplicas {
  count: number;
  share: { interval: number; delay: number; loads?: boolean } | null;
  /**
   * The tree policies' agreement on new prefixes (`proxy/policies/policy.ts`'s `Agreement`), with
   * the proxy's load tolerance (`AGREEMENT_TOLERANCE`), as the proxy sets it while the mesh has
   * peers (here from the start); false: random tie-breaks, each gateway on its own.
   */
  agree?: boolean;
}

export function simulate(
  requests: readonly SimRequest[],
  factory: PolicyFactory,
  workers: number,
  cost: CostModel,
  processes = 1,
  state: "host" | "per-process" = "host",
  seed = 1,
  gateways: GatewayReplicas | null = null,
): SimResult {
  const random = seeded(seed);
  const fleet = Array.from({ length: workers }, (_, i) => new SimWorker(i, cost.cacheTokens));
  const routerCount = gateways ? gateways.count : state === "host" ? 1 : processes;
  /** The simulated clock (s), for the mesh's peer and load ages. */
  let clock = 0;
  const routers = Array.from({ length: routerCount }, (_, g) => {
    const views = fleet.map((w) => ({
      id: `w${w.index}`,
      inFlight: 0,
      peerInFlight: 0,
      engine: null as EngineLoad | null,
      worker: w,
    }));
    const policy = factory(random);
    policy.retain(views);
    const tree = "tree" in policy ? (policy.tree as { insert(text: string, tenant: SimView): void }) : null;
    const share = gateways?.share;
    const mesh =
      share && tree
        ? new Mesh({ random, now: () => clock * 1000, origin: `g${g}`, loadTtlMs: 4 * share.interval * 1000 })
        : null;
    if (mesh && share!.loads !== false) {
      mesh.shareLoads({
        local: () => views.filter((v) => v.inFlight > 0).map((v) => ({ service: "sim", id: v.id, n: v.inFlight })),
        peers: (totals) => {
          for (const v of views) v.peerInFlight = totals.get("sim")?.get(v.id) ?? 0;
        },
      });
    }
    const tolerance = AGREEMENT_TOLERANCE[policy.name as keyof typeof AGREEMENT_TOLERANCE];
    if (gateways?.agree && tolerance !== undefined && "agreement" in policy) {
      (policy as { agreement: Agreement<SimView> | null }).agreement = { tolerance, id: (v) => v.id };
    }
    mesh?.retain(["sim"]);
    return { policy, views, tree, mesh, byId: new Map(views.map((v) => [v.id, v as SimView])) };
  });
  let nextGateway = 0;
  const events = new Events();
  let total = 0;
  for (const first of requests) for (let r: SimRequest | undefined = first; r; r = r.next?.request) total++;
  let finished = 0;
  // The scraper: what each engine reports, copied into every routing view, then left to age.
  const scrape = (now: number) => {
    for (const router of routers) {
      for (const view of router.views) {
        const w = view.worker;
        view.engine = {
          running: w.running - w.prefilling,
          waiting: w.queue.length + w.prefilling,
          kvUsage: Math.min(1, w.kvTokens / cost.cacheTokens),
          inFlightAtScrape: view.inFlight,
          at: now * 1000,
        };
      }
    }
    if (finished < total) events.push(now + cost.scrapeSeconds, () => scrape(now + cost.scrapeSeconds));
  };
  // The scraper's phase is random against the arrivals, as a real one's is.
  const firstScrape = cost.scrapeSeconds * random();
  if (cost.scrapeSeconds > 0) events.push(firstScrape, () => scrape(firstScrape));
  // The mesh: each gateway's digest every interval, delivered to the others after the relay's delay.
  const share = gateways?.share;
  if (share) {
    routers.forEach((router, i) => {
      if (!router.mesh) return;
      const tick = (now: number) => {
        const digest = router.mesh!.take();
        if (digest) {
          const wire = JSON.parse(JSON.stringify(digest)) as unknown;
          for (const other of routers)
            if (other !== routers[i]) events.push(now + share.delay, () => other.mesh!.apply(wire));
        }
        if (finished < total) events.push(now + share.interval, () => tick(now + share.interval));
      };
      const first = share.interval * random();
      events.push(first, () => tick(first));
    });
  }
  const ttfts: number[] = [];
  let promptTokens = 0;
  let cachedTokens = 0;
  let outputTokens = 0;
  let lastDone = 0;
  let firstArrival = Number.POSITIVE_INFINITY;
  let queuedBesideRoom = 0;

  const tryStart = (w: SimWorker, now: number) => {
    while (w.running < cost.concurrency && w.queue.length > 0) {
      const job = w.queue.shift()!;
      w.running++;
      w.prefilling++;
      w.kvTokens += job.request.prompt.length + job.request.output.length;
      const cached = Math.min(w.cache.match(job.keys) * BLOCK, job.request.prompt.length);
      promptTokens += job.request.prompt.length;
      cachedTokens += cached;
      const start = Math.max(now, w.prefillFreeAt);
      const prefillDone = start + cost.prefillBase + (job.request.prompt.length - cached) * cost.prefillPerToken;
      w.prefillFreeAt = prefillDone;
      w.cache.insert(job.keys);
      events.push(prefillDone, () => {
        w.prefilling--;
        ttfts.push(prefillDone - job.request.arrival);
        const done = prefillDone + job.request.output.length * cost.decodePerToken;
        events.push(done, () => finish(job, done));
      });
    }
  };

  const finish = (job: Job, now: number) => {
    const w = job.worker;
    finished++;
    w.running--;
    w.kvTokens -= job.request.prompt.length + job.request.output.length;
    w.inFlight--;
    job.view.inFlight--;
    outputTokens += job.request.output.length;
    lastDone = Math.max(lastDone, now);
    // What the worker generated stays cached with the prompt (a later turn extends both).
    w.cache.insert(prepared(job.request).doneKeys);
    const next = job.request.next;
    if (next) {
      next.request.arrival = now + next.think;
      events.push(next.request.arrival, () => arrive(next.request, next.request.arrival));
    }
    tryStart(w, now);
  };

  const arrive = (request: SimRequest, now: number) => {
    firstArrival = Math.min(firstArrival, now);
    const router = gateways
      ? routers[nextGateway++ % routers.length]!
      : routers[Math.floor(random() * routers.length)]!;
    const { text, keys } = prepared(request);
    if (router.mesh) router.mesh.learn("sim", router.tree!, text, router.byId);
    const view = router.policy.select(router.views, text, now * 1000) as SimView & { worker: SimWorker };
    if (router.mesh) router.mesh.routed("sim", text, view.id);
    const w = view.worker;
    if (w.running >= cost.concurrency && fleet.some((o) => o.running < cost.concurrency)) queuedBesideRoom++;
    view.inFlight++;
    w.inFlight++;
    w.served++;
    w.queue.push({ request, worker: w, view, keys });
    tryStart(w, now);
  };

  for (const r of requests) events.push(r.arrival, () => arrive(r, r.arrival));
  for (let e = events.pop(); e; e = events.pop()) {
    clock = e.at;
    e.run();
  }
  ttfts.sort((a, b) => a - b);
  const served = fleet.map((w) => w.served);
  return {
    hitRate: promptTokens === 0 ? 0 : cachedTokens / promptTokens,
    throughput: (promptTokens + outputTokens) / (lastDone - firstArrival),
    ttftP50: percentile(ttfts, 50),
    ttftP90: percentile(ttfts, 90),
    ttftP99: percentile(ttfts, 99),
    maxServed: Math.max(...served),
    served,
    minServed: Math.min(...served),
    requests: ttfts.length,
    queuedBesideRoom,
  };
}

/**
 * The best hit rate any routing could reach: one cache of unlimited size that has seen every earlier
 * prompt and answer, in arrival order (turns of a conversation after the previous turn's answer).
 */
export function oracleHitRate(requests: readonly SimRequest[]): number {
  const keys = new BlockKeys();
  const seen = new Set<number>();
  const all: SimRequest[] = [];
  const walk = (r: SimRequest) => {
    all.push(r);
    if (r.next) walk(r.next.request);
  };
  for (const r of requests) walk(r);
  let prompt = 0;
  let cached = 0;
  for (const r of all) {
    const ks = keys.keys(r.prompt);
    let n = 0;
    while (n < ks.length && seen.has(ks[n]!)) n++;
    prompt += r.prompt.length;
    cached += Math.min(n * BLOCK, r.prompt.length);
    for (const k of keys.keys([...r.prompt, ...r.output])) seen.add(k);
  }
  return prompt === 0 ? 0 : cached / prompt;
}
