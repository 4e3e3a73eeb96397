/**
 * @module
 * What a Durable Object's RPC method returns when it can refuse: errors travel as data, because RPC
 * keeps only a thrown error's message. An object says what went wrong (a `Failure` kind); the Worker
 * alone decides the HTTP status (`worker/outcomes.ts`). The objects never build a response themselves.
 */

/** What a refusal means, without HTTP. `busy`: the gateway is being deleted or has failed. */
export type FailureKind = "invalid" | "denied" | "not_found" | "conflict" | "busy";

export interface Failure {
  kind: FailureKind;
  /** The code clients branch on (`not_updatable`, `has_services`, …), shown as the API's `error.code`. */
  code: string;
  message: string;
  field?: string;
}

/** Result of a Durable Object RPC that can be refused. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: Failure };

export const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
export const failure = (kind: FailureKind, code: string, message: string, field?: string) =>
  ({ ok: false, error: { kind, code, message, ...(field ? { field } : {}) } }) as const;
