/**
 * @module
 * D1 tables (drizzle). D1 is the catalog: what lists, joins and auth need. Each gateway's own state
 * lives in its GatewayObject, which writes its summary here whenever it changes.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const now = sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`;

export const projects = sqliteTable("projects", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique(),
  /** Not a foreign key: the gateway row may be written after (write-through from its object). */
  defaultGatewayId: text("default_gateway_id"),
  createdAt: text("created_at").notNull().default(now),
});

export const users = sqliteTable("users", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique(),
  globalAdmin: integer("global_admin", { mode: "boolean" }).notNull().default(false),
  createdAt: text("created_at").notNull().default(now),
});

export const members = sqliteTable(
  "members",
  {
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    role: text("role", { enum: ["admin", "member"] }).notNull(),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.userId] })],
);

/** Only a SHA-256 of each token's secret is kept; the public `id` part finds the row. */
export const apiTokens = sqliteTable(
  "api_tokens",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    secretHash: text("secret_hash").notNull(),
    description: text("description"),
    createdAt: text("created_at").notNull().default(now),
    lastUsedAt: text("last_used_at"),
    revokedAt: text("revoked_at"),
  },
  (t) => [index("api_tokens_user").on(t.userId)],
);

/**
 * Service tokens (`gps_<id>_<secret>`): owned by a project, they open its services on its gateways
 * and nothing else (the API refuses them). Stored like API tokens: only a SHA-256 of the secret.
 */
export const serviceTokens = sqliteTable(
  "service_tokens",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    secretHash: text("secret_hash").notNull(),
    description: text("description"),
    /** Who created it, for the audit trail; the token outlives its creator's membership. */
    createdBy: text("created_by").notNull(),
    createdAt: text("created_at").notNull().default(now),
    revokedAt: text("revoked_at"),
  },
  (t) => [index("service_tokens_project").on(t.projectId)],
);

export const backendCredentials = sqliteTable(
  "backend_credentials",
  {
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    type: text("type").notNull(),
    /** AES-256-GCM of the JSON credentials; `iv` is per write. */
    ciphertext: text("ciphertext").notNull(),
    iv: text("iv").notNull(),
    updatedAt: text("updated_at").notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.type] })],
);

/** Gateway catalog: summary columns for lists, plus the object's full snapshot for reads. */
export const gateways = sqliteTable(
  "gateways",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    objectId: text("object_id").notNull(),
    backend: text("backend").notNull(),
    region: text("region").notNull(),
    status: text("status").notNull(),
    statusMessage: text("status_message"),
    hostname: text("hostname"),
    wildcardDomain: text("wildcard_domain"),
    toBeDeleted: integer("to_be_deleted", { mode: "boolean" }).notNull().default(false),
    /** Monotonic per gateway: a late write-through never overwrites a newer summary. */
    version: integer("version").notNull(),
    snapshot: text("snapshot", { mode: "json" }).notNull(),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  // gateways_project_created: the list's keyset order (oldest first, id breaking ties).
  (t) => [
    uniqueIndex("gateways_project_name").on(t.projectId, t.name),
    index("gateways_project_created").on(t.projectId, t.createdAt, t.id),
  ],
);

/** Audit trail. `sourceKey` makes the objects' at-least-once event delivery idempotent. */
export const events = sqliteTable(
  "events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    projectId: text("project_id").notNull(),
    gatewayId: text("gateway_id"),
    gatewayName: text("gateway_name"),
    actor: text("actor"),
    message: text("message").notNull(),
    /** Typed events (`schema/events.ts`): what webhooks deliver; null for audit-only entries. */
    type: text("type"),
    data: text("data"),
    /** The gateway object's outbox order: increasing per gateway. */
    sequence: integer("sequence"),
    sourceKey: text("source_key").unique(),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [index("events_project").on(t.projectId, t.id)],
);

/**
 * Service catalog: which gateway serves which service name in a project (the gateway's object
 * owns everything else about the service). Written through by the objects, replaced per gateway.
 */
export const services = sqliteTable(
  "services",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    gatewayId: text("gateway_id").notNull(),
    gatewayName: text("gateway_name").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("services_project_name").on(t.projectId, t.name), index("services_gateway").on(t.gatewayId)],
);

/**
 * Webhook endpoints of a project. The secret is sealed like backends' credentials (HMAC signing
 * needs the plaintext); during a rotation's grace period the previous one signs too.
 */
export const webhooks = sqliteTable(
  "webhooks",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    /** JSON list of event types, `prefix.*` patterns or `*`. */
    events: text("events", { mode: "json" }).notNull().$type<string[]>(),
    description: text("description"),
    secretCiphertext: text("secret_ciphertext").notNull(),
    secretIv: text("secret_iv").notNull(),
    previousSecretCiphertext: text("previous_secret_ciphertext"),
    previousSecretIv: text("previous_secret_iv"),
    previousSecretExpiresAt: text("previous_secret_expires_at"),
    enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
    disabledReason: text("disabled_reason"),
    disabledAt: text("disabled_at"),
    consecutiveFailures: integer("consecutive_failures").notNull().default(0),
    failingSince: text("failing_since"),
    lastSuccessAt: text("last_success_at"),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [index("webhooks_project").on(t.projectId)],
);

/**
 * One row per (endpoint, event): created in the same D1 batch as the event, so none is lost, and
 * unique per pair, so a repeated write-through adds none. `eventId` is null for pings.
 */
export const webhookDeliveries = sqliteTable(
  "webhook_deliveries",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    webhookId: text("webhook_id")
      .notNull()
      .references(() => webhooks.id, { onDelete: "cascade" }),
    eventId: integer("event_id"),
    /** The idempotency key sent as `Gateplane-Event-Id`. */
    eventKey: text("event_key").notNull(),
    eventType: text("event_type").notNull(),
    state: text("state", { enum: ["pending", "delivered", "failed"] })
      .notNull()
      .default("pending"),
    attempts: integer("attempts").notNull().default(0),
    /** Epoch ms; meaningful while pending. */
    nextAttemptAt: integer("next_attempt_at").notNull(),
    /** Epoch ms after which a failed attempt is the last one (creation, or a redelivery, + 24 h). */
    retryUntil: integer("retry_until").notNull(),
    lastAttemptAt: text("last_attempt_at"),
    lastStatus: integer("last_status"),
    lastError: text("last_error"),
    responseExcerpt: text("response_excerpt"),
    createdAt: text("created_at").notNull().default(now),
    deliveredAt: text("delivered_at"),
  },
  (t) => [
    uniqueIndex("webhook_deliveries_event").on(t.webhookId, t.eventId),
    index("webhook_deliveries_due").on(t.state, t.nextAttemptAt),
    index("webhook_deliveries_webhook").on(t.webhookId, t.id),
  ],
);
