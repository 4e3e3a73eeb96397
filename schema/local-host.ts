/**
 * @module
 * The local host daemon's REST API: the `local` backend's stand-in for a cloud's instance API
 * (create / describe / terminate). A host is an agent process on loopback ports.
 */
import * as v from "valibot";
import { mapping } from "./issues.ts";

export const INSTANCE_STATES = ["pending", "running", "terminated"] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

export const CreateInstanceRequest = mapping({
  /** Idempotency key (like EC2's `ClientToken`): a repeated create returns the same instance. */
  client_token: v.pipe(
    v.string(),
    v.regex(/^[A-Za-z0-9._-]{1,64}$/, "expected 1–64 of letters, digits, '.', '_' or '-'"),
  ),
  name: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "expected a lowercase host name")),
  /** The same user-data a cloud VM would get (for the agent: its bootstrap document as JSON). */
  user_data: v.pipe(v.string(), v.maxLength(16384, "user-data is limited to 16 KiB, as EC2")),
  tags: v.optional(v.record(v.string(), v.string()), {}),
});
export type CreateInstanceRequest = v.InferInput<typeof CreateInstanceRequest>;

export interface LocalInstance {
  instance_id: string;
  client_token: string;
  name: string;
  state: InstanceState;
  /** Where the host serves traffic: `127.0.0.1:<http_port>`. */
  hostname: string;
  http_port: number;
  https_port: number;
  pid: number | null;
  tags: Record<string, string>;
  created_at: string;
  terminated_at: string | null;
  /** Why the host stopped, when it did on its own (exit code or signal). */
  state_reason: string | null;
}

export interface LocalErrorBody {
  error: { code: string; message: string };
}
