/**
 * @module
 * Prefill/decode disaggregation on the simulated fleet, and the co-located fleet it is compared with,
 * under ONE engine model so the comparison is fair (docs/pd.md, "PD vs co-located: figures").
 *
 * `router-sim.ts`'s cost model is enough to compare routing policies but not PD: its decode runs at
 * a fixed 10 ms per token beside its prefills, so a co-located worker never slows a decode for a
 * prefill and inter-token latency (ITL) is a constant. Here every worker is an iteration-level engine
 * (continuous batching with chunked prefill, as vLLM's scheduler and SGLang's mixed chunks): each step
 * decodes one token for every running request and prefills up to `chunkTokens` uncached prompt
 * tokens, and lasts `stepBase + decodePerSeq × decodes + prefillPerToken × prefill tokens`. A
 * co-located worker's decodes wait for the prefill chunk in their step (the ITL spikes PD removes);
 * a prefill worker's steps are prefill only; a decode worker's are decode only. Per-token costs,
 * prefix cache, running limit and KV capacity are the same for every worker in both modes (the same
 * GPU, the same engine; `router-sim-pd-cost.ts`), so a PD fleet of P + D workers is compared with
 * N = P + D co-located ones.
 *
 * PD, as SGLang's disaggregation with SMG's router (`proxy/pd/`): each request gets a prefill worker
 * from the prefill policy (on the request's text) and a decode worker from the decode policy (on ""
 * as `forward-pd.ts` asks it), both at dispatch; the decode worker reserves the request's KV when it
 * admits it (SGLang's pre-allocation), the prefill worker computes the prompt (its prefix cache
 * matters as in co-located), then sends the whole prompt's KV — cached prefix included — over its
 * NIC (`KvTransfer`: the bytes one transfer at a time per prefill worker, plus a fixed latency);
 * the first token reaches the client when the KV has arrived (decode streams it), the rest are
 * decode's steps. What decode generated is not in any prefill worker's cache (a later turn's prefill
 * recomputes the previous answer). One gateway, host state, engine loads scraped as in `router-sim.ts`.
 */
import { pdRouting, type RouterConfig, type RouterPolicy } from "../schema/router.ts";
import {
  BLOCK,
  Events,
  LruCache,
  percentile,
  prepared,
  SIM_POLICIES,
  type SimRequest,
  type SimView,
} from "./router-sim.ts";
import { DEFAULT_ENGINE, DEFAULT_TRANSFER, type EngineCost, type KvTransfer } from "./router-sim-pd-cost.ts";
import { seeded } from "./router-workloads.ts";

/** N co-located workers behind one policy, or P prefill + D decode workers behind a PD router. */
export type Fleet =
  | { kind: "colocated"; workers: number; policy: RouterPolicy }
  | { kind: "pd"; prefill: number; decode: number; router: RouterConfig };

export interface PdSimResult {
  hitRate: number;
  /** Prompt + output tokens per second (`router-sim.ts`'s throughput). */
  throughput: number;
  outputThroughput: number;
  ttft: { p50: number; p90: number; p99: number };
  /** Seconds between consecutive tokens of a request, over every token after the first. */
  itl: { p50: number; p90: number; p99: number; max: number };
  /** Share of those gaps over 50 ms (a decode step waiting for a prefill chunk, typically). */
  itlOver50ms: number;
  /** Mean seconds from prefill done to KV arrived (waiting for decode's admission + NIC + latency); 0 co-located. */
  handoffMean: number;
  /** Busy share of the prefill pool and the decode pool (co-located: both the whole fleet). */
  busy: { prefill: number; decode: number };
  /** Requests per worker (co-located: every worker; PD: prefill workers then decode workers). */
  served: number[];
  /** Per request in dispatch order: [prefill worker, decode worker] (co-located: both the worker). */
  pairs: [number, number][];
  requests: number;
}

type Role = "both" | "prefill" | "decode";

