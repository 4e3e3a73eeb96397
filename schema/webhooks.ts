/**
 * @module
 * Shapes of the webhooks API (`/api/v1/projects/:project/webhooks/…`) and of what a delivery
 * carries. The event types come from `schema/events.ts`; a filter entry is an exact type, a
 * `prefix.*` pattern or `*`.
 */
import * as v from "valibot";
import { EVENT_TYPES, type EventType } from "./events.ts";
import { describeType, expected, mapping } from "./issues.ts";
import { text } from "./text.ts";

/** The test event `POST …/webhooks/:id/ping` sends; it is never recorded in the events table. */
export const PING_EVENT = "ping";

/** Every `prefix.*` pattern that matches at least one event type (`gateway.*`, `gateway.replica.*`, …). */
export const EVENT_PATTERNS = [
  ...new Set(
    EVENT_TYPES.flatMap((t) => {
      const parts = t.split(".");
      return parts.slice(0, -1).map((_, i) => `${parts.slice(0, i + 1).join(".")}.*`);
    }),
  ),
].sort();

/** Whether a filter entry selects an event type; the D1 query in `core/webhook-deliveries.ts` mirrors it. */
export function filterMatches(filter: readonly string[], type: string): boolean {
  return filter.some((f) => f === "*" || f === type || (f.endsWith(".*") && type.startsWith(f.slice(0, -1))));
}

const EventFilter = v.pipe(
  v.array(
    v.pipe(
      v.string(expected("an event type")),
      v.check(
        (f) => f === "*" || EVENT_TYPES.includes(f as EventType) || EVENT_PATTERNS.includes(f),
        (issue) =>
          `expected an event type (${EVENT_TYPES.join(", ")}), a pattern (${EVENT_PATTERNS.join(", ")}) or *, got ${describeType(issue.input)}`,
      ),
    ),
    (issue) => `expected a list of event types, got ${describeType(issue.input)}`,
  ),
  v.minLength(1, "list at least one event type (or * for all)"),
  v.maxLength(50, "at most 50 entries"),
  v.transform((list) => [...new Set(list)]),
);

const LOOPBACK_HOSTS = new Set(["localhost", "[::1]"]);
function parseUrl(u: string): URL | null {
  try {
    return new URL(u);
  } catch {
    return null;
  }
}

const isLoopback = (host: string) => LOOPBACK_HOSTS.has(host) || /^127(\.\d{1,3}){3}$/.test(host);

/**
 * `https://` only: a delivery's body is the event and its signature only proves who sent it, so on
 * plain HTTP anyone on the path could read it (and replay it within the 5-minute tolerance).
 * `http://` to a loopback address never leaves the machine, which is what local development needs.
 */
export const WebhookUrl = v.pipe(
  text(expected("a URL")),
  v.maxLength(2048, "at most 2048 characters"),
  v.check((u) => parseUrl(u) !== null, "expected a URL such as https://example.com/hooks/gateplane"),
  // Checks run on after a failed one (valibot reports every issue): an unparseable URL passes these.
  v.check((u) => {
    const url = parseUrl(u);
    return !url || url.protocol === "https:" || (url.protocol === "http:" && isLoopback(url.hostname));
  }, "expected an https:// URL (http:// is accepted only for 127.0.0.1, [::1] or localhost)"),
  v.check((u) => {
    const url = parseUrl(u);
    return !url || (!url.username && !url.password && !url.hash);
  }, "must not contain credentials or a fragment (the signature authenticates deliveries)"),
);

/** Secrets a client chooses: long enough that guessing one is hopeless. */
const Secret = v.pipe(
  v.string(expected("a secret")),
  v.minLength(24, "at least 24 characters"),
  v.maxLength(256, "at most 256 characters"),
  v.regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces"),
);

export const CreateWebhookRequest = mapping({
  url: WebhookUrl,
  events: EventFilter,
  /** Generated (and returned once) when absent. */
  secret: v.optional(Secret),
  description: v.optional(v.pipe(text(expected("a description")), v.maxLength(200, "at most 200 characters"))),
});
export type CreateWebhookRequest = v.InferOutput<typeof CreateWebhookRequest>;

/** `secret` and `rotate_secret` together are refused by the route (one field-named error). */
export const UpdateWebhookRequest = mapping({
  url: v.optional(WebhookUrl),
  events: v.optional(EventFilter),
  enabled: v.optional(v.boolean(expected("true or false"))),
  description: v.optional(
    v.nullable(v.pipe(text(expected("a description")), v.maxLength(200, "at most 200 characters"))),
  ),
  /** A new secret: the one given, or a generated one with `rotate_secret: true`. */
  secret: v.optional(Secret),
  rotate_secret: v.optional(v.boolean(expected("true or false"))),
});
export type UpdateWebhookRequest = v.InferOutput<typeof UpdateWebhookRequest>;

export const DELIVERY_STATES = ["pending", "delivered", "failed"] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

const Timestamp = v.pipe(v.string(), v.isoTimestamp());
const NullableString = v.nullable(v.string());

export const WebhookSchema = v.object({
  id: v.string(),
  url: v.string(),
  events: v.array(v.string()),
  description: NullableString,
  enabled: v.boolean(),
  disabled_reason: NullableString,
  disabled_at: v.nullable(Timestamp),
  /** Failed attempts since the last successful delivery. */
  consecutive_failures: v.number(),
  /** When the current run of failures began; null while the endpoint is healthy. */
  failing_since: v.nullable(Timestamp),
  last_success_at: v.nullable(Timestamp),
  /** While a rotation's grace period lasts, deliveries are signed with the previous secret too. */
  previous_secret_expires_at: v.nullable(Timestamp),
  created_at: Timestamp,
});
export type Webhook = v.InferOutput<typeof WebhookSchema>;

/** `create` and secret rotation return the secret, once. */
export type WebhookWithSecret = Webhook & { secret: string };

export const DeliverySchema = v.object({
  id: v.number(),
  webhook_id: v.string(),
  /** The idempotency key (`Gateplane-Event-Id`): the same for every attempt of this event to this endpoint. */
  event_id: v.string(),
  event_type: v.string(),
  gateway: NullableString,
  sequence: v.nullable(v.number()),
  state: v.picklist(DELIVERY_STATES),
  attempts: v.number(),
  next_attempt_at: v.nullable(Timestamp),
  last_attempt_at: v.nullable(Timestamp),
  last_status: v.nullable(v.number()),
  last_error: NullableString,
  /** The first 512 characters of the receiver's last answer. */
  response_excerpt: NullableString,
  created_at: Timestamp,
  delivered_at: v.nullable(Timestamp),
});
export type Delivery = v.InferOutput<typeof DeliverySchema>;

/** The JSON body of every delivery. `sequence` increases per gateway; null for project-level events. */
export interface WebhookPayload {
  id: string;
  type: string;
  created_at: string;
  project: string;
  gateway: string | null;
  sequence: number | null;
  data: unknown;
}
