/**
 * @module
 * A simulated fleet for autoscaling, on simulated time: replicas with router-sim's cost model
 * (`router-sim.ts`: one prefill at a time per replica, at most `concurrency` requests running, the
 * rest wait) and one addition, a decode step that slows as the batch fills (router-sim's decode time
 * is fixed, so ITL could never say a replica is busy; real engines' steps grow with the batch). No
 * prefix cache: every prompt token is prefilled. It reports what agents report — per-window request
 * counts, merged TTFT/ITL histograms (`llm-stats.ts` buckets) and the engines' waiting queue sampled
 * every scrape tick — so the real decision (`evaluateScaling`) reads the real shapes.
 */

import type { ServiceStats } from "../schema/agent-protocol.ts";
import { TPOT_BOUNDS, TTFT_BOUNDS } from "../schema/llm-stats.ts";
import { emptyLlmWindow } from "../schema/traffic.ts";
import type { CostModel } from "./router-sim.ts";
import { DEFAULT_COST } from "./router-sim.ts";
import { seeded } from "./router-workloads.ts";

/** A model a little larger than router-sim's default: slower decode, 32 running at once. */
export const FLEET_COST: CostModel & { batchSlowdown: number } = {
  ...DEFAULT_COST,
  decodePerToken: 0.02,
  concurrency: 32,
  /** A full batch makes each decode step (1 + this) times slower. */
  batchSlowdown: 2,
};
export const PROMPT_TOKENS = 1000;
export const OUTPUT_TOKENS = 150;
/** Seconds from a scale-up decision to the new replica serving (the orchestrator starts it). */
export const STARTUP_SECONDS = 60;
/** The engines' metrics are scraped this often (one queue sample per tick). */
export const SCRAPE_SECONDS = 5;

interface Pending {
  arrival: number;
}

class Replica {
  running = 0;
  prefillBusy = false;
  draining = false;
  readonly waiting: Pending[] = [];
  constructor(
    readonly readyAt: number,
    readonly createdAt: number,
  ) {}
  get inFlight() {
    return this.running + this.waiting.length;
  }
}

/** One second of what agents count, kept for the longest window (300 s). */
interface Second {
  requests: number;
  ttft: number[];
  itl: number[];
  waiting: number;
  samples: number;
}

const bucket = (bounds: readonly number[], x: number) => {
  const i = bounds.findIndex((b) => x <= b);
  return i === -1 ? bounds.length : i;
};

/** A min-heap of timed callbacks (router-sim keeps its own private). */
class Clock {
  readonly #at: number[] = [];
  readonly #run: (() => void)[] = [];
  now = 0;
  push(at: number, run: () => void) {
    const a = this.#at;
    const r = this.#run;
    a.push(at);
    r.push(run);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      [r[p], r[i]] = [r[i]!, r[p]!];
      i = p;
    }
  }
  /** Runs every callback due up to `until`. */
  advance(until: number) {
    const a = this.#at;
    const r = this.#run;
    while (a.length > 0 && a[0]! <= until) {
      this.now = a[0]!;
      const run = r[0]!;
      const lastA = a.pop()!;
      const lastR = r.pop()!;
      if (a.length > 0) {
        a[0] = lastA;
        r[0] = lastR;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const rr = l + 1;
          let m = i;
          if (l < a.length && a[l]! < a[m]!) m = l;
          if (rr < a.length && a[rr]! < a[m]!) m = rr;
          if (m === i) break;
          [a[m], a[i]] = [a[i]!, a[m]!];
          [r[m], r[i]] = [r[i]!, r[m]!];
          i = m;
        }
      }
      run();
    }
    this.now = until;
  }
}

export class Fleet {
  readonly clock = new Clock();
  replicas: Replica[] = [];
  readonly #seconds: Second[] = [];
  /** Replica-seconds paid for (starting, serving and draining alike). */
  replicaSeconds = 0;
  /** Every request's TTFT, with its arrival, for the phase figures. */
  readonly done: { arrival: number; ttft: number }[] = [];
  readonly #cost = FLEET_COST;

  constructor(initial: number) {
    for (let i = 0; i < initial; i++) this.replicas.push(new Replica(0, 0));
  }

  #second(t: number): Second {
    const s = Math.floor(t);
    while (this.#seconds.length <= s) this.#seconds.push({ requests: 0, ttft: [], itl: [], waiting: 0, samples: 0 });
    return this.#seconds[s]!;
  }

  /** Serving replicas: started, not draining. */
  ready(now = this.clock.now) {
    return this.replicas.filter((r) => !r.draining && r.readyAt <= now);
  }