class Engine {
  queue: Job[] = [];
  prefilling: Job[] = [];
  decoding: Job[] = [];
  running = 0;
  kvUsed = 0;
  /** Output tokens the running requests will write (co-located): the KV the prefix cache cannot use. */
  outputsHeld = 0;
  stepping = false;
  busySeconds = 0;
  served = 0;
  /** When the NIC has sent every transfer started so far (prefill workers). */
  nicFreeAt = 0;
  readonly cache: LruCache;
  constructor(
    readonly index: number,
    readonly role: Role,
    cost: EngineCost,
  ) {
    this.cache = new LruCache(cost.kvTokens);
  }
}

interface View extends SimView {
  worker: Engine;
}

interface Job {
  request: SimRequest;
  prefillAt: Engine;
  decodeAt: Engine;
  prefillView: View;
  decodeView: View;
  prefillLeft: number;
  /** KV tokens the job holds on its prefill worker and on its decode worker (one number co-located). */
  prefillHeld: number;
  decodeHeld: number;
  outLeft: number;
  lastTokenAt: number;
  /** When prefill finished (PD), else null. */
  prefilledAt: number | null;
  decodeAdmitted: boolean;
}

/** Runs `requests` (first turns; later turns hang off `next`) through `fleet`. */
export function simulatePd(
  requests: readonly SimRequest[],
  fleet: Fleet,
  cost: EngineCost = DEFAULT_ENGINE,
  transfer: KvTransfer = DEFAULT_TRANSFER,
  seed = 1,
): PdSimResult {
  const random = seeded(seed);
  const events = new Events();
  let prefillPool: Engine[];
  let decodePool: Engine[];
  let prefillPolicyName: RouterPolicy;
  let decodePolicyName: RouterPolicy;
  if (fleet.kind === "colocated") {
    prefillPool = Array.from({ length: fleet.workers }, (_, i) => new Engine(i, "both", cost));
    decodePool = prefillPool;
    prefillPolicyName = decodePolicyName = fleet.policy;
  } else {
    // The proxy's choice of the two policies (`buildPdRoute`): the router's PD options or nothing.
    const pd = pdRouting(fleet.router);
    if (!pd) throw new Error("fleet.router: pd_disaggregation with prefill_policy and decode_policy expected");
    prefillPool = Array.from({ length: fleet.prefill }, (_, i) => new Engine(i, "prefill", cost));
    decodePool = Array.from({ length: fleet.decode }, (_, i) => new Engine(fleet.prefill + i, "decode", cost));
    prefillPolicyName = pd.prefill_policy;
    decodePolicyName = pd.decode_policy;
  }
  const colocated = fleet.kind === "colocated";
  const all = colocated ? prefillPool : [...prefillPool, ...decodePool];
  const side = (pool: Engine[], name: RouterPolicy) => {
    const factory = SIM_POLICIES[name];
    if (!factory) throw new Error(`policy ${name}: not simulated`);
    const views: View[] = pool.map((w) => ({
      id: `w${w.index}`,
      inFlight: 0,
      peerInFlight: 0,
      engine: null,
      worker: w,
    }));
    const policy = factory(random);
    policy.retain(views);
    return { policy, views };
  };
  const prefillSide = side(prefillPool, prefillPolicyName);
  const decodeSide = colocated ? prefillSide : side(decodePool, decodePolicyName);

  let total = 0;
  for (const first of requests) for (let r: SimRequest | undefined = first; r; r = r.next?.request) total++;
  let finished = 0;
  const scrape = (now: number) => {
    for (const s of colocated ? [prefillSide] : [prefillSide, decodeSide]) {
      for (const view of s.views) {
        const w = view.worker;
        // Admitted requests neither prefilling nor decoding wait for their KV (SGLang reports its
        // pre-allocation and transfer queues apart from the running batch): waiting here.
        view.engine = {
          running: w.decoding.length,
          waiting: w.queue.length + (w.running - w.decoding.length),
          kvUsage: Math.min(1, w.kvUsed / cost.kvTokens),
          inFlightAtScrape: view.inFlight,
          at: now * 1000,
        };
      }
    }
    if (finished < total) events.push(now + cost.scrapeSeconds, () => scrape(now + cost.scrapeSeconds));
  };
  const firstScrape = cost.scrapeSeconds * random();
  if (cost.scrapeSeconds > 0) events.push(firstScrape, () => scrape(firstScrape));

  const ttfts: number[] = [];
  const itls: number[] = [];
  const pairs: [number, number][] = [];
  let promptTokens = 0;
  let cachedTokens = 0;
  let outputTokens = 0;
  let handoffSum = 0;
  let handoffs = 0;
  let firstArrival = Number.POSITIVE_INFINITY;
  let lastDone = 0;

  const release = (w: Engine, held: number, output: number) => {
    w.running--;
    w.kvUsed -= held;
    w.outputsHeld -= output;
    w.cache.resize(cost.kvTokens - w.outputsHeld);
  };

  const admit = (w: Engine, now: number) => {
    while (w.queue.length > 0) {
      const job = w.queue[0]!;
      const { prompt, output } = job.request;
      const { keys } = prepared(job.request);
      const cached = w.role === "decode" ? 0 : Math.min(w.cache.match(keys) * BLOCK, prompt.length);
      const need = prompt.length - cached + (w.role === "prefill" ? 0 : output.length);
      if (w.running >= cost.maxRunning || (w.running > 0 && w.kvUsed + need > cost.kvTokens)) break;
      w.queue.shift();
      w.running++;
      w.kvUsed += need;
      if (w.role === "decode") {
        job.decodeHeld = need;
        job.decodeAdmitted = true;
        handOff(job, now);
        continue;
      }
      if (w.role === "both") {
        job.decodeHeld = need;
        w.outputsHeld += output.length;
      }
      job.prefillHeld = need;
      promptTokens += prompt.length;
      cachedTokens += cached;
      w.cache.insert(keys);
      w.cache.resize(cost.kvTokens - w.outputsHeld);
      // An engine computes at least the last token even when the whole prompt is cached.
      job.prefillLeft = Math.max(1, prompt.length - cached);
      w.prefilling.push(job);
    }
  };

  const kick = (w: Engine, now: number) => {
    if (w.stepping) return;
    admit(w, now);
    if (w.prefilling.length === 0 && w.decoding.length === 0) return;
    let budget = cost.chunkTokens;
    const chunk: [Job, number][] = [];
    for (const job of w.prefilling) {
      if (budget <= 0) break;
      const n = Math.min(budget, job.prefillLeft);
      chunk.push([job, n]);
      budget -= n;
    }
    const decodes = w.decoding.slice();
    const duration =
      cost.stepBase + cost.decodePerSeq * decodes.length + cost.prefillPerToken * (cost.chunkTokens - budget);
    w.stepping = true;
    w.busySeconds += duration;
    const end = now + duration;
    events.push(end, () => {
      w.stepping = false;
      for (const job of decodes) {
        itls.push(end - job.lastTokenAt);
        job.lastTokenAt = end;
        job.outLeft--;
        if (job.outLeft === 0) finish(job, end);
      }
      w.decoding = w.decoding.filter((j) => j.outLeft > 0);
      for (const [job, n] of chunk) {
        job.prefillLeft -= n;
        if (job.prefillLeft === 0) prefilled(job, end);
      }
      w.prefilling = w.prefilling.filter((j) => j.prefillLeft > 0);
      kick(w, end);
    });
  };

  /** The first token is out at `now`: the job decodes the rest on its decode worker (whose caller kicks it). */
  const firstToken = (job: Job, now: number) => {
    ttfts.push(now - job.request.arrival);
    job.lastTokenAt = now;
    job.outLeft = job.request.output.length - 1;
    if (job.outLeft <= 0) finish(job, now);
    else job.decodeAt.decoding.push(job);
  };

  const prefilled = (job: Job, now: number) => {
    if (colocated) return firstToken(job, now);
    job.prefilledAt = now;
    handOff(job, now);
  };

  /** PD: once prefill is done and decode has reserved the KV, the prefill worker's NIC sends it. */
  const handOff = (job: Job, now: number) => {
    if (job.prefilledAt === null || !job.decodeAdmitted) return;
    const p = job.prefillAt;
    const sent = Math.max(now, p.nicFreeAt) + job.request.prompt.length * transfer.perToken;
    p.nicFreeAt = sent;
    const arrived = sent + transfer.base;
    handoffSum += arrived - job.prefilledAt;
    handoffs++;
    events.push(arrived, () => {
      release(p, job.prefillHeld, 0);
      job.prefillView.inFlight--;
      kick(p, arrived);
      firstToken(job, arrived);
      kick(job.decodeAt, arrived);
    });
  };

  const finish = (job: Job, now: number) => {
    const w = job.decodeAt;
    finished++;
    release(w, job.decodeHeld, colocated ? job.request.output.length : 0);
    job.decodeView.inFlight--;
    outputTokens += job.request.output.length;
    lastDone = Math.max(lastDone, now);
    // A co-located worker keeps what it generated with the prompt; a decode worker's KV is no
    // prefill worker's cache.
    if (colocated) {
      w.cache.insert(prepared(job.request).doneKeys);
      w.cache.resize(cost.kvTokens - w.outputsHeld);
    }
    const next = job.request.next;
    if (next) {
      next.request.arrival = now + next.think;
      events.push(next.request.arrival, () => arrive(next.request, next.request.arrival));
    }
  };

  const arrive = (request: SimRequest, now: number) => {
    firstArrival = Math.min(firstArrival, now);
    const { text } = prepared(request);
    const prefillView = prefillSide.policy.select(prefillSide.views, text, now * 1000) as View;
    // Colocated: one pick; PD: the decode side's own policy, without the text (`forward-pd.ts`).
    const decodeView = colocated ? prefillView : (decodeSide.policy.select(decodeSide.views, "", now * 1000) as View);
    const job: Job = {
      request,
      prefillAt: prefillView.worker,
      decodeAt: decodeView.worker,
      prefillView,
      decodeView,
      prefillLeft: 0,
      prefillHeld: 0,
      decodeHeld: 0,
      outLeft: 0,
      lastTokenAt: 0,
      prefilledAt: null,
      decodeAdmitted: colocated,
    };
    pairs.push([prefillView.worker.index, decodeView.worker.index]);
    prefillView.inFlight++;
    prefillView.worker.served++;
    prefillView.worker.queue.push(job);
    if (!colocated) {
      decodeView.inFlight++;
      decodeView.worker.served++;
      decodeView.worker.queue.push(job);
      kick(decodeView.worker, now);
    }
    kick(prefillView.worker, now);
  };

  for (const r of requests) events.push(r.arrival, () => arrive(r, r.arrival));
  for (let e = events.pop(); e; e = events.pop()) e.run();

  ttfts.sort((a, b) => a - b);
  itls.sort((a, b) => a - b);
  const span = lastDone - firstArrival;
  const busy = (pool: Engine[]) => pool.reduce((s, w) => s + w.busySeconds, 0) / (pool.length * span);
  const p = (xs: number[]) => ({ p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99) });
  return {
    hitRate: promptTokens === 0 ? 0 : cachedTokens / promptTokens,
    throughput: (promptTokens + outputTokens) / span,
    outputThroughput: outputTokens / span,
    ttft: p(ttfts),
    itl: { ...p(itls), max: itls.at(-1) ?? 0 },
    itlOver50ms: itls.length === 0 ? 0 : itls.filter((x) => x > 0.05).length / itls.length,
    handoffMean: handoffs === 0 ? 0 : handoffSum / handoffs,
    busy: { prefill: busy(prefillPool), decode: busy(decodePool) },
    served: all.map((w) => w.served),
    pairs,
    requests: ttfts.length,
  };
}
