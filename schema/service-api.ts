/**
 * @module
 * Shapes of the services API (`/api/v1/projects/:project/services/…`).
 */
import * as v from "valibot";
import { RouterReport, ServiceStats } from "./agent-protocol.ts";
import { EngineSignals } from "./engine.ts";
import { ReplicaHealth } from "./health.ts";
import { mapping } from "./issues.ts";
import {
  ConfigurationChangeSchema,
  effectiveSpec,
  plannedApply,
  planRequest,
  SpecEcho,
  specInput,
} from "./plan-envelope.ts";
import { REPLICA_ROLES, type ServiceConfiguration, ServiceConfigurationInput } from "./service.ts";
import { text } from "./text.ts";
import { TrafficSchema } from "./traffic.ts";

export const ServiceSpecInput = specInput("service");

export const ServicePlanRequest = planRequest("service");

export const ServiceApplyRequest = mapping({
  /** The spec and the service the client planned against (`null` when it planned a create). */
  plan: plannedApply("service"),
  force: v.optional(v.boolean("expected true or false"), false),
});

/** `PUT …/replicas/:id`: the URL, and under PD its role and (prefill) bootstrap port, checked by `ReplicaEndpoint`. */
export const PutReplicaRequest = mapping({
  url: text("expected the replica URL"),
  role: v.optional(v.unknown()),
  bootstrap_port: v.optional(v.unknown()),
});

const Timestamp = v.pipe(v.string(), v.isoTimestamp());

export const GatewayReplicaConfigStateSchema = v.object({
  replica_num: v.number(),
  applied_version: v.nullable(v.number()),
  state: v.picklist(["in_sync", "pending", "rejected"]),
  error: v.nullable(v.string()),
  /**
   * For a service whose router is `sglang`: how this replica balances it (null: no report yet).
   * Absent for other services, and from older control planes.
   */
  router: v.optional(v.nullable(v.object({ mode: RouterReport.entries.mode, reason: RouterReport.entries.reason }))),
  /**
   * This replica's LLM traffic for the service (`traffic.ts`): null until it reported within the
   * last minute (and while it provisions). Absent from older control planes.
   */
  traffic: v.optional(v.nullable(TrafficSchema)),
});

/**
 * A service replica's engine as the gateway last read it (`engine.ts`, without `replica`: the entry
 * it sits in names it). Every running gateway replica scrapes every service replica; the freshest
 * read is shown, with its age as of the response.
 */
export const ReplicaEngineSchema = v.omit(EngineSignals, ["replica"]);
export type ReplicaEngine = v.InferOutput<typeof ReplicaEngineSchema>;

/** One standing autoscaling decision, as the service view shows it. */
const ScalingDecisionEntries = {
  desired_replicas: v.nullable(v.number()),
  current_replicas: v.number(),
  reason: v.nullable(v.string()),
  last_change_at: v.nullable(Timestamp),
  last_evaluated_at: v.nullable(Timestamp),
};

export const ServiceSchema = v.object({
  id: v.pipe(v.string(), v.uuid()),
  name: v.string(),
  project_name: v.string(),
  gateway: v.string(),
  configuration: ServiceConfigurationInput,
  url: v.string(),
  model_url: v.nullable(v.string()),
  created_at: Timestamp,
  updated_at: Timestamp,
  replicas: v.array(
    v.object({
      id: v.string(),
      url: v.string(),
      registered_at: Timestamp,
      /** Prefill/decode role; null: co-located. Absent from older control planes. */
      role: v.optional(v.nullable(v.picklist(REPLICA_ROLES))),
      /** A prefill replica's bootstrap port (null: none). Absent from older control planes. */
      bootstrap_port: v.optional(v.nullable(v.number())),
      /**
       * The replica's engine signals (null while no running gateway replica reported any for it:
       * not scraped yet, `engine: none`, or an older agent). Absent from older control planes.
       */
      engine: v.optional(v.nullable(ReplicaEngineSchema)),
      /**
       * The replica's health (`health.ts`, without `replica`): state, circuit breaker, last check,
       * the worst over the running gateway replicas' reports; null before any reported it (or an
       * older agent). Absent from older control planes.
       */
      health: v.optional(v.nullable(v.omit(ReplicaHealth, ["replica"]))),
    }),
  ),
  /**
   * For a service whose router disaggregates prefill and decode (null otherwise): its replicas per
   * role, and whether it is routable (at least one of each); `reason` says what is missing.
   * Absent from older control planes.
   */
  pd: v.optional(
    v.nullable(
      v.object({ prefill: v.number(), decode: v.number(), routable: v.boolean(), reason: v.nullable(v.string()) }),
    ),
  ),
  /** The gateway configuration version that carries this service's current state. */
  config_version: v.number(),
  gateway_replicas: v.array(GatewayReplicaConfigStateSchema),
  /**
   * dstack's traffic summed over the gateway's replicas (null until every running replica reported):
   * requests and mean time per window, what the autoscaler reads.
   */
  stats: v.nullable(ServiceStats),
  /**
   * LLM traffic merged over the gateway's running replicas (`traffic.ts`): per window requests,
   * error rate, duration/TTFT/TPOT/ITL percentiles and tokens; null when `stats` is (until every
   * running replica reported within the last minute). Each replica's own is in `gateway_replicas`.
   * Absent from older control planes.
   */
  traffic: v.optional(v.nullable(TrafficSchema)),
  /**
   * The autoscaler's decision, for services with `scaling` (null otherwise): the orchestrator that
   * runs the replicas brings `current_replicas` (registered) to `desired_replicas`. Before the first
   * evaluation `desired_replicas`, `reason` and the times are null.
   */
  scaling: v.nullable(
    v.object({
      ...ScalingDecisionEntries,
      /**
       * A PD service scaled per role (`replicas:` as a list of groups): each role's own decision
       * (`current_replicas`: its registered replicas); the entries above are their sums, `reason`
       * both reasons, the times the latest. Absent otherwise.
       */
      roles: v.optional(
        v.object({ prefill: v.object(ScalingDecisionEntries), decode: v.object(ScalingDecisionEntries) }),
      ),
    }),
  ),
});
export type Service = Omit<v.InferOutput<typeof ServiceSchema>, "configuration"> & {
  configuration: ServiceConfiguration;
};

export type ScalingView = NonNullable<Service["scaling"]>;

export const ServicePlanSchema = v.object({
  project_name: v.string(),
  user: v.string(),
  spec: SpecEcho,
  effective_spec: effectiveSpec(ServiceConfigurationInput),
  current_resource: v.nullable(ServiceSchema),
  action: v.picklist(["create", "update"]),
  changes: v.array(ConfigurationChangeSchema),
  in_place: v.boolean(),
});

export type ServiceReplica = Service["replicas"][number];
export type GatewayReplicaSync = v.InferOutput<typeof GatewayReplicaConfigStateSchema>;
export type ConfigSyncState = GatewayReplicaSync["state"];
export const CONFIG_SYNC_STATES = ["in_sync", "pending", "rejected"] as const satisfies readonly ConfigSyncState[];
export type ServicePlan = Omit<v.InferOutput<typeof ServicePlanSchema>, "effective_spec" | "current_resource"> & {
  effective_spec: { configuration: ServiceConfiguration; configuration_path: string | null };
  current_resource: Service | null;
};
export interface ServiceList {
  project: string;
  services: Service[];
}
