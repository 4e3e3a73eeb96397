/**
 * @module
 * Typed API errors, rendered once by the app's error handler as `{error: {code, message, field?}}`.
 * Everything a user can get wrong is a 4xx with a code a client can branch on.
 */
import { ValidationError } from "../schema/issues.ts";

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503;

/** A serialisable error description with its status (the Durable Objects return `Failure`s instead). */
export interface ErrorInfo {
  status: ErrorStatus;
  code: string;
  message: string;
  field?: string;
}

export class ApiError extends Error {
  readonly status: ErrorStatus;
  readonly code: string;
  readonly field: string | undefined;
  constructor(status: ErrorStatus, code: string, message: string, field?: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
  static from(info: ErrorInfo): ApiError {
    return new ApiError(info.status, info.code, info.message, info.field);
  }
  toInfo(): ErrorInfo {
    return {
      status: this.status,
      code: this.code,
      message: this.message,
      ...(this.field ? { field: this.field } : {}),
    };
  }
}

export const badRequest = (message: string, field?: string) => new ApiError(400, "invalid_request", message, field);
export const unauthorized = (message = "missing or invalid bearer token") => new ApiError(401, "unauthorized", message);
export const forbidden = (message: string) => new ApiError(403, "forbidden", message);
export const notFound = (message: string) => new ApiError(404, "not_found", message);
export const conflict = (code: string, message: string, field?: string) => new ApiError(409, code, message, field);

/** Turns anything thrown into an ApiError; unknown errors become a 500 without internals. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ValidationError) return new ApiError(400, "invalid_field", err.message, err.field);
  return new ApiError(500, "internal", "internal error; the operation may be retried");
}

/**
 * What a refusal means, without HTTP: a Durable Object says what went wrong, and the Worker alone
 * decides the status (`worker/outcomes.ts`). `busy`: the gateway is being deleted or has failed.
 */
export type FailureKind = "invalid" | "denied" | "not_found" | "conflict" | "busy";

export interface Failure {
  kind: FailureKind;
  /** The code clients branch on (`not_updatable`, `has_services`, …), shown as the API's `error.code`. */
  code: string;
  message: string;
  field?: string;
}

/** Result of a Durable Object RPC: refusals travel as data because RPC keeps only an error's message. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: Failure };

export const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
export const failure = (kind: FailureKind, code: string, message: string, field?: string) =>
  ({ ok: false, error: { kind, code, message, ...(field ? { field } : {}) } }) as const;
