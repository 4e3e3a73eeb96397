/**
 * @module
 * Every metric a gateway host exports, in one table: name, type, help text and labels. The proxy's
 * registry and the agent use these entries; `docs/metrics.md` documents each one (a test holds them
 * together). Names follow OpenTelemetry's GenAI conventions mapped to Prometheus (`.` → `_`, unit
 * `s` → `_seconds`, `{token}` dropped, counters end in `_total`) where OTel defines the metric, and
 * `gateplane_` otherwise.
 *
 * Labels are bounded by the configuration: `service`, `replica` (its id), `gen_ai_request_model` (the
 * service's configured `model.name`, never the request's), `gen_ai_operation_name` (from the path's
 * last segments: `chat`, `text_completion`, `embeddings`), `code` (a status class), `role` (a PD
 * service's side, `prefill` or `decode`; on the tree-policy families only for those sides), and a few fixed
 * enumerations. Never paths, client addresses or anything a client chooses.
 */
import { DURATION_BOUNDS, TOKEN_BOUNDS, TPOT_BOUNDS, TTFT_BOUNDS } from "../../schema/llm-stats.ts";

export interface MetricSpec {
  name: string;
  type: "counter" | "gauge" | "histogram";
  help: string;
  labels: readonly string[];
  bounds?: readonly number[];
}

/** Seconds in the admission queue (`admissionWait`). */
export const QUEUE_WAIT_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] as const;

const LLM_LABELS = ["service", "replica", "gen_ai_request_model", "gen_ai_operation_name"] as const;

