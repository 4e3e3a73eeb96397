/**
 * @module
 * What a Durable Object's RPC method returns when it can refuse: errors travel as data, because RPC
 * keeps only a thrown error's message. The Worker renders an outcome's error as HTTP
 * (`worker/errors.ts`, `unwrap`); the objects never build a response themselves.
 */

/** The statuses an error may carry; the Worker renders them as they are. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503;

/** A serialisable error description: what crosses the Durable Object RPC boundary. */
export interface ErrorInfo {
  status: ErrorStatus;
  code: string;
  message: string;
  field?: string;
}

/** Result of a Durable Object RPC that can be refused. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo };
