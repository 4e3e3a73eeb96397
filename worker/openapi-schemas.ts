/**
 * @module
 * The schemas the OpenAPI document names (`components.schemas`): the same valibot schemas the Worker
 * validates with, each under the name the document's operations refer to.
 */
import type * as v from "valibot";
import { ProjectAcmeRequest } from "../schema/acme.ts";
import { AgentHeartbeatRequest, AgentRegisterRequest, AgentScaleFromZeroRequest } from "../schema/agent.ts";
import {
  ApiErrorSchema,
  ApplyRequest,
  BackendSummarySchema,
  CreateProjectRequest,
  CreateServiceTokenRequest,
  CreateTokenRequest,
  CreateUserRequest,
  DeleteGatewaysRequest,
  GatewayEventSchema,
  GatewayListSchema,
  GatewayPlanSchema,
  GatewaySchema,
  MeSchema,
  PlanRequest,
  ProjectSchema,
  ServiceTokenCreatedSchema,
  ServiceTokenListSchema,
  SetMemberRequest,
  TokenCreatedSchema,
} from "../schema/api.ts";
import { BACKEND_CREDENTIALS } from "../schema/backend-credentials.ts";
import { ConfigDocument } from "../schema/config-document.ts";
import { CloudflareDnsCredentials } from "../schema/dns-automation.ts";
import { GatewayConfigurationInput } from "../schema/gateway.ts";
import { ServiceConfigurationInput } from "../schema/service.ts";
import {
  PutReplicaRequest,
  ServiceApplyRequest,
  ServicePlanRequest,
  ServicePlanSchema,
  ServiceSchema,
} from "../schema/service-api.ts";
import { ServiceMetricsSchema } from "../schema/service-metrics.ts";
import { CreateWebhookRequest, DeliverySchema, UpdateWebhookRequest, WebhookSchema } from "../schema/webhooks.ts";

export const SCHEMAS = {
  GatewayConfiguration: GatewayConfigurationInput,
  Gateway: GatewaySchema,
  GatewayList: GatewayListSchema,
  GatewayPlan: GatewayPlanSchema,
  PlanRequest,
  ApplyRequest,
  DeleteGatewaysRequest,
  GatewayEvent: GatewayEventSchema,
  Project: ProjectSchema,
  CreateProjectRequest,
  SetMemberRequest,
  CreateUserRequest,
  CreateTokenRequest,
  TokenCreated: TokenCreatedSchema,
  CreateServiceTokenRequest,
  ServiceTokenCreated: ServiceTokenCreatedSchema,
  ServiceTokenList: ServiceTokenListSchema,
  Me: MeSchema,
  BackendSummary: BackendSummarySchema,
  AwsCredentials: BACKEND_CREDENTIALS.aws,
  GcpCredentials: BACKEND_CREDENTIALS.gcp,
  AzureCredentials: BACKEND_CREDENTIALS.azure,
  KubernetesCredentials: BACKEND_CREDENTIALS.kubernetes,
  ProjectAcmeRequest,
  CloudflareDnsCredentials,
  ServiceConfiguration: ServiceConfigurationInput,
  Service: ServiceSchema,
  ServiceMetrics: ServiceMetricsSchema,
  ServicePlan: ServicePlanSchema,
  ServicePlanRequest,
  ServiceApplyRequest,
  PutReplicaRequest,
  ConfigDocument,
  AgentRegisterRequest,
  AgentHeartbeatRequest,
  AgentScaleFromZeroRequest,
  CreateWebhookRequest,
  UpdateWebhookRequest,
  Webhook: WebhookSchema,
  WebhookDelivery: DeliverySchema,
  Error: ApiErrorSchema,
} satisfies Record<string, v.GenericSchema>;

export type SchemaName = keyof typeof SCHEMAS;