export const METRICS = {
  ttft: {
    name: "gen_ai_server_time_to_first_token_seconds",
    type: "histogram",
    help: "Time from a request's arrival to its first content event (streams) or the first byte of its body, for successful LLM responses.",
    labels: LLM_LABELS,
    bounds: TTFT_BOUNDS,
  },
  tpot: {
    name: "gen_ai_server_time_per_output_token_seconds",
    type: "histogram",
    help: "Per streamed response with more than one output token: (duration - time to first token) / (output tokens - 1).",
    labels: LLM_LABELS,
    bounds: TPOT_BOUNDS,
  },
  duration: {
    name: "gen_ai_server_request_duration_seconds",
    type: "histogram",
    help: "Time from a request's arrival to the end of its response, for requests that reached a replica.",
    labels: LLM_LABELS,
    bounds: DURATION_BOUNDS,
  },
  itl: {
    name: "gateplane_inter_token_latency_seconds",
    type: "histogram",
    help: "Gaps between consecutive content events of streamed LLM responses.",
    labels: LLM_LABELS,
    bounds: TPOT_BOUNDS,
  },
  tokenUsage: {
    name: "gen_ai_client_token_usage",
    type: "histogram",
    help: "Tokens per request as the response's own usage counted them (exact counts only).",
    labels: [...LLM_LABELS, "gen_ai_token_type"],
    bounds: TOKEN_BOUNDS,
  },
  tokens: {
    name: "gateplane_tokens_total",
    type: "counter",
    help: "Tokens: source=usage from the responses' own usage, source=estimate counted as one per content event of streams without usage.",
    labels: ["service", "replica", "gen_ai_request_model", "gen_ai_token_type", "source"],
  },
  requests: {
    name: "gateplane_requests_total",
    type: "counter",
    help: "Requests by status class (code=none: the client left before a status was sent), whether a replica or the gateway answered.",
    labels: ["service", "replica", "code"],
  },
  incomplete: {
    name: "gateplane_responses_incomplete_total",
    type: "counter",
    help: "Responses that ended early: cut by the replica, timed out, or the client left.",
    labels: ["service", "replica"],
  },
  inFlight: {
    name: "gateplane_requests_in_flight",
    type: "gauge",
    help: "Requests being forwarded to a replica now.",
    labels: ["service"],
  },
  pdInFlight: {
    name: "gateplane_pd_in_flight",
    type: "gauge",
    help: "PD services: requests holding a replica now, by role (prefill until its answer was read, decode until the client's answer ended).",
    labels: ["service", "replica", "role"],
  },
  pdPrefillDuration: {
    name: "gateplane_pd_prefill_duration_seconds",
    type: "histogram",
    help: "PD services: time from a request's arrival to the end of its prefill replica's answer, for prefills that succeeded.",
    labels: ["service", "replica"],
    bounds: TTFT_BOUNDS,
  },
  pdFailures: {
    name: "gateplane_pd_failures_total",
    type: "counter",
    help: "PD services: failed sides of a pair (an error status, a transport failure, a cut answer), by role and replica.",
    labels: ["service", "replica", "role"],
  },
  upstreamErrors: {
    name: "gateplane_upstream_errors_total",
    type: "counter",
    help: "Failed attempts to reach or read a replica, by kind (connect, timeout, closed, invalid).",
    labels: ["service", "replica", "kind"],
  },
  retries: {
    name: "gateplane_retries_total",
    type: "counter",
    help: "Attempts on another replica after one failed before any byte went to the client.",
    labels: ["service"],
  },
  retriesRefused: {
    name: "gateplane_retries_refused_total",
    type: "counter",
    help: "Failures the service retries that were not retried, by reason (budget, attempts, body, replicas).",
    labels: ["service", "reason"],
  },
  admissionQueued: {
    name: "gateplane_admission_queue_depth",
    type: "gauge",
    help: "Requests waiting now for a slot of the service's admission limit.",
    labels: ["service"],
  },
  admissionWait: {
    name: "gateplane_admission_queue_wait_seconds",
    type: "histogram",
    help: "Time requests waited in the admission queue, admitted or timed out.",
    labels: ["service"],
    bounds: QUEUE_WAIT_BOUNDS,
  },
  admissionRefused: {
    name: "gateplane_admission_refused_total",
    type: "counter",
    help: "Requests refused by admission control: reason=full (429, queue full) or timeout (503, waited past queue_timeout).",
    labels: ["service", "reason"],
  },
  rateLimited: {
    name: "gateplane_rate_limited_total",
    type: "counter",
    help: "Requests refused (429) by a rate limit.",
    labels: ["service"],
  },
  heldTotal: {
    name: "gateplane_held_requests_total",
    type: "counter",
    help: "Requests held for a service scaled to zero until a replica registers.",
    labels: ["service"],
  },
  held: {
    name: "gateplane_held_requests",
    type: "gauge",
    help: "Requests held now for a service scaled to zero.",
    labels: ["service"],
  },
  cacheHits: {
    name: "gateplane_cache_aware_hits_total",
    type: "counter",
    help: "cache_aware decisions that followed a prefix match.",
    labels: ["service", "role"],
  },
  cacheMisses: {
    name: "gateplane_cache_aware_misses_total",
    type: "counter",
    help: "cache_aware decisions without a prefix match above cache_threshold.",
    labels: ["service", "role"],
  },
  cacheBalanced: {
    name: "gateplane_cache_aware_balanced_total",
    type: "counter",
    help: "cache_aware decisions taken by the imbalance rule (least loaded replica).",
    labels: ["service", "role"],
  },
  cacheEvictions: {
    name: "gateplane_cache_aware_evictions_total",
    type: "counter",
    help: "cache_aware prefix tree evictions (every eviction_interval).",
    labels: ["service", "role"],
  },
  prefixLoadHits: {
    name: "gateplane_prefix_load_hits_total",
    type: "counter",
    help: "prefix_load decisions that went to a replica holding part of the routing text.",
    labels: ["service", "role"],
  },
  prefixLoadMisses: {
    name: "gateplane_prefix_load_misses_total",
    type: "counter",
    help: "prefix_load decisions that went to a replica holding none of the routing text.",
    labels: ["service", "role"],
  },
  prefixLoadEvictions: {
    name: "gateplane_prefix_load_evictions_total",
    type: "counter",
    help: "prefix_load prefix tree evictions (every eviction_interval).",
    labels: ["service", "role"],
  },
  engineRunning: {
    name: "gateplane_engine_requests_running",
    type: "gauge",
    help: "Requests in the replica engine's running batch at its last fresh scrape (vllm:num_requests_running, sglang:num_running_reqs; summed over its series).",
    labels: ["service", "replica"],
  },
  engineWaiting: {
    name: "gateplane_engine_requests_waiting",
    type: "gauge",
    help: "Requests queued in the replica engine at its last fresh scrape (vllm:num_requests_waiting, sglang:num_queue_reqs; summed over its series).",
    labels: ["service", "replica"],
  },
  engineKvCache: {
    name: "gateplane_engine_kv_cache_usage_ratio",
    type: "gauge",
    help: "KV-cache use of the replica engine, 0-1, at its last fresh scrape (vllm:kv_cache_usage_perc, sglang:token_usage; averaged over its series).",
    labels: ["service", "replica"],
  },
  enginePrefixCache: {
    name: "gateplane_engine_prefix_cache_hit_ratio",
    type: "gauge",
    help: "The replica engine's own prefix-cache hit rate, 0-1: cached over queried prompt tokens between scrapes.",
    labels: ["service", "replica"],
  },
  engineFresh: {
    name: "gateplane_engine_signal_fresh",
    type: "gauge",
    help: "1 while the replica's engine signals are fresh (policies read them), 0 when stale, failed or unsupported (policies use in-flight counts).",
    labels: ["service", "replica", "state"],
  },
  engineAge: {
    name: "gateplane_engine_signal_age_seconds",
    type: "gauge",
    help: "Seconds since the replica's last good engine scrape (absent before the first).",
    labels: ["service", "replica"],
  },
  engineScrapes: {
    name: "gateplane_engine_scrapes_total",
    type: "counter",
    help: "Scrapes of replicas' /metrics by result (ok, failed, timeout, invalid, unsupported).",
    labels: ["service", "replica", "result"],
  },
  replicaHealth: {
    name: "gateplane_replica_health",
    type: "gauge",
    help: "1 for the replica's health state (healthy, slow_start, unknown, ejected, unhealthy), 0 for the others; the worst over the host's proxy processes (docs/health.md).",
    labels: ["service", "replica", "state"],
  },
  replicaCircuit: {
    name: "gateplane_replica_circuit_state",
    type: "gauge",
    help: "The replica's circuit breaker: 0 closed, 1 open, 2 half-open (SMG's smg_worker_cb_state); the worst over the host's proxy processes.",
    labels: ["service", "replica"],
  },
  replicaCircuitOpens: {
    name: "gateplane_replica_circuit_opens_total",
    type: "counter",
    help: "Times the replica's circuit breaker opened (each proxy process keeps its own breaker; summed).",
    labels: ["service", "replica"],
  },
  healthChecks: {
    name: "gateplane_health_checks_total",
    type: "counter",
    help: "Active health checks of the replica by result (pass, fail, timeout).",
    labels: ["service", "replica", "result"],
  },
  configVersion: {
    name: "gateplane_config_version",
    type: "gauge",
    help: "Version of the configuration document the proxy serves (0: none yet).",
    labels: [],
  },
  rejectedServices: {
    name: "gateplane_config_rejected_services",
    type: "gauge",
    help: "Services of the applied version the host does not serve as configured.",
    labels: [],
  },
  serviceRejected: {
    name: "gateplane_config_service_rejected",
    type: "gauge",
    help: "1 for each rejected service; kept=true when it still serves its last good state.",
    labels: ["service", "kept"],
  },
  certificateExpiry: {
    name: "gateplane_certificate_expiry_timestamp_seconds",
    type: "gauge",
    help: "When the certificate served for a host expires (Unix seconds).",
    labels: ["host"],
  },
  certificateFailing: {
    name: "gateplane_certificate_failing",
    type: "gauge",
    help: "1 when the last issuance or renewal of a host's certificate failed.",
    labels: ["host"],
  },
  linkUp: {
    name: "gateplane_control_plane_connected",
    type: "gauge",
    help: "1 while the agent's WebSocket to the control plane is up.",
    labels: [],
  },
  linkChanged: {
    name: "gateplane_control_plane_link_changed_timestamp_seconds",
    type: "gauge",
    help: "When the control-plane link last went up or down (Unix seconds; the agent's start before any change).",
    labels: [],
  },
  agentInfo: {
    name: "gateplane_agent_info",
    type: "gauge",
    help: "Always 1; the agent's version as a label.",
    labels: ["version"],
  },
  meshDigestsSent: {
    name: "gateplane_mesh_digests_sent_total",
    type: "counter",
    help: "Mesh digests this host sent to the gateway's other replicas (one per 500 ms interval with anything to tell).",
    labels: [],
  },
  meshDigestsReceived: {
    name: "gateplane_mesh_digests_received_total",
    type: "counter",
    help: "Mesh digests from the gateway's other replicas applied here.",
    labels: [],
  },
  meshDigestsRefused: {
    name: "gateplane_mesh_digests_refused_total",
    type: "counter",
    help: "Mesh digests from other replicas refused whole (malformed or over the bounds).",
    labels: [],
  },
  meshRoutesSent: {
    name: "gateplane_mesh_routes_sent_total",
    type: "counter",
    help: "Tree-policy decisions sent in this host's mesh digests.",
    labels: [],
  },
  meshRoutesSampledOut: {
    name: "gateplane_mesh_routes_sampled_out_total",
    type: "counter",
    help: "Tree-policy decisions left out of this host's digests by the per-digest sample cap (256).",
    labels: [],
  },
  meshRoutesReceived: {
    name: "gateplane_mesh_routes_received_total",
    type: "counter",
    help: "Routes of other replicas' digests put in this host's peer index.",
    labels: [],
  },
  meshPrefixesImported: {
    name: "gateplane_mesh_prefixes_imported_total",
    type: "counter",
    help: "Prefixes other replicas routed that a decision here moved into its prefix tree.",
    labels: [],
  },
  meshChargesApplied: {
    name: "gateplane_mesh_charges_applied_total",
    type: "counter",
    help: "Rate-limit charges (a key's admissions on another replica in one digest) applied to this host's buckets.",
    labels: [],
  },
  meshChargesDropped: {
    name: "gateplane_mesh_charges_dropped_total",
    type: "counter",
    help: "Admissions left out of this host's digests because the digest's key cap (2,048) was reached.",
    labels: [],
  },
} as const satisfies Record<string, MetricSpec>;

/** Operation names (`gen_ai.operation.name`) by index; 0: none (the label is left out). */
export const OPERATIONS = ["", "chat", "text_completion", "embeddings"] as const;

/** The operation of a request path (query already removed): its last segments, as OpenAI and SGLang name them. */
export function operationOf(path: string): number {
  if (path.endsWith("/chat/completions")) return 1;
  if (path.endsWith("/completions") || path.endsWith("/generate")) return 2;
  if (path.endsWith("/embeddings")) return 3;
  return 0;
}

/** A sample's labels from name/value pairs, leaving out empty values (an empty label is no label). */
export function labelsOf(...pairs: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i + 1] !== "") out.push(pairs[i]!, pairs[i + 1]!);
  return out;
}
