/**
 * @module
 * What an attempt's failure is, for an exchange (`forward.ts`): the errors it raises itself, how an
 * undici error counts (for the replica's health, the metrics, the retry policy), whether and when it
 * is tried again on another replica (`admission/retry-policy.ts`, within the service's budget), and
 * the status the client gets when it is not.
 */
import { performance } from "node:perf_hooks";
import type { Readable } from "node:stream";
import { decideRetry, type Failure } from "./admission/retry-policy.ts";
import type { ReplicaState } from "./balancer.ts";
import type { ServiceMeter, UpstreamErrorKind } from "./observe/service-meter.ts";
import type { ServiceRoute } from "./routes.ts";

export class ClientGoneError extends Error {
  constructor() {
    super("the client went away");
    this.name = "ClientGoneError";
  }
}

export class BadResponseError extends Error {
  readonly code = "GP_BAD_RESPONSE";
  constructor() {
    super("the replica sent a response head Node cannot relay");
    this.name = "BadResponseError";
  }
}

/** Failures that say nothing about the replica's health (ours, or a pool closing under the request). */
export const NOT_A_REPLICA_FAULT = new Set([
  "UND_ERR_INVALID_ARG",
  "UND_ERR_NOT_SUPPORTED",
  "UND_ERR_CLOSED",
  "UND_ERR_DESTROYED",
]);
/** Failures no other replica would answer differently. */
const NOT_RETRYABLE = new Set(["UND_ERR_INVALID_ARG", "UND_ERR_NOT_SUPPORTED", "GP_BAD_RESPONSE", "HTTPParserError"]);

export const errorCode = (err: Error) => (err as Error & { code?: string }).code ?? err.name;

/** What kind of failure of an attempt an error is, for `gateplane_upstream_errors_total`. */
export function failureKind(code: string, sent: boolean): UpstreamErrorKind {
  if (code === "UND_ERR_CONNECT_TIMEOUT" || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT")
    return "timeout";
  if (code === "GP_BAD_RESPONSE" || code === "HTTPParserError") return "invalid";
  return sent ? "closed" : "connect";
}

/** The retry policy's kind of an attempt's error (`timeout`: no response head within `read_timeout`). */
export function attemptFailure(err: Error, code: string, sent: boolean, timeout: boolean): Failure {
  if (timeout) return "timeout";
  if (NOT_RETRYABLE.has(code) || err.name === "HTTPParserError") return "other";
  return sent ? "reset" : "connect";
}

/** The status and message a client gets for an attempt's error that is not tried again. */
export function failureReply(err: Error, code: string, sent: boolean, timeout: boolean): [number, string] {
  if (timeout) return [504, "the replica did not answer in time"];
  if (code === "GP_BAD_RESPONSE" || err.name === "HTTPParserError")
    return [502, "the replica sent an invalid response"];
  if (code === "UND_ERR_CONNECT_TIMEOUT") return [504, "connecting to the replica timed out"];
  return [502, sent ? "the replica closed the connection" : "the replica could not be reached"];
}

/** Where an exchange stands when an attempt failed. */
export interface AttemptState {
  route: ServiceRoute;
  /** The failed attempt's replica. */
  replica: ReplicaState;
  /** The replicas tried before it. */
  tried: ReplicaState[] | null;
  /** Attempts made, the failed one included. */
  attempts: number;
  /** Bytes of the response already went to the client. */
  relayed: boolean;
  /** The request body to send again (a stream cannot be replayed). */
  body: Readable | Buffer | null;
  metrics: ServiceMeter | null;
}

/**
 * The delay (ms) before trying `failure` again on another replica, or −1 when it is not retried
 * (`admission/retry-policy.ts`); a refusal of a failure the service retries is counted by reason.
 */
export function retryDelayFor(failure: Failure | number, state: AttemptState): number {
  const { policy, budget } = state.route.resilience;
  if (!policy.retries(failure)) return -1;
  const tried = state.tried ? [...state.tried, state.replica] : [state.replica];
  const verdict = decideRetry(
    policy,
    budget,
    failure,
    {
      attempts: state.attempts,
      relayed: state.relayed,
      replayable: state.body === null || Buffer.isBuffer(state.body),
      otherReplica: state.attempts < policy.attempts && state.route.balancer.candidates(Date.now(), tried).length > 0,
    },
    performance.now(),
    Math.random(),
  );
  if (verdict.retry) return verdict.delayMs;
  if (verdict.reason !== null) state.metrics?.retryRefused(verdict.reason);
  return -1;
}
