/**
 * @module
 * Shapes of the HTTPS API (`/api/v1/…`): request bodies are valibot schemas (validated by the Worker,
 * published in the OpenAPI document); responses are typed here once and shared with the CLI.
 */
import * as v from "valibot";
import { CertificateState, RouterReport, ServiceRejection } from "./agent-protocol.ts";
import { DnsRecordSchema } from "./dns.ts";
import { BACKENDS, type GatewayConfiguration, GatewayConfigurationInput, NAME_PATTERN } from "./gateway.ts";
import { mapping } from "./issues.ts";
import {
  ConfigurationChangeSchema,
  effectiveSpec,
  plannedApply,
  planRequest,
  SpecEcho,
  specInput,
} from "./plan-envelope.ts";
import { text } from "./text.ts";

export const GATEWAY_STATUSES = ["submitted", "provisioning", "running", "failed"] as const;
export type GatewayStatus = (typeof GATEWAY_STATUSES)[number];
export const REPLICA_STATUSES = ["submitted", "provisioning", "running", "terminating", "terminated"] as const;
export type ReplicaStatus = (typeof REPLICA_STATUSES)[number];
export const ROLES = ["admin", "member"] as const;
export type Role = (typeof ROLES)[number];

const nameField = (what: string) =>
  v.pipe(
    v.string(`expected a ${what} name`),
    v.regex(NAME_PATTERN, "must start with a lowercase letter and contain 2–41 lowercase letters, digits or hyphens"),
  );

export const GatewaySpecInput = specInput("gateway");

export const PlanRequest = planRequest("gateway");

export const ApplyRequest = mapping({
  /** The spec and the gateway the client planned against (`null` when it planned a create). */
  plan: plannedApply("gateway"),
  force: v.optional(v.boolean("expected true or false"), false),
  /**
   * Re-create the planned gateway (a change that cannot be made in place): checked like a create
   * before anything is destroyed, then the old gateway is deleted and the new one created, by the
   * gateway's own object. Without it such a change is refused (409 `not_updatable`).
   */
  recreate: v.optional(v.boolean("expected true or false"), false),
  /** Allow a deletion or re-create to delete the gateway's services (refused with 409 `has_services` otherwise). */
  cascade: v.optional(v.boolean("expected true or false"), false),
});

export const DeleteGatewaysRequest = mapping({
  names: v.pipe(
    v.array(text("expected gateway names"), "expected a list of gateway names"),
    v.minLength(1, "name at least one gateway"),
  ),
  /** Also delete the gateways' services and their replica registrations (refused otherwise). */
  cascade: v.optional(v.boolean("expected true or false"), false),
});

export const CreateProjectRequest = mapping({ name: nameField("project") });
export const CreateUserRequest = mapping({ name: nameField("user") });
export const SetMemberRequest = mapping({ role: v.picklist(ROLES, `expected one of ${ROLES.join(", ")}`) });
export const CreateTokenRequest = mapping({
  description: v.optional(v.pipe(text(), v.maxLength(200, "at most 200 characters"))),
});

const Timestamp = v.pipe(v.string(), v.isoTimestamp());
const NullableString = v.nullable(v.string());

export const GatewayReplicaSchema = v.object({
  replica_num: v.number(),
  /** IP or DNS name (plus `:port` for local hosts) to point `*.<domain>` at. */
  hostname: NullableString,
  backend: v.picklist(BACKENDS),
  region: v.string(),
  instance_id: NullableString,
  created_at: Timestamp,
  status: v.picklist(REPLICA_STATUSES),
  status_message: NullableString,
  /** The configuration document: the version the gateway wants, and what this replica's agent runs. */
  config: v.object({
    desired_version: v.number(),
    applied_version: v.nullable(v.number()),
    /** Why the agent rejected the newest version it was sent, if it did. */
    error: NullableString,
    /**
     * Services of the applied version this replica does not serve as configured: `kept` at their
     * last good state, or left out. Absent from control planes older than per-service isolation.
     */
    rejected_services: v.optional(v.array(ServiceRejection)),
  }),
  /** Per-host certificates as the replica's agent last reported them (empty without ACME). */
  certificates: v.optional(v.array(CertificateState)),
  /** Set once the replica's agent registered with the control plane. */
  agent: v.nullable(
    v.object({ registered_at: Timestamp, last_seen_at: v.nullable(Timestamp), version: NullableString }),
  ),
  /**
   * How this replica balances each service whose router is `sglang`: `external` (the SGLang Model
   * Gateway the agent runs) or `built-in` with the reason. Empty until the agent reports it; absent
   * from control planes older than the external router.
   */
  routers: v.optional(v.array(RouterReport)),
});
export type GatewayReplica = v.InferOutput<typeof GatewayReplicaSchema>;

