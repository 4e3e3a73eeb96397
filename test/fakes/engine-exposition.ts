/**
 * @module
 * The `/metrics` of a fake model server (test/fakes/model-server.ts): Prometheus text as vLLM v1
 * or SGLang expose it, for the load the server carries.
 */

export interface EngineMetricsOptions {
  engine: "vllm" | "sglang";
  /** SGLang's metric prefix: `sglang:` (default) or `sglang_` (v0.5.4 on). */
  prefix?: "sglang:" | "sglang_";
  /** Requests the engine runs at once (its batch); the rest wait (default 4). */
  maxRunning?: number;
  /** Series per gauge (vLLM `engine` indexes, SGLang `dp_rank`s); the load is split between them (default 1). */
  ranks?: number;
  /** The served model name label (default "fake-model"). */
  model?: string;
}

/**
 * The exposition of an engine carrying `active` requests, in its published format (metric names,
 * HELP/TYPE lines and labels of vLLM v1 and SGLang; `../shared/reference/llm-serving-protocols.md` §1).
 */
/** A float as prometheus_client writes it (Python's repr: `2.0`, `0.25`). */
const pyFloat = (x: number) => (Number.isInteger(x) ? x.toFixed(1) : String(x));

export function engineExposition(
  o: EngineMetricsOptions,
  load: {
    active: number;
    /** The engine's own queue, when it keeps one (else the first `maxRunning` of `active` run). */
    running?: number;
    waiting?: number;
    prompt: number;
    /** Prompt tokens the prefix cache held (default 0). */
    cached?: number;
    generation: number;
    created: number;
  },
): string {
  const maxRunning = o.maxRunning ?? 4;
  const ranks = o.ranks ?? 1;
  const model = o.model ?? "fake-model";
  const running = load.running ?? Math.min(load.active, maxRunning);
  const waiting = load.waiting ?? load.active - running;
  const cached = load.cached ?? 0;
  // The load split over the ranks as a DP scheduler would: the first ones take the remainder.
  const share = (n: number, rank: number) => Math.floor(n / ranks) + (rank < n % ranks ? 1 : 0);
  const kv = (rank: number) => share(running, rank) / Math.max(1, share(maxRunning, rank));
  const lines: string[] = [];
  const family = (
    name: string,
    type: string,
    help: string,
    value: (rank: number) => number,
    labels: (r: number) => string,
  ) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (let r = 0; r < ranks; r++) lines.push(`${name}{${labels(r)}} ${pyFloat(value(r))}`);
  };
  const counter = (name: string, help: string, total: number, labels: (r: number) => string) => {
    family(`${name}_total`, "counter", help, (r) => share(total, r), labels);
    family(`${name}_created`, "gauge", help, () => load.created, labels);
  };
  if (o.engine === "vllm") {
    const labels = (r: number) => `engine="${r}",model_name="${model}"`;
    family(
      "vllm:num_requests_running",
      "gauge",
      "Number of requests in model execution batches.",
      (r) => share(running, r),
      labels,
    );
    family(
      "vllm:num_requests_waiting",
      "gauge",
      "Number of requests waiting to be processed.",
      (r) => share(waiting, r),
      labels,
    );
    family("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", kv, labels);
    counter(
      "vllm:prefix_cache_queries",
      "Prefix cache queries, in terms of number of queried tokens.",
      load.prompt,
      labels,
    );
    counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", cached, labels);
    counter("vllm:prompt_tokens", "Number of prefill tokens processed.", load.prompt, labels);
    counter("vllm:generation_tokens", "Number of generation tokens processed.", load.generation, labels);
  } else {
    const p = o.prefix ?? "sglang:";
    const labels = (r: number) =>
      `dp_rank="${r}",engine_type="unified",model_name="${model}",moe_ep_rank="0",pp_rank="0",tp_rank="0"`;
    const tokenizer = () => `engine_type="unified",model_name="${model}"`;
    family(`${p}num_running_reqs`, "gauge", "The number of running requests.", (r) => share(running, r), labels);
    family(
      `${p}num_queue_reqs`,
      "gauge",
      "The number of requests in the waiting queue.",
      (r) => share(waiting, r),
      labels,
    );
    family(`${p}token_usage`, "gauge", "The token usage.", kv, labels);
    family(`${p}cache_hit_rate`, "gauge", "The prefix cache hit rate.", () => 0, labels);
    // Tokenizer-manager counters: one series (no rank labels).
    lines.push(
      `# HELP ${p}prompt_tokens_total Number of prefill tokens processed.`,
      `# TYPE ${p}prompt_tokens_total counter`,
      `${p}prompt_tokens_total{${tokenizer()}} ${pyFloat(load.prompt)}`,
      `# HELP ${p}cached_tokens_total Number of cached prompt tokens.`,
      `# TYPE ${p}cached_tokens_total counter`,
      `${p}cached_tokens_total{${tokenizer()}} ${pyFloat(cached)}`,
      `# HELP ${p}generation_tokens_total Number of generation tokens processed.`,
      `# TYPE ${p}generation_tokens_total counter`,
      `${p}generation_tokens_total{${tokenizer()}} ${pyFloat(load.generation)}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
