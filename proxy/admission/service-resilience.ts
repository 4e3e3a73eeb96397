/**
 * @module
 * What retries and admission control keep per service in one proxy process, built with each
 * routing table (`routes.ts`) from the document's `retries` and `admission`: the compiled retry
 * policy, the retry budget and the admission gate. A document that keeps a service's settings keeps
 * its budget and gate (counts, waiting requests); a new replica count changes the gate's limit in
 * place. `shares`: the processes serving the host, which split its limits (`docs/resilience.md`).
 * A PD service's limit counts its decode replicas only (docs/pd.md): a request holds one decode
 * replica for its whole generation, and a prefill replica only until its first token.
 */
import type { ConfigService } from "../../schema/config-document.ts";
import { pdRouting } from "../../schema/router.ts";
import { AdmissionGate } from "./admission-queue.ts";
import { RetryBudget } from "./retry-budget.ts";
import { RetryPolicy } from "./retry-policy.ts";

export interface ServiceResilience {
  readonly policy: RetryPolicy;
  readonly budget: RetryBudget;
  /** Null: no admission control, every request is forwarded at once. */
  readonly gate: AdmissionGate | null;
  /** The request header naming a priority class, lower-cased (null: one FIFO). */
  readonly priorityHeader: string | null;
  /** Whole seconds in the `Retry-After` of a refusal (queue full, wait timed out). */
  readonly retryAfterSeconds: number;
}

/** Seconds a refused client is told to wait: a queue turns over in about one request's time. */
export const ADMISSION_RETRY_AFTER_SECONDS = 1;

export function serviceResilience(
  service: ConfigService,
  previous: ServiceResilience | undefined,
  shares: number,
): ServiceResilience {
  const policy = new RetryPolicy(service.retries ?? null);
  const keep = previous?.policy.sameAs(policy) ?? false;
  const budget = keep ? previous!.budget : new RetryBudget(policy.budgetPercent, policy.budgetMinPerSecond, shares);
  const a = service.admission ?? null;
  let gate: AdmissionGate | null = null;
  if (a) {
    const replicas = pdRouting(service.router)
      ? service.replicas.filter((r) => r.role === "decode").length
      : service.replicas.length;
    const limits = {
      limit: Math.max(1, Math.ceil((a.max_concurrency * Math.max(1, replicas)) / Math.max(1, shares))),
      size: a.queue_size,
      timeoutMs: a.queue_timeout_ms,
    };
    gate = previous?.gate ?? new AdmissionGate(limits);
    gate.configure(limits);
  } else if (previous?.gate) {
    // Admission control was turned off: whoever waits goes on at once.
    previous.gate.configure({ limit: Number.POSITIVE_INFINITY, size: 0, timeoutMs: 0 });
  }
  return {
    policy: keep ? previous!.policy : policy,
    budget,
    gate,
    priorityHeader: a?.priority_header ? a.priority_header.toLowerCase() : null,
    retryAfterSeconds: ADMISSION_RETRY_AFTER_SECONDS,
  };
}