export const GatewaySchema = v.object({
  id: v.pipe(v.string(), v.uuid()),
  name: v.string(),
  project_name: v.string(),
  /** The stored configuration with defaults applied; `default` is the gateway's effective default flag. */
  configuration: GatewayConfigurationInput,
  created_at: Timestamp,
  status: v.picklist(GATEWAY_STATUSES),
  status_message: NullableString,
  /**
   * Load balancer hostname (ACM gateways); else the address of the one active replica; else `null`
   * (several replicas: each carries its own).
   */
  hostname: NullableString,
  wildcard_domain: NullableString,
  /** The DNS records to create for `*.<wildcard_domain>` (A/AAAA for IPs, CNAME for DNS names). */
  dns_records: v.array(DnsRecordSchema),
  default: v.boolean(),
  to_be_deleted: v.boolean(),
  backend: v.picklist(BACKENDS),
  region: v.string(),
  replicas: v.array(GatewayReplicaSchema),
});
export type Gateway = Omit<v.InferOutput<typeof GatewaySchema>, "configuration"> & {
  configuration: GatewayConfiguration;
};

export { type ConfigurationChange, ConfigurationChangeSchema } from "./plan-envelope.ts";

export const GatewayPlanSchema = v.object({
  project_name: v.string(),
  user: v.string(),
  spec: SpecEcho,
  effective_spec: effectiveSpec(GatewayConfigurationInput),
  current_resource: v.nullable(GatewaySchema),
  /** `create` when no gateway exists or it must be re-created; `update` for in-place changes. */
  action: v.picklist(["create", "update"]),
  changes: v.array(ConfigurationChangeSchema),
  /** Whether applying changes the existing gateway in place (false: delete and re-create it). */
  in_place: v.boolean(),
});
export type GatewayPlan = Omit<v.InferOutput<typeof GatewayPlanSchema>, "effective_spec" | "current_resource"> & {
  effective_spec: { configuration: GatewayConfiguration; configuration_path: string | null };
  current_resource: Gateway | null;
};

export const GatewayListSchema = v.object({ project: v.string(), gateways: v.array(GatewaySchema) });

export const ApiErrorSchema = v.object({
  error: v.object({ code: v.string(), message: v.string(), field: v.optional(v.string()) }),
});
export type ApiErrorBody = v.InferOutput<typeof ApiErrorSchema>;

export const GatewayEventSchema = v.object({
  id: v.number(),
  gateway_name: NullableString,
  actor: NullableString,
  message: v.string(),
  /** Typed events only (see `schema/events.ts`); audit-only entries have nulls. */
  type: NullableString,
  data: v.nullable(v.record(v.string(), v.unknown())),
  /** Increasing per gateway: the order its object recorded the events in. */
  sequence: v.nullable(v.number()),
  created_at: Timestamp,
});
export type GatewayEvent = v.InferOutput<typeof GatewayEventSchema>;

export const ProjectSchema = v.object({
  name: v.string(),
  role: v.nullable(v.picklist(ROLES)),
  default_gateway: NullableString,
  created_at: Timestamp,
});
export type Project = v.InferOutput<typeof ProjectSchema>;

export const BackendSummarySchema = v.object({
  type: v.picklist(BACKENDS),
  configured: v.boolean(),
  updated_at: v.nullable(Timestamp),
});
export type BackendSummary = v.InferOutput<typeof BackendSummarySchema>;

export const TokenCreatedSchema = v.object({
  id: v.string(),
  user: v.string(),
  /** Shown once; only its hash is stored. */
  token: v.string(),
  created_at: Timestamp,
});

export const CreateServiceTokenRequest = CreateTokenRequest;

/** A project's service token as listed: never its secret. */
export const ServiceTokenSchema = v.object({
  id: v.string(),
  description: NullableString,
  /** The user (or `admin`) who created it; the token belongs to the project, not to them. */
  created_by: v.string(),
  created_at: Timestamp,
});
export type ServiceToken = v.InferOutput<typeof ServiceTokenSchema>;

export const ServiceTokenCreatedSchema = v.object({
  ...ServiceTokenSchema.entries,
  /** `gps_<id>_<secret>`, shown once; only its hash is stored. */
  token: v.string(),
});
export type ServiceTokenCreated = v.InferOutput<typeof ServiceTokenCreatedSchema>;

export const ServiceTokenListSchema = v.object({ service_tokens: v.array(ServiceTokenSchema) });

export const MeSchema = v.object({ user: v.string(), global_admin: v.boolean() });

export const BackendTypeParam = v.picklist(BACKENDS, `expected one of ${BACKENDS.join(", ")}`);
