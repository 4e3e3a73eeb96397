/**
 * @module
 * Typed events: what a gateway's object records when something a client may act on happens. Each
 * event also has a human message (the audit trail shown by `gateplane` and the events API); the
 * type and data are what webhooks deliver. Events of one gateway carry a strictly increasing
 * `sequence` (its object's outbox order), which is the only ordering promised.
 */
import * as v from "valibot";
import { GATEWAY_STATUSES, REPLICA_STATUSES } from "./api.ts";
import { REPLICA_ROLES } from "./service-scaling.ts";

const Status = v.picklist(GATEWAY_STATUSES);
const ReplicaStatus = v.picklist(REPLICA_STATUSES);
const Nullable = v.nullable(v.string());

/** The data of each event type: one source for the object that emits, the API and the webhook docs. */
export const EVENT_DATA = {
  "gateway.status": v.object({ from: v.nullable(Status), to: Status, message: Nullable }),
  "gateway.replica.status": v.object({
    replica_num: v.number(),
    from: v.nullable(ReplicaStatus),
    to: ReplicaStatus,
    message: Nullable,
  }),
  "service.registered": v.object({ service: v.string() }),
  "service.unregistered": v.object({ service: v.string() }),
  "service.replica.registered": v.object({ service: v.string(), replica_id: v.string(), url: v.string() }),
  "service.replica.unregistered": v.object({ service: v.string(), replica_id: v.string() }),
  /**
   * An autoscaling decision: the orchestrator running the service's replicas acts on it. `role`: a
   * PD service scaled per role (replica groups) has one decision per role; absent otherwise.
   */
  "service.scaling": v.object({
    service: v.string(),
    role: v.optional(v.picklist(REPLICA_ROLES)),
    desired_replicas: v.number(),
    previous_desired_replicas: v.nullable(v.number()),
    current_replicas: v.number(),
    reason: v.string(),
  }),
  "certificate.issued": v.object({
    host: v.string(),
    replica_num: v.nullable(v.number()),
    expires_at: v.string(),
  }),
  "certificate.failed": v.object({ host: v.string(), replica_num: v.nullable(v.number()), error: v.string() }),
  /** Project-level: a webhook endpoint stopped receiving deliveries after sustained failures. */
  "webhook.disabled": v.object({ webhook_id: v.string(), url: v.string(), reason: v.string() }),
} as const;

export type EventType = keyof typeof EVENT_DATA;
export const EVENT_TYPES = Object.keys(EVENT_DATA) as EventType[];
export type EventData<T extends EventType = EventType> = v.InferOutput<(typeof EVENT_DATA)[T]>;

/** What an emitter passes along with the audit message. */
export type TypedEvent = { [T in EventType]: { type: T; data: EventData<T> } }[EventType];
