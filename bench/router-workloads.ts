/**
 * @module
 * The workloads of the routing simulator (`router-sim.ts`), each generated from a seed so every
 * policy sees the same requests: SGLang's generated-shared-prefix benchmark, multi-turn chat, and
 * one shaped like llm-d's precise-prefix-cache benchmark (many tenants with long shared contexts).
 * One token is one character of routing text.
 */
import type { SimRequest } from "./router-sim.ts";

/** A seeded generator (mulberry32), so every policy sees the same workload. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const tokens = (rand: () => number, n: number) => Array.from({ length: n }, () => Math.floor(rand() * 50_000));

/**
 * SGLang's generated-shared-prefix workload (`bench_serving.py --dataset-name generated-shared-prefix`):
 * `groups` × `perGroup` prompts, each a group's system prompt plus its own question, shuffled, all
 * sent at once (request rate ∞).
 */
export function sharedPrefixWorkload(
  seed: number,
  groups = 64,
  perGroup = 16,
  systemLen = 2048,
  questionLen = 128,
  outputLen = 256,
): SimRequest[] {
  const rand = seeded(seed);
  const out: SimRequest[] = [];
  for (let g = 0; g < groups; g++) {
    const system = tokens(rand, systemLen);
    for (let i = 0; i < perGroup; i++) {
      out.push({ arrival: 0, prompt: [...system, ...tokens(rand, questionLen)], output: tokens(rand, outputLen) });
    }
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Multi-turn chat: `conversations` starting over `spreadSeconds`, each `turns` long; a turn's prompt
 * is the previous prompt, the previous answer and a new user message, sent `think` seconds after
 * the previous answer. Conversations share one of a few system prompts.
 */
export function multiTurnWorkload(
  seed: number,
  conversations = 256,
  turns = 6,
  systemPrompts = 4,
  systemLen = 512,
  userLen = 96,
  outputLen = 192,
  spreadSeconds = 30,
  think = 2,
): SimRequest[] {
  const rand = seeded(seed);
  const systems = Array.from({ length: systemPrompts }, () => tokens(rand, systemLen));
  const firsts: SimRequest[] = [];
  for (let c = 0; c < conversations; c++) {
    let prompt = [...systems[c % systemPrompts]!, ...tokens(rand, userLen)];
    const first: SimRequest = { arrival: rand() * spreadSeconds, prompt, output: tokens(rand, outputLen) };
    let turn = first;
    for (let t = 1; t < turns; t++) {
      prompt = [...turn.prompt, ...turn.output, ...tokens(rand, userLen)];
      const next: SimRequest = { arrival: 0, prompt, output: tokens(rand, outputLen) };
      turn.next = { think: think * (0.5 + rand()), request: next };
      turn = next;
    }
    firsts.push(first);
  }
  return firsts;
}

/**
 * llm-d's precise-prefix-cache benchmark, scaled to run in seconds: llm-d ran 150 customers × a
 * 6,000-token context, 5 users each, 1,200-token queries, on 8 pods with the contexts at 73 % of the
 * fleet's KV. Here `tenants` contexts of `contextLen` tokens (defaults 48 × 4,000 = 73 % of 8 × 32 K
 * tokens of cache), each request a tenant's context and a fresh `queryLen`-token query (llm-d's
 * users of one tenant share the context and nothing else, so who asks changes no prefix), Poisson
 * arrivals at `rate` requests/s for `seconds` (near saturation for the default cost model when
 * contexts are reused), tenants drawn uniformly.
 */
export function tenantsWorkload(
  seed: number,
  tenants = 48,
  contextLen = 4000,
  queryLen = 800,
  outputLen = 64,
  rate = 85,
  seconds = 15,
): SimRequest[] {
  const rand = seeded(seed);
  const contexts = Array.from({ length: tenants }, () => tokens(rand, contextLen));
  const out: SimRequest[] = [];
  for (let at = 0; ; ) {
    at += -Math.log(1 - rand()) / rate;
    if (at >= seconds) break;
    const tenant = Math.floor(rand() * tenants);
    out.push({
      arrival: at,
      prompt: [...contexts[tenant]!, ...tokens(rand, queryLen)],
      output: tokens(rand, outputLen),
    });
  }
  return out;
}

/**
 * Long prompts, long answers, nothing shared: where disaggregation is meant to pay. Poisson arrivals
 * at `rate` requests/s for `seconds`, each a fresh `promptLen`-token prompt and a `outputLen`-token
 * answer (a co-located worker prefills two 2,048-token chunks in the steps of its running decodes).
 */
export function longPromptWorkload(
  seed: number,
  rate = 8,
  seconds = 30,
  promptLen = 4096,
  outputLen = 512,
): SimRequest[] {
  const rand = seeded(seed);
  const out: SimRequest[] = [];
  for (let at = 0; ; ) {
    at += -Math.log(1 - rand()) / rate;
    if (at >= seconds) break;
    out.push({ arrival: at, prompt: tokens(rand, promptLen), output: tokens(rand, outputLen) });
  }
  return out;
}