  /** Brings the replicas (starting or serving, not draining) to `desired`: new ones start, the newest leave. */
  scaleTo(desired: number) {
    const now = this.clock.now;
    const live = this.replicas.filter((r) => !r.draining);
    for (let i = live.length; i < desired; i++) {
      const r = new Replica(now + STARTUP_SECONDS, now);
      this.replicas.push(r);
      this.clock.push(r.readyAt, () => this.#drainGateway());
    }
    const leaving = live.slice(desired).reverse();
    for (const r of leaving) {
      r.draining = true;
      // What it holds it finishes; what waits there moves to the others.
      const moved = r.waiting.splice(0);
      if (r.running === 0) this.replicas = this.replicas.filter((x) => x !== r);
      for (const p of moved) this.#route(p);
    }
  }

  /** Requests held while nothing was serving. */
  readonly #held: Pending[] = [];
  #drainGateway() {
    for (const p of this.#held.splice(0)) this.#route(p);
  }

  arrive(at: number) {
    this.clock.push(at, () => this.#route({ arrival: at }));
  }

  #route(p: Pending) {
    const ready = this.ready();
    if (ready.length === 0) {
      this.#held.push(p);
      return;
    }
    // Least in flight: what the proxy's balancer approximates.
    let best = ready[0]!;
    for (const r of ready) if (r.inFlight < best.inFlight) best = r;
    best.waiting.push(p);
    this.#tryStart(best);
  }

  #tryStart(r: Replica) {
    const c = this.#cost;
    if (r.prefillBusy || r.running >= c.concurrency || r.waiting.length === 0) return;
    const p = r.waiting.shift()!;
    r.prefillBusy = true;
    r.running++;
    const prefillDone = this.clock.now + c.prefillBase + PROMPT_TOKENS * c.prefillPerToken;
    this.clock.push(prefillDone, () => {
      r.prefillBusy = false;
      const ttft = prefillDone - p.arrival;
      const itl = c.decodePerToken * (1 + (c.batchSlowdown * r.running) / c.concurrency);
      const end = prefillDone + OUTPUT_TOKENS * itl;
      this.clock.push(end, () => {
        r.running--;
        const s = this.#second(end);
        s.requests++;
        s.ttft.push(ttft);
        s.itl.push(itl);
        this.done.push({ arrival: p.arrival, ttft });
        if (r.draining && r.running === 0 && r.waiting.length === 0)
          this.replicas = this.replicas.filter((x) => x !== r);
        else this.#tryStart(r);
      });
      this.#tryStart(r);
    });
  }

  /** Advances to `t`, sampling engine queues and paying replica-seconds on the way. */
  runUntil(t: number) {
    while (this.clock.now < t) {
      const next = Math.min(t, Math.floor(this.clock.now / SCRAPE_SECONDS + 1) * SCRAPE_SECONDS);
      this.replicaSeconds += this.replicas.length * (next - this.clock.now);
      this.clock.advance(next);
      if (next % SCRAPE_SECONDS === 0) {
        const ready = this.ready();
        if (ready.length > 0) {
          const s = this.#second(next - 1e-9);
          s.waiting += ready.reduce((a, r) => a + r.waiting.length, 0) / ready.length;
          s.samples++;
        }
      }
    }
  }

  /** What the agents would report now: windows 30/60/300 of completed requests and queue samples. */
  stats(): ServiceStats {
    const now = this.clock.now;
    const windows = {} as ServiceStats["windows"];
    for (const w of [30, 60, 300] as const) {
      const llm = emptyLlmWindow();
      llm.queue = { waiting: 0, samples: 0 };
      const ttft = new Array<number>(TTFT_BOUNDS.length + 1).fill(0);
      const itl = new Array<number>(TPOT_BOUNDS.length + 1).fill(0);
      let requests = 0;
      for (let s = Math.max(0, Math.floor(now) - w); s < Math.min(this.#seconds.length, Math.floor(now)); s++) {
        const sec = this.#seconds[s]!;
        requests += sec.requests;
        for (const x of sec.ttft) ttft[bucket(TTFT_BOUNDS, x)]!++;
        // One observation per gap between a stream's tokens.
        for (const x of sec.itl) itl[bucket(TPOT_BOUNDS, x)]! += OUTPUT_TOKENS - 1;
        llm.queue.waiting += sec.waiting;
        llm.queue.samples += sec.samples;
      }
      llm.ttft = { counts: ttft, sum: 0 };
      llm.itl = { counts: itl, sum: 0 };
      windows[String(w) as "30" | "60" | "300"] = { requests, request_time: 0, llm };
    }
    return { service: "bench", windows };
  }
}

export interface Phase {
  name: string;
  seconds: number;
  /** Mean requests per second. */
  rps: number;
  /** Per-minute swing of the rate, ± this fraction (noisy steady). */
  noise?: number;
}

/** The trace: steady, a step up, a step down, then a noisy steady load. */
export const TRACE: Phase[] = [
  { name: "steady", seconds: 3600, rps: 12 },
  { name: "step up", seconds: 3600, rps: 30 },
  { name: "step down", seconds: 3600, rps: 8 },
  { name: "noisy steady", seconds: 5400, rps: 20, noise: 0.1 },
];

/** Poisson arrivals over the trace (seeded: every metric sees the same requests). */
export function arrivals(trace: readonly Phase[], seed: number): number[] {
  const rand = seeded(seed);
  const out: number[] = [];
  let start = 0;
  for (const p of trace) {
    for (let minute = 0; minute * 60 < p.seconds; minute++) {
      const rate = p.rps * (1 + (p.noise ?? 0) * (2 * rand() - 1));
      const end = start + Math.min(p.seconds, (minute + 1) * 60);
      let t = start + minute * 60;
      for (;;) {
        t += -Math.log(1 - rand()) / rate;
        if (t >= end) break;
        out.push(t);
      }
    }
    start += p.seconds;
  }
  return out;
}
